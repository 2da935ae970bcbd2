"""A PBX that never hangs up cannot grow the tracker without bound (issue 15, point 5)."""

from __future__ import annotations

from callcenter import events as ev
from callcenter.calls import Tracker
from callcenter.model import Anomaly, CallEnded, CallStarted, Effect


def new(tracker: Tracker, server: str, n: int, ts: float) -> list[Effect]:
    chan = ev.Chan(f"PJSIP/trunk-{n:08x}", f"{ts}.{n}", f"{ts}.{n}", caller_number="05321234567")
    return tracker.feed(ev.ChannelNew(ts, server, chan))


def test_open_calls_per_server_are_capped_and_the_oldest_closed_as_reconstructed() -> None:
    tracker = Tracker(max_open_per_server=3)
    effects: list[Effect] = []
    for n in range(10):
        effects += new(tracker, "hostile", n, 1000.0 + n)
    effects += new(tracker, "pbx2", 0, 2000.0)
    assert len([k for k in tracker.calls if k[0] == "hostile"]) == 3
    assert [k for k in tracker.calls if k[0] == "pbx2"] == [("pbx2", "2000.0.0")]
    ended = [e.call for e in effects if isinstance(e, CallEnded)]
    # The seven oldest, oldest first, each flagged reconstructed and ended when it was pushed out.
    assert [c.linkedid for c in ended] == [f"{1000.0 + n}.{n}" for n in range(7)]
    assert all(c.reconstructed and c.server == "hostile" for c in ended)
    assert ended[0].ended_at == 1003.0
    capped = [e for e in effects if isinstance(e, Anomaly) and e.kind == "open_calls_capped"]
    assert len(capped) == 7 and tracker.counters["open_calls_capped"] == 7
    assert sum(isinstance(e, CallStarted) for e in effects) == 11
    # The structures that follow open calls stay bounded too.
    assert len(tracker._by_uniqueid) == 4
    assert sum(len(v) for v in tracker._server_calls.values()) == 4


def test_a_flood_keeps_every_structure_bounded() -> None:
    tracker = Tracker(max_open_per_server=100)
    for n in range(20_000):
        new(tracker, "hostile", n, 1000.0 + n / 100)
    assert len(tracker.calls) == 100
    assert len(tracker._by_uniqueid) == 100
    assert len(tracker._ended) <= 20_000

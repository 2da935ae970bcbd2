"""A PBX that never hangs up cannot grow the tracker, the index or the fetches (issue 15, 5)."""

from __future__ import annotations

import asyncio

import pytest

from callcenter import events as ev
from callcenter.calls import Tracker
from callcenter.config import Settings
from callcenter.model import (
    AgentOffered,
    Anomaly,
    Call,
    CallEnded,
    CallStarted,
    Effect,
    Offer,
    QueueJoined,
    Visit,
)
from callcenter.screenpop import PREFETCH_LIMIT, ScreenPop
from callcenter.web.hub import Hub


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


class _NeverAnswers:
    """A pool whose queries never return: every history fetch stays in flight."""

    async def fetchrow(self, *args: object) -> None:
        await asyncio.Event().wait()


def _call(n: int, number: str | None) -> Call:
    return Call("pbx1", f"1.{n}", f"1.{n}", 1000.0 + n, caller_number=number)


async def test_live_calls_are_found_by_any_spelling_of_the_number_through_the_index() -> None:
    pop = ScreenPop(Hub(), lambda: None, Settings())
    a, b = _call(1, "905321234567"), _call(2, "05321234567")
    other = _call(3, "02125550000")
    pop([CallStarted(a), CallStarted(b), CallStarted(other)])
    for spelling in ("0532 123 45 67", "+905321234567", "5321234567"):
        assert pop.live_by_number(spelling) == [b, a]  # newest first
    late = _call(4, None)  # the number arrives later (CallerID set after the start)
    pop([CallStarted(late)])
    late.caller_number = "+90 212 555 00 00"
    pop([QueueJoined(late, Visit(queue="genel", entered_at=1004.0))])
    assert pop.live_by_number("02125550000") == [late, other]
    pop([CallEnded(a), CallEnded(other)])
    assert pop.live_by_number("05321234567") == [b]
    assert pop.live_by_number("02125550000") == [late]
    # One entry per live call with a number: ended calls leave the index.
    assert sum(len(v) for v in pop._by_number.values()) == 2 == len(pop._number_of)


@pytest.mark.parametrize("batched", [True, False])
async def test_a_flood_of_calls_starts_a_bounded_number_of_history_fetches(
    batched: bool,
) -> None:
    pool = _NeverAnswers()
    pop = ScreenPop(Hub(), lambda: pool, Settings())
    pop.batched = batched
    calls = [_call(n, f"0532{n:07d}") for n in range(500)]
    pop([CallStarted(c) for c in calls])
    if batched:
        # Callers waiting for a batch plus batches in flight stay at the limit.
        assert pop.loader.pending == PREFETCH_LIMIT and len(pop._history) == PREFETCH_LIMIT
    else:
        assert pop._fetching == PREFETCH_LIMIT and len(pop._history) == PREFETCH_LIMIT
    # The call that rings at an agent still gets its history fetched.
    ringing = calls[-1]
    visit = Visit(queue="genel", entered_at=1.0)
    offer = Offer(agent="Zeynep Kaya", interface="PJSIP/1001", rang_at=2.0)
    visit.offers.append(offer)
    pop([AgentOffered(ringing, visit, offer)])
    assert (ringing.server, ringing.linkedid) in pop._history
    tasks = list(pop._history.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0)
    assert pop._fetching == 0

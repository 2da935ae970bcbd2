"""Call tracker behaviours beyond plain replay: gaps and resync, agents, late events."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from callcenter import events
from callcenter.calls import Tracker, agent_state
from callcenter.model import Call, CallEnded, Effect, Member, PauseEnded, SessionEnded
from callcenter.pipeline import Pipeline
from callcenter.replay import iter_trace, replay_file, trace_t0

TRACES = Path(__file__).resolve().parent.parent / "traces"


def _messages(scenario: str) -> list[tuple[float, str]]:
    path = TRACES / scenario / "ami.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return list(iter_trace(fh, trace_t0(path) or 0.0))


def _snapshot(live: dict[str, dict[str, str]], ts: float) -> list[tuple[float, str]]:
    """What CoreShowChannels would list for the channels live at ``ts``."""
    out = [(ts, "Event: CallcenterResyncBegin")]
    for h in live.values():
        out.append(
            (
                ts,
                "Event: CoreShowChannel\r\n"
                + "\r\n".join(
                    f"{k}: {h.get(k, '')}"
                    for k in (
                        "Channel",
                        "Uniqueid",
                        "Linkedid",
                        "CallerIDNum",
                        "CallerIDName",
                        "Context",
                        "Exten",
                    )
                )
                + "\r\nApplication: \r\nApplicationData: \r\nDuration: 00:00:01\r\nBridgeId: ",
            )
        )
    out.append((ts, "Event: CallcenterResyncEnd\r\nComplete: yes"))
    return out


def test_a_gap_closes_calls_that_ended_in_it_and_leaves_the_others_exact() -> None:
    messages = _messages("concurrent")
    start, end = messages[0][0], messages[-1][0]
    gap_from, gap_to = start + 14.0, start + 20.0
    # Channels alive when the link comes back, as Asterisk would list them.
    live: dict[str, dict[str, str]] = {}
    kept: list[tuple[float, str]] = []
    for ts, text in messages:
        h = events.parse_message(text)
        if h.get("Event") == "Newchannel" and ts < gap_to:
            live[h["Uniqueid"]] = h
        elif h.get("Event") == "Hangup" and ts < gap_to:
            live.pop(h["Uniqueid"], None)
        if gap_from <= ts < gap_to:
            continue
        if kept and kept[-1][0] < gap_to <= ts:
            kept.extend(_snapshot(live, gap_to))
        if kept and kept[-1][0] < gap_from <= ts:
            kept.append((gap_from, "Event: CallcenterLinkDown"))
        kept.append((ts, text))
    assert end > gap_to

    exact = {c.linkedid: c for c in replay_file(TRACES / "concurrent" / "ami.jsonl.gz")}
    pipe = Pipeline()
    got: dict[str, object] = {}
    for ts, text in kept:
        for effect in pipe.feed_text("pbx1", text, ts):
            if isinstance(effect, CallEnded):
                assert effect.call.linkedid not in got, "a call was logged twice"
                got[effect.call.linkedid] = effect.call
    assert set(got) == set(exact), "every call logged exactly once"
    touched = 0
    for linkedid, call in got.items():
        truth = exact[linkedid]
        alive_in_gap = truth.started_at < gap_to and (truth.ended_at or end) > gap_from
        if alive_in_gap:
            touched += 1
            assert call.reconstructed, linkedid  # type: ignore[attr-defined]
        else:
            assert call.to_dict() == truth.to_dict(), linkedid  # type: ignore[attr-defined]
    assert 0 < touched < len(exact)
    assert pipe.tracker.counters.get("closed_by_resync", 0) >= 1


def _seen_through_a_gap(
    messages: list[tuple[float, str]], gap_from: float, gap_to: float, clock_offset: float
) -> list[tuple[float, str]]:
    """The stream with the link down from ``gap_from`` to ``gap_to`` (PBX time), as received.

    Every PBX event carries its Timestamp; receive times are the service's clock, which reads
    the PBX's time plus ``clock_offset``, and are the only time its own events (link down,
    resync) and the unstamped CoreShowChannel list carry.
    """
    live: dict[str, dict[str, str]] = {}
    kept: list[tuple[float, str]] = []
    state = "before"
    for ts, text in messages:
        h = events.parse_message(text)
        if h.get("Event") == "Newchannel" and ts < gap_to:
            live[h["Uniqueid"]] = h
        elif h.get("Event") == "Hangup" and ts < gap_to:
            live.pop(h["Uniqueid"], None)
        if ts >= gap_from and state == "before":
            kept.append((gap_from + clock_offset, "Event: CallcenterLinkDown"))
            state = "gap"
        if ts < gap_to and state == "gap":
            continue
        if state == "gap":
            kept.extend(_snapshot(live, gap_to + clock_offset))
            state = "after"
        # Stamped by the PBX (timestampevents=yes), received on the service's clock.
        kept.append((ts + clock_offset, f"{text}\r\nTimestamp: {ts:.6f}"))
    return kept


@pytest.mark.parametrize("offset", [-3600.0, 3600.0], ids=["pbx_clock_ahead", "pbx_clock_behind"])
def test_a_gap_is_reconciled_whatever_the_pbx_clock_says(offset: float) -> None:
    # Regression: the resync compared the PBX's event times with its own start time on the
    # service's clock, so with a PBX clock running ahead the calls that ended in the gap were
    # never closed (stuck open, never logged); and those it did close ended on the wrong clock.
    messages = _messages("concurrent")
    start = messages[0][0]
    gap_from, gap_to = start + 14.0, start + 20.0
    kept = _seen_through_a_gap(messages, gap_from, gap_to, offset)
    exact = {c.linkedid: c for c in replay_file(TRACES / "concurrent" / "ami.jsonl.gz")}
    pipe = Pipeline()
    got: dict[str, object] = {}
    for ts, text in kept:
        for effect in pipe.feed_text("pbx1", text, ts):
            if isinstance(effect, CallEnded):
                assert effect.call.linkedid not in got, "a call was logged twice"
                got[effect.call.linkedid] = effect.call
                if effect.call.reconstructed and exact[effect.call.linkedid].ended_at < gap_to:
                    # Closed by the resync: some time in the gap, on the PBX's clock.
                    assert gap_from <= (effect.call.ended_at or 0) <= gap_to + 1
    assert set(got) == set(exact), "every call logged exactly once"
    assert pipe.tracker.calls == {}
    assert pipe.tracker.counters.get("closed_by_resync", 0) >= 1


def test_calls_resumed_after_a_restart_are_flagged_reconstructed() -> None:
    # Regression: a resumed call missed whatever happened between its last snapshot and the
    # resync, yet came out unflagged (unlike calls in flight when an AMI link drops).
    tracker = Tracker()
    call = Call(server="pbx1", linkedid="9.1", uniqueid="9.1", started_at=100.0)
    call.live_channels.add("9.1")
    tracker.resume([call])
    hangup = "Event: Hangup\r\nChannel: Local/cust@callers-1;1\r\nUniqueid: 9.1\r\nLinkedid: 9.1"
    effects = Pipeline(tracker).feed_text("pbx1", hangup, 130.0)
    [ended] = [e.call for e in effects if isinstance(e, CallEnded)]
    assert ended.reconstructed


def test_a_call_without_agent_complete_is_finalised_after_the_grace_period() -> None:
    messages = [
        (ts, text)
        for ts, text in _messages("answered")
        if not text.startswith("Event: AgentComplete")
    ]
    pipe = Pipeline()
    ended: list[Effect] = []
    for ts, text in messages:
        ended += [e for e in pipe.feed_text("pbx1", text, ts) if isinstance(e, CallEnded)]
    assert ended == []  # waits for the AgentComplete that may still come
    last = messages[-1][0]
    effects = pipe.tracker.tick(last + 10.0)
    calls = [e.call for e in effects if isinstance(e, CallEnded)]
    assert len(calls) == 1
    assert calls[0].outcome == "answered"
    assert calls[0].talk_s is not None and abs(calls[0].talk_s - 8) <= 1


def test_pauses_and_logins_agree_with_queue_log() -> None:
    pipe = Pipeline()
    pauses: list[PauseEnded] = []
    sessions: list[SessionEnded] = []
    for ts, text in _messages("pause_unpause_login"):
        for effect in pipe.feed_text("pbx1", text, ts):
            if isinstance(effect, PauseEnded):
                pauses.append(effect)
            elif isinstance(effect, SessionEnded):
                sessions.append(effect)
    # queue_log: PAUSE … UNPAUSE per (queue, agent), with the reason on PAUSE.
    expected: dict[tuple[str, str], tuple[int, int, str]] = {}
    opened: dict[tuple[str, str], tuple[int, str]] = {}
    for line in (TRACES / "pause_unpause_login" / "queue_log").read_text().splitlines():
        epoch, _, queue, agent, verb, *data = line.split("|")
        if verb == "PAUSE":
            opened[(queue, agent)] = (int(epoch), data[0])
        elif verb == "UNPAUSE":
            began, reason = opened.pop((queue, agent))
            expected[(queue, agent)] = (began, int(epoch), reason)
    got = {(p.pause.queue, p.pause.agent): p.pause for p in pauses}
    assert set(got) == set(expected)
    for key, (began, ended, reason) in expected.items():
        pause = got[key]
        assert pause.reason == reason
        assert abs(pause.started_at - began) <= 1 and abs((pause.ended_at or 0) - ended) <= 1
    logged_off = {(s.session.queue, s.session.interface) for s in sessions}
    assert logged_off == {
        ("genel", "Local/1005@agents/n"),
        ("sosyal-yardim", "Local/1005@agents/n"),
    }


def test_agent_state_covers_wrapup_pause_and_ringing() -> None:
    m = Member(interface="Local/1001@agents/n", agent="Zeynep Kaya", queue="genel")
    assert agent_state(m, 100.0, 3.0) == "available"
    m.status = 6
    assert agent_state(m, 100.0, 3.0) == "ringing"
    m.status, m.in_call = 2, True
    assert agent_state(m, 100.0, 3.0) == "on_call"
    m.status, m.in_call, m.last_call_end = 1, False, 99.0
    assert agent_state(m, 100.0, 3.0) == "wrapup"
    assert agent_state(m, 103.0, 3.0) == "available"
    m.paused = True
    assert agent_state(m, 100.0, 3.0) == "paused"
    m.paused, m.status = False, 5
    assert agent_state(m, 100.0, 3.0) == "unavailable"


def test_midcall_start_recovers_live_calls_from_the_snapshot() -> None:
    tracker = Tracker()
    pipe = Pipeline(tracker)
    seen_waiting = 0
    for ts, text in _messages("midcall_resync"):
        pipe.feed_text("pbx1", text, ts)
        if text.startswith("Event: CallcenterResyncEnd"):
            seen_waiting = len(list(tracker.waiting()))
            assert len(tracker.calls) == 3
            assert len(tracker.members) == 5
    assert seen_waiting == 2  # two callers were waiting, one was talking


def test_another_servers_clock_does_not_end_a_call_waiting_for_its_agent_complete() -> None:
    messages = [
        (ts, text)
        for ts, text in _messages("answered")
        if not text.startswith("Event: AgentComplete")
    ]
    pipe = Pipeline()
    for ts, text in messages:
        pipe.feed_text("pbx1", text, ts)
    last = messages[-1][0]
    # pbx2's clock is an hour ahead: its events must not close pbx1's call early.
    newchannel = (
        "Event: Newchannel\r\nChannel: Local/x@callers-00000001;1\r\n"
        "Uniqueid: 1.1\r\nLinkedid: 1.1\r\nContext: callers\r\nExten: x"
    )
    ended = [
        e for e in pipe.feed_text("pbx2", newchannel, last + 3600.0) if isinstance(e, CallEnded)
    ]
    assert ended == []
    assert ("pbx1", "1795884362.0") in pipe.tracker.calls
    later = [e for e in pipe.tracker.tick(last + 10.0, server="pbx1") if isinstance(e, CallEnded)]
    assert [e.call.linkedid for e in later] == ["1795884362.0"]

"""Cuts an AMI gap out of a recorded trace, as the service would have lived it.

The messages inside the gap are dropped (AMI has no replay); at its start the adapter's
``CallcenterLinkDown``; at its end the resync the adapter runs after every login:
QueueStatus (``QueueEntry`` per waiting caller) and CoreShowChannels (``CoreShowChannel`` per
live channel, with its application and bridge), bracketed like the live adapter does. The
snapshot is what Asterisk would have answered, rebuilt from the full recording.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from callcenter import events
from callcenter.model import Call, CallEnded
from callcenter.pipeline import Pipeline
from callcenter.replay import iter_trace, trace_t0
from tests.queuelog import QlVisit

TRACES = Path(__file__).resolve().parent / "traces"


def messages(scenario: str) -> list[tuple[float, str]]:
    """The received messages of a trace as ``(epoch, text)``."""
    path = TRACES / scenario / "ami.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return list(iter_trace(fh, trace_t0(path) or 0.0))


def _hms(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Live:
    """What Asterisk holds at a moment: channels (with app and bridge) and waiting callers."""

    def __init__(self) -> None:
        self.channels: dict[str, dict[str, str]] = {}
        self.born: dict[str, float] = {}
        self.waiting: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    def see(self, ts: float, h: dict[str, str]) -> None:
        name, uid = h.get("Event"), h.get("Uniqueid", "")
        if name == "Newchannel":
            self.channels[uid] = dict(h)
            self.born[uid] = ts
        elif name == "Hangup":
            self.channels.pop(uid, None)
        elif name in ("Newexten", "NewCallerid", "Newstate") and uid in self.channels:
            chan = self.channels[uid]
            for key in ("CallerIDNum", "CallerIDName", "Context", "Exten"):
                if h.get(key):
                    chan[key] = h[key]
            if name == "Newexten":
                chan["Application"] = h.get("Application", "")
                chan["ApplicationData"] = h.get("AppData", "")
        elif name == "BridgeEnter" and uid in self.channels:
            self.channels[uid]["BridgeId"] = h.get("BridgeUniqueid", "bridge")
        elif name == "BridgeLeave" and uid in self.channels:
            self.channels[uid]["BridgeId"] = ""
        elif name == "QueueCallerJoin":
            self.waiting[(h.get("Queue", ""), uid)] = (ts, dict(h))
        elif name == "QueueCallerLeave":
            self.waiting.pop((h.get("Queue", ""), uid), None)

    def snapshot(self, ts: float) -> list[tuple[float, str]]:
        out = [(ts, "Event: CallcenterResyncBegin")]
        by_queue: dict[str, int] = {}
        for (queue, uid), (joined, h) in sorted(self.waiting.items(), key=lambda kv: kv[1][0]):
            by_queue[queue] = by_queue.get(queue, 0) + 1
            out.append(
                (
                    ts,
                    "Event: QueueEntry\r\n"
                    f"Queue: {queue}\r\nPosition: {by_queue[queue]}\r\n"
                    f"Channel: {h.get('Channel', '')}\r\nUniqueid: {uid}\r\n"
                    f"CallerIDNum: {h.get('CallerIDNum', '')}\r\n"
                    f"CallerIDName: {h.get('CallerIDName', '')}\r\n"
                    f"Wait: {int(ts - joined)}\r\nPriority: 0",
                )
            )
        out.append((ts, "Event: QueueStatusComplete"))
        for uid, h in self.channels.items():
            fields = {
                "Channel": h.get("Channel", ""),
                "Uniqueid": uid,
                "Linkedid": h.get("Linkedid", uid),
                "CallerIDNum": h.get("CallerIDNum", ""),
                "CallerIDName": h.get("CallerIDName", ""),
                "Context": h.get("Context", ""),
                "Exten": h.get("Exten", ""),
                "Application": h.get("Application", ""),
                "ApplicationData": h.get("ApplicationData", ""),
                "Duration": _hms(ts - self.born.get(uid, ts)),
                "BridgeId": h.get("BridgeId", ""),
            }
            text = "\r\n".join(f"{k}: {v}" for k, v in fields.items())
            out.append((ts, "Event: CoreShowChannel\r\n" + text))
        out.append((ts, "Event: CoreShowChannelsComplete"))
        out.append((ts, "Event: CallcenterResyncEnd\r\nComplete: yes"))
        return out


def cut(stream: list[tuple[float, str]], gap_from: float, gap_to: float) -> list[tuple[float, str]]:
    """The stream as seen through an AMI gap [gap_from, gap_to), resync included."""
    live = _Live()
    kept: list[tuple[float, str]] = []
    state = "before"
    for ts, text in stream:
        if ts >= gap_from and state == "before":
            kept.append((gap_from, "Event: CallcenterLinkDown"))
            state = "gap"
        if state == "gap" and ts >= gap_to:
            kept.extend(live.snapshot(gap_to))
            state = "after"
        if text.startswith("Event: "):
            live.see(ts, events.parse_message(text))
        if state == "gap":
            continue
        kept.append((ts, text))
    if state == "gap":
        kept.extend(live.snapshot(gap_to))
    return kept


def replay(stream: Iterable[tuple[float, str]], server: str = "pbx1") -> list[Call]:
    """Feeds a stream through a fresh pipeline; returns every call, open ones closed at the end."""
    pipe = Pipeline()
    calls: list[Call] = []
    last = 0.0
    for ts, text in stream:
        last = max(last, ts)
        calls += [e.call for e in pipe.feed_text(server, text, ts) if isinstance(e, CallEnded)]
    calls += [e.call for e in pipe.tracker.close_all(last, server) if isinstance(e, CallEnded)]
    return calls


@dataclass
class Score:
    """How many of queue_log's visits the call log has exactly, and what is wrong."""

    total: int
    exact: int
    problems: list[str]


def score(calls: list[Call], expected: list[QlVisit]) -> Score:
    """Compares the call log's visits with queue_log's: outcome, queue, agent, wait, talk."""
    ours: dict[tuple[str, str], list] = {}
    extra = sum(len(c.visits) for c in calls) - len(expected)
    for call in calls:
        for visit in call.visits:
            ours.setdefault((call.uniqueid, visit.queue), []).append(visit)
    problems: list[str] = [f"{extra:+d} visits vs queue_log"] if extra else []
    exact = 0
    for ql in expected:
        where = f"{ql.callid} {ql.queue}"
        candidates = ours.get((ql.callid, ql.queue), [])
        if not candidates:
            problems.append(f"{where}: missing")
            continue
        visit = min(candidates, key=lambda v: abs((v.entered_at or 0) - ql.entered))
        candidates.remove(visit)
        wrong = []
        if visit.outcome != ql.outcome:
            wrong.append(f"outcome {visit.outcome} != {ql.outcome}")
        if visit.agent != ql.agent:
            wrong.append(f"agent {visit.agent} != {ql.agent}")
        if visit.wait_s is None or ql.wait is None or abs(visit.wait_s - ql.wait) > 1:
            wrong.append(f"wait {visit.wait_s} != {ql.wait}")
        if ql.talk is not None:
            if visit.talk_s is None or abs(visit.talk_s - ql.talk) > 1:
                wrong.append(f"talk {visit.talk_s} != {ql.talk}")
        elif visit.talk_s is not None:
            wrong.append(f"talk {visit.talk_s} != None")
        if wrong:
            problems.append(f"{where}: " + ", ".join(wrong))
        else:
            exact += 1
    return Score(len(expected), exact, problems)

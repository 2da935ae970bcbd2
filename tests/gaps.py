"""Cuts an AMI gap out of a recorded trace, as the service would have lived it.

The messages inside the gap are dropped (AMI has no replay); at its start the adapter's
``CallcenterLinkDown``; at its end the resync the adapter runs after every login:
QueueStatus (``QueueEntry`` per waiting caller) and CoreShowChannels (``CoreShowChannel`` per
live channel, with its application and bridge), bracketed like the live adapter does. The
snapshot is what Asterisk would have answered, rebuilt from the full recording.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from callcenter import events
from callcenter.model import Call, CallEnded
from callcenter.pipeline import Pipeline
from callcenter.replay import iter_trace, trace_t0
from tests.queuelog import QlVisit

TRACES = Path(__file__).resolve().parent / "traces"


@cache
def messages(scenario: str) -> list[tuple[float, str]]:
    """The received messages of a trace as ``(epoch, text)``."""
    path = TRACES / scenario / "ami.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return list(iter_trace(fh, trace_t0(path) or 0.0))


def login_time(stream: list[tuple[float, str]]) -> float:
    """When the service was up to date: the end of its login resync (or its first message)."""
    resynced = (ts for ts, text in stream if text.startswith("Event: CallcenterResyncEnd"))
    return next(resynced, stream[0][0])


def windows(scenario: str) -> list[tuple[str, float, float]]:
    """The gaps cut out of a trace: all of it after login, then 20-s stretches and a 3-s one."""
    stream = messages(scenario)
    login = login_time(stream)
    end = stream[-1][0]
    if scenario == "burst":  # 283,238 messages: one cut, 20 s in the middle of the load
        return [("mid20", login + 20.0, login + 40.0)]
    span = end - login
    cuts = [("whole", login + 0.5, end + 1.0)]
    for frac in (0.1, 0.3, 0.5, 0.7):
        start = login + span * frac
        cuts.append((f"at{int(frac * 100)}", start, min(start + 20.0, end + 1.0)))
    cuts.append(("short", login + span * 0.4, login + span * 0.4 + 3.0))
    return cuts


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


def main() -> None:
    """Prints, per trace and window, the visits exact before and after reconciliation.

    ``python -m tests.gaps [SCENARIO …]`` (all traces by default; burst takes about 30 s).
    """
    import logging

    import structlog

    from callcenter.reconcile import reconcile
    from callcenter.reconciler import records_from_files
    from tests.queuelog import read_queue_log

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    names = sys.argv[1:] or sorted(p.name for p in TRACES.iterdir() if (p / "queue_log").exists())
    print(
        "| trace | window (s after login) | visits | exact before | exact after | found "
        "| corrected |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        cel = TRACES / name / "cel_custom_Master.csv"
        records = records_from_files(
            TRACES / name / "queue_log", cel if cel.exists() else cel.with_suffix(".csv.gz")
        )
        expected = read_queue_log(TRACES / name / "queue_log")
        login = login_time(messages(name))
        for label, a, b in windows(name):
            calls = replay(cut(messages(name), a, b))
            before = score(calls, expected)
            result = reconcile(calls, records, "pbx1", (a, b))
            after = score(calls + result.found, expected)
            print(
                f"| {name} | {label} {a - login:.1f}-{b - login:.1f} | {before.total} "
                f"| {before.exact} | {after.exact} | {len(result.found)} "
                f"| {len(result.corrected)} |"
            )


if __name__ == "__main__":
    main()

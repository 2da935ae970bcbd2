"""Garbage, unknown events and orphan events are counted and skipped; real calls stay exact."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.model import CallEnded
from callcenter.pipeline import Pipeline
from callcenter.replay import replay_lines, trace_t0

TRACE = Path(__file__).resolve().parent.parent / "traces" / "concurrent" / "ami.jsonl.gz"

GARBAGE = [
    "this is not an AMI message",
    "Event: NoSuchEvent\r\nFoo: bar",
    "Event: AgentConnect\r\nPrivilege: agent,all\r\nUniqueid: 1.1",  # no Queue/Interface
    "Event: QueueCallerJoin\r\nQueue: genel",  # no channel block
    "Event: Hangup\r\nChannel: SIP/x-1\r\nUniqueid: 999.1\r\nLinkedid: 999.1\r\nCause: 16",
    "Event: AgentComplete\r\nQueue: genel\r\nInterface: Local/9999@agents/n\r\nTalkTime: x",
    "Event: QueueCallerAbandon\r\nChannel: X\r\nUniqueid: 998.1\r\nLinkedid: 998.1\r\nQueue: q",
    "Event: QueueMemberStatus\r\nQueue: genel",  # no interface
    "\x00\x01\x02 binary: \xff",
    "Event: VarSet\r\nVariable: QUEUESTATUS\r\nValue: TIMEOUT",  # no channel
    "Event: QueueEntry\r\nQueue: genel\r\nWait: nope",
    "Event: CoreShowChannel\r\nUniqueid: 997.1\r\nDuration: garbage",
]


def _lines() -> list[str]:
    with gzip.open(TRACE, "rt", encoding="utf-8") as fh:
        return fh.readlines()


def _calls(lines: list[str], pipe: Pipeline) -> list[dict[str, object]]:
    t0 = trace_t0(TRACE) or 0.0
    ended = [e.call for e in replay_lines(lines, "pbx1", t0, pipe) if isinstance(e, CallEnded)]
    return sorted(
        (c.to_dict() for c in ended if c.linkedid.startswith("1795")),
        key=lambda d: str(d["linkedid"]),
    )


def test_garbage_interleaved_with_a_real_trace_changes_no_real_call() -> None:
    lines = _lines()
    clean = _calls(lines, Pipeline())
    rng = random.Random(7)
    noisy: list[str] = []
    for line in lines:
        noisy.append(line)
        if rng.random() < 0.3:
            t = json.loads(line).get("t", 0.0)
            noisy.append(json.dumps({"t": t, "raw": rng.choice(GARBAGE) + "\r\n\r\n"}) + "\n")
        if rng.random() < 0.05:
            noisy.append("{not json\n")
    pipe = Pipeline()
    assert _calls(noisy, pipe) == clean
    assert pipe.counters["unknown_events"] > 0
    assert pipe.counters["bad_events"] > 0
    assert pipe.counters["garbage"] > 0
    assert pipe.counters["tracker_errors"] == 0


def test_events_for_unknown_calls_are_counted_not_invented() -> None:
    pipe = Pipeline()
    effects = pipe.feed_text(
        "pbx1",
        "Event: Hangup\r\nChannel: SIP/x-1\r\nUniqueid: 5.1\r\nLinkedid: 5.1\r\nCause: 16",
        1.0,
    )
    assert effects == []
    assert pipe.tracker.counters["orphan_hangup"] == 1
    assert pipe.tracker.calls == {}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=30))
def test_random_text_never_raises(messages: list[str]) -> None:
    pipe = Pipeline()
    for i, text in enumerate(messages):
        pipe.feed_text("pbx1", text, float(i))
    assert pipe.counters["tracker_errors"] == 0

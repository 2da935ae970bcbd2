"""Random bytes in random TCP chunks through the adapter's decode/split/parse path into the tracker.

Nothing raises, nothing is swallowed as an internal error, and how TCP cuts the stream never
changes which messages arrive (the incremental decoder and the buffer make chunking invisible).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import budget, ran
from tests.fuzz.harness import GREETING, SCENARIOS, Wire, frame, renumber, split, trace


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop the protocol can make futures on; it never runs (data_received is synchronous)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


# Header names the parser and the tracker know, so random messages reach deep into both.
_KEYS = [
    "Event", "Response", "ActionID", "Channel", "Uniqueid", "Linkedid", "CallerIDNum",
    "CallerIDName", "Context", "Exten", "Queue", "Interface", "MemberName", "Location",
    "Position", "HoldTime", "RingTime", "TalkTime", "Reason", "Cause", "Variable", "Value",
    "Digit", "Status", "Paused", "PausedReason", "InCall", "LoginTime", "LastPause", "Timestamp",
    "Application", "AppData", "Duration", "BridgeId", "TransfereeUniqueid", "TransfereeLinkedid",
    "OrigTransfererUniqueid", "UserEvent", "Result", "Wait", "Calls", "Complete", "Output",
]  # fmt: skip
_EVENTS = [
    "Newchannel", "NewCallerid", "Hangup", "Newexten", "VarSet", "DTMFEnd", "UserEvent",
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled",
    "AgentRingNoAnswer", "AgentDump", "AgentConnect", "AgentComplete", "BlindTransfer",
    "AttendedTransfer", "Hold", "Unhold", "QueueMemberStatus", "QueueMemberAdded",
    "QueueMemberRemoved", "QueueMemberPause", "QueueMember", "QueueParams", "QueueEntry",
    "CoreShowChannel", "CallcenterResyncBegin", "CallcenterResyncEnd", "CallcenterLinkDown",
    "Shutdown", "NoSuchEvent", "DialEnd",
]  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "1",
            "0",
            "-1",
            "1795884609.12",
            "1795884609.13",
            "genel",
            "PJSIP/1001",
            "QUEUESTATUS",
            "TIMEOUT",
            "CC_CATEGORY",
            "<unknown>",
            "Ayşe Çağrı",
            "05321234567",
            "99999999999999999999999",
            "1e309",
            "nan",
            "00:00:01",
            "a:b:c",
            "Queue",
            "caller",
            "no",
        ]
    ),  # fmt: skip
    st.text(max_size=30),
)
_HEADER = st.tuples(st.sampled_from(_KEYS) | st.text(max_size=12), _VALUES)
_MESSAGE = st.builds(
    lambda name, headers: [("Event", name), *headers],
    st.sampled_from(_EVENTS) | st.text(max_size=12),
    st.lists(_HEADER, max_size=12),
)


def _render(messages: list[list[tuple[str, str]]], separator: str) -> bytes:
    """AMI framing, sometimes with a bare LF or a missing terminator (what a broken peer sends)."""
    return "".join(
        separator.join(f"{k}: {v}" for k, v in m) + separator + separator for m in messages
    ).encode("utf-8", "surrogatepass")


@budget(300)
@given(blob=st.binary(max_size=4096), cuts=st.lists(st.integers(0, 4096), max_size=40))
def test_random_bytes_after_a_greeting(
    loop: asyncio.AbstractEventLoop, blob: bytes, cuts: list[int]
) -> None:
    ran("wire_random_bytes")
    _feed_and_check(loop, GREETING + blob, cuts)


@budget(200)
@given(blob=st.binary(max_size=512), cuts=st.lists(st.integers(0, 512), max_size=10))
def test_random_bytes_instead_of_a_greeting(
    loop: asyncio.AbstractEventLoop, blob: bytes, cuts: list[int]
) -> None:
    ran("wire_no_greeting")
    wire = Wire(loop)
    wire.feed(split(blob, cuts))
    wire.finish()
    # Not an AMI server (or not yet a whole greeting line): nothing reaches the tracker.
    assert wire.delivered == []
    assert wire.client.last_error is None


@budget(300)
@given(
    messages=st.lists(_MESSAGE, max_size=30),
    separator=st.sampled_from(["\r\n", "\r\n", "\n"]),
    noise=st.binary(max_size=64),
    at=st.integers(0, 10_000),
    cuts=st.lists(st.integers(0, 10_000), max_size=40),
)
def test_random_ami_messages(
    loop: asyncio.AbstractEventLoop,
    messages: list[list[tuple[str, str]]],
    separator: str,
    noise: bytes,
    at: int,
    cuts: list[int],
) -> None:
    ran("wire_random_messages")
    body = _render(messages, separator)
    at = at % (len(body) + 1)
    _feed_and_check(loop, GREETING + body[:at] + noise + body[at:], cuts)


@budget(150)
@given(
    scenario=st.sampled_from(SCENARIOS),
    start=st.integers(0, 10_000),
    length=st.integers(1, 400),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=8),
    cuts=st.lists(st.integers(0, 1 << 20), max_size=60),
)
def test_recorded_bytes_with_flipped_bytes(
    loop: asyncio.AbstractEventLoop,
    scenario: str,
    start: int,
    length: int,
    flips: list[tuple[int, int]],
    cuts: list[int],
) -> None:
    ran("wire_mutated_trace")
    messages = trace(scenario)
    start %= len(messages)
    blob = bytearray(b"".join(frame(renumber(t, 1)) for _, t in messages[start : start + length]))
    for offset, value in flips:
        blob[offset % len(blob)] = value
    _feed_and_check(loop, GREETING + bytes(blob), [c % (len(blob) + 1) for c in cuts])


def test_a_name_split_inside_a_letter_arrives_whole(loop: asyncio.AbstractEventLoop) -> None:
    text = "Event: NewCallerid\r\nUniqueid: 1.1\r\nCallerIDName: Ayşe Çağrı\r\n\r\n"
    blob = GREETING + text.encode("utf-8")
    for cut in range(len(GREETING), len(blob)):
        wire = Wire(loop)
        wire.feed(split(blob, [cut]))
        assert wire.delivered[-1]["CallerIDName"] == "Ayşe Çağrı", cut


def _feed_and_check(loop: asyncio.AbstractEventLoop, blob: bytes, cuts: list[int]) -> None:
    """Feeds ``blob`` whole and in chunks: both runs are clean and deliver the same messages."""
    whole = Wire(loop)
    whole.feed([blob])
    chunked = Wire(loop)
    chunked.feed(split(blob, cuts))
    for wire in (whole, chunked):
        wire.finish()
        assert wire.client.last_error is None, wire.client.last_error
        assert wire.client.callback_errors == 0
        assert wire.service.subscriber_errors == 0
        assert wire.service.pipeline.counters["tracker_errors"] == 0
    if not whole.transport.aborted and not chunked.transport.aborted:
        assert chunked.delivered == whole.delivered
    else:
        # A Shutdown (or an oversized message) drops the link: a prefix arrives either way.
        shorter = min(len(whole.delivered), len(chunked.delivered))
        assert chunked.delivered[:shorter] == whole.delivered[:shorter]

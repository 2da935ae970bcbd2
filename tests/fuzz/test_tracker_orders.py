"""Recorded traces in random orders and subsets through the pipeline: the tracker never breaks.

Whatever arrives (events lost, reordered, repeated, two servers, two traces at once), nothing
raises, no call starts or ends twice, every call that started is ended by ``close_all``, and
nothing about calls is left behind in the tracker afterwards.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from callcenter.model import CallStarted, Effect
from callcenter.pipeline import Pipeline
from tests.fuzz.budget import budget, ran
from tests.fuzz.harness import SCENARIOS, check_closed, check_effects, perturb, renumber, trace

_MODES = ["keep", "local", "shuffle", "reverse", "duplicate"]


def _run(pipe: Pipeline, stream: list[tuple[str, float, str]]) -> list[Effect]:
    """Feeds (server, ts, text) messages, then closes every call still open."""
    effects: list[Effect] = []
    last = 0.0
    for server, ts, text in stream:
        last = max(last, ts)
        effects += pipe.feed_text(server, text, ts)
    effects += pipe.tracker.close_all(last)
    return effects


def _started(effects: list[Effect]) -> set[tuple[str, str]]:
    return {(e.call.server, e.call.linkedid) for e in effects if isinstance(e, CallStarted)}


@budget(150)
@given(
    scenario=st.sampled_from(SCENARIOS),
    keep=st.sampled_from([1.0, 0.97, 0.9, 0.7, 0.4]),
    mode=st.sampled_from(_MODES),
    clock=st.sampled_from(["recorded", "arrival", "frozen"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_one_trace_in_any_order_or_subset(
    scenario: str, keep: float, mode: str, clock: str, seed: int
) -> None:
    ran("tracker_orders")
    rnd = random.Random(seed)
    messages = perturb(trace(scenario), rnd, keep=keep, mode=mode)
    t0 = messages[0][0] if messages else 0.0
    stream = [
        # Recorded times (which reordering makes go backwards), the arrival order, or one instant.
        ("pbx1", ts if clock == "recorded" else t0 + i * 0.01 if clock == "arrival" else t0, text)
        for i, (ts, text) in enumerate(messages)
    ]
    pipe = Pipeline()
    effects = _run(pipe, stream)
    ended = check_effects(effects)
    assert ended == _started(effects), "a call that started was never ended"
    check_closed(pipe)


@budget(80)
@given(
    first=st.sampled_from(SCENARIOS),
    second=st.sampled_from(SCENARIOS),
    same_server=st.booleans(),
    same_ids=st.booleans(),
    keep=st.sampled_from([1.0, 0.9, 0.6]),
    seed=st.integers(0, 2**32 - 1),
)
def test_two_traces_interleaved(
    first: str, second: str, same_server: bool, same_ids: bool, keep: float, seed: int
) -> None:
    ran("tracker_interleaved")
    rnd = random.Random(seed)
    a = perturb(trace(first), rnd, keep=keep, mode="keep")
    # The same trace twice with the same ids on one server is a replayed stream; on two
    # servers it is two PBXs whose ids collide (keys are per server, so both must be exact).
    b = [
        (ts, t if same_ids else renumber(t, 7))
        for ts, t in perturb(trace(second), rnd, keep=keep, mode="keep")
    ]
    servers = ("pbx1", "pbx1" if same_server else "pbx2")
    tagged = [(servers[0], ts, t) for ts, t in a] + [(servers[1], ts, t) for ts, t in b]
    # A random merge that keeps each stream's own order.
    stream: list[tuple[str, float, str]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and rnd.random() < 0.5):
            stream.append(tagged[i])
            i += 1
        else:
            stream.append(tagged[len(a) + j])
            j += 1
    pipe = Pipeline()
    effects = _run(pipe, stream)
    ended = check_effects(effects)
    assert ended == _started(effects)
    check_closed(pipe)


@budget(60)
@given(
    scenario=st.sampled_from(SCENARIOS),
    cut=st.floats(0.0, 1.0),
    keep=st.sampled_from([1.0, 0.8]),
    seed=st.integers(0, 2**32 - 1),
)
def test_link_lost_midway_then_a_resync_that_lists_nothing(
    scenario: str, cut: float, keep: float, seed: int
) -> None:
    """A link drop and an empty resync close what was open: no call outlives its PBX's word."""
    ran("tracker_resync")
    rnd = random.Random(seed)
    messages = perturb(trace(scenario), rnd, keep=keep, mode="local")
    n = int(len(messages) * cut)
    ts = messages[n - 1][0] if n else 0.0
    pipe = Pipeline()
    effects: list[Effect] = []
    for t, text in messages[:n]:
        effects += pipe.feed_text("pbx1", text, t)
    for text in (
        "Event: CallcenterLinkDown",
        "Event: CallcenterResyncBegin",
        "Event: QueueStatusComplete",
        "Event: CoreShowChannelsComplete",
        "Event: CallcenterResyncEnd",
    ):
        effects += pipe.feed_text("pbx1", text, ts + 1)
    # The resync said nothing is live: every call seen before it is closed by it.
    assert pipe.tracker.calls == {}
    effects += pipe.tracker.close_all(ts + 2)
    assert check_effects(effects) == _started(effects)
    check_closed(pipe)


def _msg(name: str, **headers: str) -> str:
    return "\r\n".join([f"Event: {name}", *(f"{k}: {v}" for k, v in headers.items())])


def test_a_channel_gone_during_a_gap_is_forgotten_with_its_call() -> None:
    """Regression (found by the interleaving fuzz): a resync that prunes a vanished channel
    must not leave its uniqueid in the tracker after the call ends."""
    pipe = Pipeline()
    caller = {"Channel": "PJSIP/trunk-1", "Uniqueid": "100.1", "Linkedid": "100.1"}
    leg = {"Channel": "Local/1001@agents-1;1", "Uniqueid": "100.2", "Linkedid": "100.1"}
    effects = pipe.feed_text("pbx1", _msg("Newchannel", **caller), 1.0)
    effects += pipe.feed_text("pbx1", _msg("Newchannel", **leg), 2.0)
    for text in (
        _msg("CallcenterLinkDown"),
        _msg("CallcenterResyncBegin"),
        # Only the caller's channel is still live: the agent leg hung up while we were away.
        _msg("CoreShowChannel", Application="Wait", Duration="00:00:09", **caller),
        _msg("CoreShowChannelsComplete"),
        _msg("CallcenterResyncEnd"),
    ):
        effects += pipe.feed_text("pbx1", text, 10.0)
    assert pipe.tracker.calls[("pbx1", "100.1")].live_channels == {"100.1"}
    effects += pipe.feed_text("pbx1", _msg("Hangup", Cause="16", **caller), 11.0)
    assert check_effects(effects) == {("pbx1", "100.1")}
    check_closed(pipe)

"""The tracker's memory stays flat over an endless stream of calls, lossy or not (tracemalloc).

Round after round of a recorded trace with fresh call ids, either whole (calls end on their own)
or lossy and reordered and then closed by a link loss and an empty resync: once the bounded
memory of ended calls is full, what the process holds no longer grows with the calls seen.
"""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from callcenter import calls
from callcenter.pipeline import Pipeline
from tests.fuzz.budget import SCALE, ran
from tests.fuzz.harness import check_closed, perturb, renumber, trace

# Small enough that the memory of ended calls fills in a few rounds (8 calls a round).
_ENDED = 64
_WARMUP = 12
_ROUNDS = _WARMUP + int(20 * SCALE)
# What may still move between the two measurements (dict resizes, the pipeline's counters);
# measured here: about 100 bytes. Forgetting even one key per call (~190 bytes) over the 160
# calls of the measured rounds is 30 KB, and keeping finished calls (~5 KB each) far more.
_SLACK = 8 * 1024
_RESYNC = (
    "Event: CallcenterLinkDown",
    "Event: CallcenterResyncBegin",
    "Event: QueueStatusComplete",
    "Event: CoreShowChannelsComplete",
    "Event: CallcenterResyncEnd",
)


def _round(pipe: Pipeline, n: int, rnd: random.Random, lossy: bool) -> None:
    """Feeds one copy of the concurrent trace with fresh ids."""
    messages = trace("concurrent")
    if lossy:
        messages = tuple(perturb(messages, rnd, keep=0.85, mode="local"))
    offset = n * 60.0  # each round later than the last, as a live stream is
    last = 0.0
    for ts, text in messages:
        last = ts + offset
        pipe.feed_text("pbx1", renumber(text, n + 1), last)
    if lossy:
        for text in _RESYNC:
            pipe.feed_text("pbx1", text, last + 1)
    ran("tracker_memory_rounds")


@pytest.mark.parametrize("lossy", [False, True], ids=["whole", "lossy"])
def test_memory_is_flat_once_the_ended_memory_is_full(
    monkeypatch: pytest.MonkeyPatch, lossy: bool
) -> None:
    monkeypatch.setattr(calls, "_ENDED_MEMORY", _ENDED)
    rnd = random.Random(11)
    pipe = Pipeline()
    tracemalloc.start()
    try:
        for n in range(_WARMUP):
            _round(pipe, n, rnd, lossy)
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        for n in range(_WARMUP, _ROUNDS):
            _round(pipe, n, rnd, lossy)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # Every round's calls are gone: ended on their own, or closed by the resync.
    assert pipe.tracker.calls == {}
    assert len(pipe.tracker._ended) == _ENDED
    assert grown < _SLACK, f"{grown} bytes more after {_ROUNDS - _WARMUP} more rounds"
    pipe.tracker.close_all(0.0)
    check_closed(pipe)

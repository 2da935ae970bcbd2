"""A receiver back from a long outage gets its backlog at once, not on each delivery's backoff.

The worker's clock is simulated (the receiver and PostgreSQL are real); assertions are on that
clock, so nothing here depends on the machine's speed.
"""

from __future__ import annotations

import math
from typing import Any

from tests.integration.test_webhooks_delivery import Clock, make_worker, put, receiver
from tests.integration.webhook_receiver import Receiver

HOUR = 3600.0
__all__ = ["receiver"]  # the fixture, shared with the delivery tests


async def outage(pool: Any, receiver: Receiver, clock: Clock, worker: Any, events: int) -> None:
    """The receiver refuses connections for 12 hours while events keep coming."""
    await receiver.stop()
    for i in range(events):
        await put(pool, "call.ended", n=i)
        await worker.run_once()
        clock.advance(12 * HOUR / events)
    await receiver.start()


async def drain(pool: Any, worker: Any, clock: Clock, step: float = 10.0) -> float:
    """Runs the worker every ``step`` simulated seconds until nothing is pending."""
    began = clock.now
    for _ in range(20_000):
        await worker.run_once()
        if not await pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE state='pending'"):
            return clock.now - began
        clock.advance(step)
    raise AssertionError("never drained")


async def test_backlog_is_released_once_the_receiver_answers(pool: Any, receiver: Receiver) -> None:
    clock = Clock()
    worker = make_worker(pool, receiver, clock, probe_interval=60.0)
    try:
        await outage(pool, receiver, clock, worker, 40)
        took = await drain(pool, worker, clock)
    finally:
        await worker.stop()
    assert len(receiver.accepted) == 40 and set(receiver.accepted.values()) == {1}
    assert took <= 60.0 + 10.0  # one probe interval (and one step), not hours of backoff


async def test_without_probes_each_delivery_waits_for_its_own_backoff(
    pool: Any, receiver: Receiver
) -> None:
    # The same outage with probes off (the old behaviour): what the probe is for.
    clock = Clock()
    worker = make_worker(pool, receiver, clock, probe_interval=math.inf)
    try:
        await outage(pool, receiver, clock, worker, 40)
        took = await drain(pool, worker, clock, step=60.0)
    finally:
        await worker.stop()
    assert len(receiver.accepted) == 40
    assert took > HOUR


async def test_a_retry_after_holds_the_probe(pool: Any, receiver: Receiver) -> None:
    clock = Clock()
    worker = make_worker(pool, receiver, clock, probe_interval=60.0, max_retry_after=HOUR)
    receiver.mode = "429"
    receiver.retry_after = "1800"
    try:
        for i in range(3):
            await put(pool, "call.ended", n=i)
        assert await worker.run_once() == 3  # all answered 429, Retry-After 30 min
        for _ in range(20):  # 20 min: no probe while the receiver asked us to wait
            clock.advance(60.0)
            assert await worker.run_once() == 0
        receiver.mode = "ok"
        clock.advance(11 * 60.0)
        assert await worker.run_once() == 3
    finally:
        await worker.stop()

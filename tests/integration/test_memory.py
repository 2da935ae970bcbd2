"""Memory bound: thousands of simultaneous calls and agents through the whole running service.

A started service (PostgreSQL, the batched writer, every web feature subscribed: metrics,
wallboard, screen-pops, webhook outbox) ingests synthetic AMI bytes through the adapter's
protocol and its queue: every caller in a queue at once, a fifth of them talking to an agent.
tracemalloc measures the Python heap above the idle service with every call live and after all
of them ended. The test runs a quarter of the stated load (2,500 calls, 500 agents) and checks
it against the per-call and per-agent budget of docs/reliability.md; ``bench/memory.py`` runs
the full 10,000 calls and 2,000 agents and prints the figures.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiohttp import web

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.web.server import default_features, make_app
from tests.fuzz.amigen import Load, finish, frames, start
from tests.fuzz.harness import Wire

# The budget (docs/reliability.md, "Memory bound"): per live call, per logged-in agent (two
# queue memberships), and per ended call still remembered: the screen-pop keeps the last 10,000
# for dispositions and /pop, the tracker the keys of the last 20,000 against late events, so
# this part stops growing at 10,000 calls.
LIVE_CALL_BYTES = 6_000
AGENT_BYTES = 6_000
ENDED_CALL_BYTES = 5_000
ENDED_REMEMBERED = 10_000
FIXED_BYTES = 4_000_000  # metric families, wallboard and caches independent of the load
_WAIT_S = 120.0


@dataclass
class Figures:
    """What one measured run found (bytes above the idle service)."""

    live: int  # every call live, their snapshots written
    ended: int  # every call ended and written
    peak: int  # the most at any moment, write buffers included
    rows: int  # calls in PostgreSQL at the end


async def _until(what: Callable[[], Awaitable[bool] | bool], limit: float = _WAIT_S) -> None:
    """Polls until ``what`` holds; fails after ``limit`` seconds."""
    async with asyncio.timeout(limit):
        while True:
            value = what()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
            await asyncio.sleep(0.05)


async def measure(load: Load, db_url: str, spool: Path) -> Figures:
    """Runs the load through a started service and measures its heap with tracemalloc."""
    settings = Settings(
        database_url=db_url,
        spool_dir=str(spool),
        fastagi_enabled=False,
        wallboard_requires_token=False,
        db_flush_interval=0.05,
    )
    service = Service(settings)
    await asyncio.wait_for(service.start(ami=False), 60)
    app = make_app(service, default_features())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    wire = Wire(asyncio.get_running_loop(), service, queued=True)
    wire.protocol.data_received(b"Asterisk Call Manager/6.0.0\r\n")
    pool: asyncpg.Pool = service.pool

    async def settled() -> bool:
        return service.writer.pending == 0 and service.queue.empty()

    async def feed(chunks: AsyncIterator[bytes] | list[bytes]) -> None:
        for i, chunk in enumerate(chunks):  # type: ignore[arg-type]
            wire.protocol.data_received(chunk)
            if i % 8 == 7:  # as TCP reads interleave with the consumer
                await asyncio.wait_for(service.drain(), _WAIT_S)
        await asyncio.wait_for(service.drain(), _WAIT_S)

    try:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        await feed(frames(start(load)))  # type: ignore[arg-type]
        assert len(service.tracker.calls) == load.calls
        await asyncio.sleep(1.5)  # one tick: open calls are snapshotted for a restart
        await _until(settled)
        gc.collect()
        live = tracemalloc.get_traced_memory()[0] - base
        await feed(frames(finish(load)))  # type: ignore[arg-type]
        await _until(settled)
        gc.collect()
        ended, peak = (m - base for m in tracemalloc.get_traced_memory())
        assert service.tracker.calls == {}
        rows = await pool.fetchval("SELECT count(*) FROM calls")
        assert wire.client.last_error is None
        assert service.pipeline.counters["tracker_errors"] == 0
        assert service.subscriber_errors == 0
    finally:
        tracemalloc.stop()
        await asyncio.wait_for(runner.cleanup(), 30)
        await asyncio.wait_for(service.stop(), 60)
    return Figures(live, ended, peak, rows)


def budget(load: Load) -> tuple[int, int]:
    """The bound for (all calls live, all calls ended) at this load, in bytes."""
    agents = load.agents * AGENT_BYTES + FIXED_BYTES
    remembered = min(load.calls, ENDED_REMEMBERED)
    return load.calls * LIVE_CALL_BYTES + agents, remembered * ENDED_CALL_BYTES + agents


async def test_a_quarter_of_the_load_stays_within_the_budget(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    load = Load(calls=2_500, agents=500)
    figures = await measure(load, db_url, tmp_path)
    live_bound, ended_bound = budget(load)
    assert figures.rows == load.calls  # ingestion completed: every call is in PostgreSQL
    assert figures.live < live_bound
    assert figures.ended < ended_bound

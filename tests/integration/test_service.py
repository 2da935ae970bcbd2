"""The service against real PostgreSQL: idempotent replay and a restart with calls in flight."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import asyncpg

from callcenter import events
from callcenter.app import Service
from callcenter.config import Settings
from callcenter.model import CallEnded, Effect
from callcenter.replay import iter_trace, replay_file, trace_t0
from callcenter.store.calls import get_call

TRACE = Path(__file__).resolve().parent.parent / "traces" / "concurrent" / "ami.jsonl.gz"


def _messages() -> list[tuple[float, str]]:
    with gzip.open(TRACE, "rt", encoding="utf-8") as fh:
        return list(iter_trace(fh, trace_t0(TRACE) or 0.0))


async def _run(settings: Settings, messages: list[tuple[float, str]]) -> list[Effect]:
    """Starts a service (no AMI), feeds it messages in order, stops it; returns its effects."""
    service = Service(settings)
    seen: list[Effect] = []
    service.subscribe(seen.extend)
    await asyncio.wait_for(service.start(ami=False), 30)
    for ts, text in messages:
        service.ami_sink("pbx1", events.parse_message(text), ts)
    await asyncio.wait_for(service.drain(), 30)
    await asyncio.wait_for(service.stop(), 30)
    return seen


async def _rows(url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        keys = await conn.fetch("SELECT server, linkedid FROM calls ORDER BY linkedid")
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            return [await get_call(pool, k["server"], k["linkedid"]) or {} for k in keys]
        finally:
            await pool.close()
    finally:
        await conn.close()


async def test_replaying_a_trace_twice_leaves_one_row_per_call(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=db_url, spool_dir=str(tmp_path), fastagi_port=0)
    messages = _messages()
    await _run(settings, messages)
    first = await _rows(db_url)
    await _run(settings, messages)
    second = await _rows(db_url)
    assert len(first) == 8
    assert second == first
    assert await pool.fetchval("SELECT count(*) FROM queue_visits") == 8
    assert await pool.fetchval("SELECT count(*) FROM open_calls") == 0


async def test_calls_in_flight_are_resumed_after_a_restart(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=db_url, spool_dir=str(tmp_path), fastagi_port=0)
    messages = _messages()
    cut = len(messages) // 2
    first = await _run(settings, messages[:cut])
    ended_before = {e.call.linkedid for e in first if isinstance(e, CallEnded)}
    in_flight = await pool.fetchval("SELECT count(*) FROM open_calls")
    assert in_flight > 0, "the cut must leave calls in flight"
    second = await _run(settings, messages[cut:])
    ended_after = {e.call.linkedid for e in second if isinstance(e, CallEnded)}
    assert not ended_before & ended_after, "no call is finished twice"

    truth = {c.linkedid: c.to_dict() for c in replay_file(TRACE)}
    assert ended_before | ended_after == set(truth)
    rows = {r["linkedid"]: r for r in await _rows(db_url)}
    assert set(rows) == set(truth)
    for linkedid, expected in truth.items():
        got = rows[linkedid]
        for field in ("outcome", "queue", "agent", "caller_number", "hangup_by"):
            assert got[field] == expected[field], (linkedid, field)
        for field in ("wait_s", "talk_s"):
            assert got[field] is not None or expected[field] is None
            if expected[field] is not None:
                assert abs(got[field] - expected[field]) < 0.01, (linkedid, field)
    assert await pool.fetchval("SELECT count(*) FROM open_calls") == 0

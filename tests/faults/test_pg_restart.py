"""Issue 8, item 2: PostgreSQL restarted under load; nothing is lost, /healthz tells the truth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from callcenter.devdb import PrivatePostgres
from callcenter.store.migrations import migrate
from callcenter.webhooks import DeliveryWorker, Subscription, enqueue, generate_secret
from tests.faults.harness import wait_until
from tests.faults.scenarios import pg_restart
from tests.integration.webhook_receiver import Receiver


async def test_postgres_restart_under_load_loses_nothing(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    report = await asyncio.wait_for(pg_restart(private_pg, tmp_path, buffer_limit=20), 240)
    print(report.row(), report.notes)  # the figures, for whoever runs with -s
    assert report.problems() == []
    assert report.calls > 20 and report.verdict is not None
    # The AMI link never broke: every call is exact, but for those already in progress
    # when the service started (it came up after the traffic).
    assert report.verdict.exact + report.verdict.touched == report.calls
    assert report.verdict.touched <= report.verdict.reconstructed
    # The outage outlasted the memory bound, so records went through the spill file too.
    assert report.notes["spilled"] > 0 and not report.notes["spill_left"]
    assert report.notes["failed_flushes"] > 0


async def _put(pool: asyncpg.Pool, n: int) -> str:
    async with pool.acquire() as conn, conn.transaction():
        msg_id = await enqueue(conn, "ticket.created", {"reference": f"2026-{n:06d}"})
    assert msg_id is not None
    return msg_id


async def test_webhook_worker_delivers_again_after_postgres_restarts(
    private_pg: PrivatePostgres,
) -> None:
    # Regression: the worker's LISTEN connection is taken back by the pool when PostgreSQL
    # goes away; asking it is_closed() then raised on every round, so nothing was ever
    # delivered again until the service restarted.
    await migrate(private_pg.url)
    pool = await asyncpg.create_pool(private_pg.url, min_size=1, max_size=4)
    receiver = Receiver(secret=generate_secret())
    await receiver.start()
    sub = Subscription("backend", receiver.url, (receiver.secret,), ("*",))
    worker = DeliveryWorker(lambda: pool, [sub], allowed_hosts=("127.0.0.1",), poll_interval=0.1)
    worker.start()
    try:
        first = await _put(pool, 1)
        await wait_until(lambda: first in receiver.accepted, 30, "the first delivery")
        await asyncio.to_thread(private_pg.stop)
        await asyncio.sleep(0.5)  # the worker meets the outage
        await asyncio.to_thread(private_pg.start)

        async def put_again() -> str | None:
            try:
                return await _put(pool, 2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return None

        second: list[str] = []

        async def enqueued() -> bool:
            msg_id = await put_again()
            if msg_id is not None:
                second.append(msg_id)
            return bool(second)

        await wait_until(enqueued, 30, "PostgreSQL to take writes again")
        await wait_until(lambda: second[0] in receiver.accepted, 30, "a delivery after it")
    finally:
        await worker.stop()
        await receiver.stop()
        await pool.close()

"""How long a 12-hour webhook backlog takes to drain once the ticketing backend is back.

The municipality's volume (MISSION.md: about 1,400 calls a working day, a peak hour of 300):
the backend is down (connection refused) for 12 simulated hours while the day's call.ended
events arrive hour by hour (60, 120, 200, 300, 250, 150, 120, 90, 60, 30, 15, 5 = 1,400;
``--scale K`` multiplies every hour, e.g. 10 for a metropolitan line). The real DeliveryWorker
runs against real PostgreSQL and a real local receiver; only its clock is simulated, so 12
hours take seconds. When the receiver comes back, the clock follows the wall clock while the
worker is busy and jumps to the worker's next wake-up (a due retry or a probe, at least its
1-s poll) while it is idle, which is what the real loop would do.

Printed: the simulated time from "receiver back" to "everything delivered", for the worker as
it is (a probe of each backed-off receiver every ``probe_interval``; one 2xx releases the
backlog) and, same run, the baseline: each delivery on its own exponential backoff (capped at
6 h), the behaviour before, selected with ``probe_interval=inf``.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/webhook_backlog.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.store.migrations import migrate  # noqa: E402
from callcenter.webhooks import DeliveryWorker, Subscription, enqueue, generate_secret  # noqa: E402
from tests.integration.webhook_receiver import Receiver  # noqa: E402

HOURLY = (60, 120, 200, 300, 250, 150, 120, 90, 60, 30, 15, 5)
T0 = 1_800_000_000.0


class Clock:
    """The worker's simulated clock."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def payload(i: int) -> dict[str, Any]:
    """A call.ended body of a realistic size (about 1 KB)."""
    return {
        "server": "pbx1",
        "linkedid": f"{T0 + i:.1f}",
        "caller_number": "05321234567",
        "queue": "genel",
        "agent": "Zeynep Kaya",
        "outcome": "answered",
        "wait_s": 26.0,
        "talk_s": 72.0,
        "visits": [{"queue": "genel", "offers": [{"agent": "Zeynep Kaya", "ring_s": 3.2}] * 4}],
        "ivr_path": ["ana-menu", "bilgi", "temsilci"],
        "pad": "x" * 600,
    }


async def scenario(url: str, probe_interval: float, scale: int, seed: int) -> dict[str, Any]:
    """One outage and recovery; returns the simulated drain time and the counts."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    receiver = Receiver(secret=generate_secret(), realtime=False)
    await receiver.start()
    await receiver.stop()  # down: connection refused
    clock = Clock()
    rand = random.Random(seed)
    sub = Subscription("backend", receiver.url, (receiver.secret,), ("*",))
    worker = DeliveryWorker(
        lambda: pool,
        [sub],
        allowed_hosts=("127.0.0.1",),
        clock=clock,
        rand=rand.random,
        probe_interval=probe_interval,
        timeout=5.0,
    )
    try:
        await pool.execute("TRUNCATE webhook_outbox, webhook_deliveries, webhook_attempts CASCADE")
        n = 0
        for per_hour in HOURLY:
            count = per_hour * scale
            for minute in range(60):
                for _ in range(count // 60 + (1 if minute < count % 60 else 0)):
                    async with pool.acquire() as conn, conn.transaction():
                        await enqueue(conn, "call.ended", payload(n), occurred_at=clock.now)
                    n += 1
                await worker.run_once()
                clock.now += 60.0
        await receiver.start()
        back_at = clock.now
        wall = time.perf_counter()
        rounds = 0
        while True:
            began = time.perf_counter()
            done = await worker.run_once()
            rounds += 1
            pending = await pool.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"
            )
            if pending == 0:
                clock.now += time.perf_counter() - began
                break
            if done >= worker.batch:
                clock.now += time.perf_counter() - began
                continue
            due = await pool.fetchval(
                "SELECT extract(epoch FROM min(next_attempt_at)) FROM webhook_deliveries "
                "WHERE state = 'pending'"
            )
            wake = min(float(due), worker._last_probe + worker.probe_interval)
            clock.now = max(clock.now + worker.poll_interval, wake)
        delivered = len(receiver.accepted)
        return {
            "events": n,
            "delivered": delivered,
            "drain_s": clock.now - back_at,
            "wall_s": time.perf_counter() - wall,
            "rounds": rounds,
            "failed": await pool.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'"
            ),
        }
    finally:
        await worker.stop()
        await receiver.stop()
        await pool.close()


def human(seconds: float) -> str:
    """Seconds as s, min or h."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="multiplies the hourly volume")
    parser.add_argument("--probe-interval", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = "bench_backlog_" + secrets.token_hex(4)
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        await migrate(url)
        now = await scenario(url, args.probe_interval, args.scale, args.seed)
        before = await scenario(url, math.inf, args.scale, args.seed)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(
        f"12-hour outage, {now['events']} call.ended events (scale {args.scale}); "
        "time from receiver back to all delivered (simulated clock):"
    )
    for label, r in (("probe + release", now), ("baseline (own backoff)", before)):
        print(
            f"  {label:<24} {human(r['drain_s']):>10}   delivered {r['delivered']}/{r['events']}"
            f", failed {r['failed']}, {r['rounds']} rounds, {r['wall_s']:.1f} s wall"
        )
    ratio = before["drain_s"] / max(now["drain_s"], 1e-9)
    print(f"  baseline / probe + release = {ratio:.0f}x")
    print(json.dumps({"now": now, "baseline": before}))


if __name__ == "__main__":
    asyncio.run(main())

"""PostgreSQL restarted under two clustered instances: the owner keeps ingesting and keeps its
server (no takeover with stale calls), and every finished call is logged once, exactly."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from callcenter.app import Service
from callcenter.cluster import HOLD_OFF_S, RETRY_S
from callcenter.config import AsteriskServer, Settings
from callcenter.devdb import PrivatePostgres
from callcenter.sim import Simulator


async def _until(check: Any, seconds: float, what: str) -> None:
    """Polls a synchronous ``check`` until it holds; fails with ``what`` after ``seconds``."""

    async def poll() -> None:
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), seconds)
    except TimeoutError:
        raise AssertionError(f"not within {seconds} s: {what}") from None


async def test_the_owner_keeps_its_server_through_a_postgresql_restart(
    private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    finished: set[str] = set()
    async with Simulator(calls_per_second=4, agents=40, speed=1, seed=77, port=0) as sim:
        previous = sim.pbx.hooks.on_call_ended

        def ended(call: Any) -> None:
            finished.add(call.linkedid)
            if previous is not None:
                previous(call)

        sim.pbx.hooks.on_call_ended = ended
        server = AsteriskServer(port=sim.port, secret="callcenter", action_timeout=2.0)
        base = Settings(
            database_url=private_pg.url,
            asterisk=(server,),
            fastagi_enabled=False,
            ingest_mode="cluster",
            cluster_channel=f"cc_test_{secrets.token_hex(4)}",
        )
        a = Service(replace(base, spool_dir=str(tmp_path / "a")))
        b = Service(replace(base, spool_dir=str(tmp_path / "b")))
        flaps: list[str] = []

        async def watch_ownership() -> None:
            while True:
                if not a.owns("pbx1") or b.owns("pbx1"):
                    flaps.append(f"a={a.owns('pbx1')} b={b.owns('pbx1')}")
                await asyncio.sleep(0.02)

        watcher: asyncio.Task[None] | None = None
        try:
            await asyncio.wait_for(a.start(), 30)
            await asyncio.wait_for(b.start(), 30)
            watcher = asyncio.create_task(watch_ownership())
            await _until(lambda: len(finished) >= 10, 30, "ten calls end")

            await asyncio.to_thread(private_pg.stop)
            down = set(finished)
            await _until(lambda: len(finished) >= len(down) + 5, 30, "calls end while it is down")
            await asyncio.to_thread(private_pg.start)
            assert a.cluster is not None and b.cluster is not None
            await _until(
                lambda: (
                    a.cluster.health()["stream_connected"]
                    and b.cluster.health()["stream_connected"]
                ),
                30,
                "both instances are back on the stream",
            )
            # Long enough for b's head start window to pass: it must still leave pbx1 alone.
            await asyncio.sleep(HOLD_OFF_S + 3 * RETRY_S)
            assert not flaps, flaps[:3]
            assert a.clients["pbx1"].connected and not b.clients
            assert a.cluster.takeovers == 0 and b.cluster.takeovers == 0

            done = set(finished)
            conn = await asyncpg.connect(private_pg.url, timeout=10)
            try:

                async def all_logged() -> None:
                    while True:
                        rows = await conn.fetch("SELECT linkedid, reconstructed FROM calls")
                        if done <= {r["linkedid"] for r in rows}:
                            return
                        await asyncio.sleep(0.1)

                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_logged(), 30)
                rows = await conn.fetch("SELECT linkedid, reconstructed FROM calls")
            finally:
                await conn.close()
            logged = {r["linkedid"]: r["reconstructed"] for r in rows}
            assert done <= set(logged), sorted(done - set(logged))[:5]
            assert set(logged) <= set(finished)
            # a never lost the AMI link: calls that ended while PostgreSQL was down are exact.
            during = done - down
            assert during and not any(logged[k] for k in during), sorted(during)[:5]
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await asyncio.wait_for(b.stop(), 30)
            await asyncio.wait_for(a.stop(), 30)

"""A hostile or broken PBX cannot stall everything; /healthz reports per PBX (issue 15).

Two fake Asterisk servers speak AMI over TCP to the running service. One floods calls that never
end: the tracker keeps at most ``max_open_calls_per_server`` of them (the oldest closed as
reconstructed, counted in /metrics), the other PBX goes on, /pop?number= finds a live call
through the index, and /healthz stays 200 with the database reachable. When one PBX of the two
goes down /healthz still answers 200 (``partial``), naming the PBX; when both are down, 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.web.auth import create_token
from callcenter.web.server import default_features, make_app, serve
from tests.amiserver import FakeAmiServer, event

CAP = 300


@dataclass
class Floor:
    service: Service
    port: int
    pbx1: FakeAmiServer
    pbx2: FakeAmiServer


def server(name: str, ami: FakeAmiServer) -> AsteriskServer:
    return AsteriskServer(
        name=name,
        host=ami.host,
        port=ami.port,
        username="callcenter",
        secret="s3cret",
        ping_interval=0.5,
        action_timeout=1.0,
        connect_timeout=1.0,
    )


@pytest.fixture
async def floor(db_url: str, tmp_path: Path) -> AsyncIterator[Floor]:
    async with FakeAmiServer(secret="s3cret") as pbx1, FakeAmiServer(secret="s3cret") as pbx2:
        settings = Settings(
            database_url=db_url,
            asterisk=(server("pbx1", pbx1), server("pbx2", pbx2)),
            spool_dir=str(tmp_path),
            fastagi_enabled=False,
            max_open_calls_per_server=CAP,
        )
        service = Service(settings)
        await asyncio.wait_for(service.start(), 30)
        runner = await serve(make_app(service, default_features()), "127.0.0.1", 0)
        try:
            yield Floor(service, runner.addresses[0][1], pbx1, pbx2)
        finally:
            await runner.cleanup()
            await asyncio.wait_for(service.stop(), 30)


async def get(port: int, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}{path}", headers=headers) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


def new_channel(n: int) -> str:
    uid = f"1799000000.{n}"
    return event(
        "Newchannel",
        Channel=f"PJSIP/trunk-{n:08x}",
        Uniqueid=uid,
        Linkedid=uid,
        CallerIDNum=f"0532{n:07d}",
        CallerIDName="Flood",
        Context="from-trunk",
        Exten="4441000",
    )


async def until(check: Any, limit: float = 30.0) -> None:
    async def loop() -> None:
        while not await check():  # noqa: ASYNC110 (polling over HTTP, bounded by wait_for)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), limit)


async def test_a_flood_of_calls_that_never_end_is_capped_and_healthz_stays_up(
    floor: Floor, pool: asyncpg.Pool
) -> None:
    service, port = floor.service, floor.port
    flood = 4 * CAP
    await floor.pbx1.push("".join(new_channel(n) for n in range(flood)))
    await floor.pbx2.push(new_channel(10**6))

    async def taken() -> bool:
        return service.pipeline.counters["events"] >= flood + 1 and service.queue.qsize() == 0

    await until(taken)
    assert service.tracker.open_per_server() == {"pbx1": CAP, "pbx2": 1}
    assert service.tracker.counters["open_calls_capped"] == flood - CAP
    # The oldest were closed as reconstructed and reach the call log like any ended call.
    await until(lambda: _count(pool, "SELECT count(*) FROM calls WHERE reconstructed"), 30)
    status, health = await get(port, "/healthz")
    assert status == 200 and health["status"] == "ok", health
    assert health["asterisk"]["pbx1"]["open_calls"] == CAP
    assert health["database"]["reachable"] is True
    status, metrics = await get(port, "/metrics")
    assert 'callcenter_tracker_anomalies_total{kind="open_calls_capped"}' in metrics
    # /pop?number= finds the newest live call of a number through the index.
    supervisor, _ = await create_token(pool, role="supervisor", name="s")
    n = flood - 1
    status, pop = await get(port, f"/pop?number=0532{n:07d}&format=json", supervisor)
    assert status == 200 and pop["linkedid"] == f"1799000000.{n}" and pop["server"] == "pbx1"
    index = service_screenpop(floor)._by_number
    assert len(index) == CAP + 1  # one entry per live call: the closed ones left the index


async def _count(pool: asyncpg.Pool, sql: str) -> bool:
    return bool(await pool.fetchval(sql) >= 3 * CAP)


def service_screenpop(floor: Floor) -> Any:
    # The screen-pop of the running app (agent feature), subscribed to the service.
    from callcenter.screenpop import ScreenPop

    [pop] = [s for s in floor.service.subscribers if isinstance(s, ScreenPop)]
    return pop


async def test_one_pbx_down_of_two_is_partial_and_200_both_down_is_503(floor: Floor) -> None:
    port = floor.port

    async def both_up() -> bool:
        status, body = await get(port, "/healthz")
        return status == 200 and body["status"] == "ok"

    await until(both_up)
    floor.pbx2.secret = "rotated"  # it comes back refusing us: down for good
    floor.pbx2.drop()

    async def one_down() -> bool:
        _, body = await get(port, "/healthz")
        return body["asterisk"]["pbx2"]["status"] == "down"

    await until(one_down)
    status, body = await get(port, "/healthz")
    assert status == 200 and body["status"] == "partial"
    assert body["asterisk"]["pbx1"]["status"] == "up"
    floor.pbx1.secret = "rotated"
    floor.pbx1.drop()

    async def all_down() -> bool:
        status, body = await get(port, "/healthz")
        return status == 503 and body["status"] == "degraded"

    await until(all_down)

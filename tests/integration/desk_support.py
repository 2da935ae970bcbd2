"""A service connected over real AMI to a simulated Asterisk, with the agent's desk served.

The simulator runs in manual time (``sim.server.advance``); one agent, Zeynep Kaya on
``Local/1001@agents/n``, is a member of genel and sosyal-yardim before the service connects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestServer

from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.metrics import http as metrics_http
from callcenter.sim import Simulator
from callcenter.sim import members as sim_members
from callcenter.sim.plan import CallPlan
from callcenter.web import agent, api, wallboard
from callcenter.web.server import make_app

AGENT = "Zeynep Kaya"
IFACE = "Local/1001@agents/n"
QUEUES = ("genel", "sosyal-yardim")


@dataclass
class Desk:
    """What a desk test drives: the simulator, the service and its HTTP server."""

    sim: Simulator
    service: Service
    server: TestServer
    clock: float = 0.0

    def advance(self, seconds: float) -> None:
        """Moves the simulated PBX forward (events go out at once)."""
        self.clock += seconds
        self.sim.server.advance(self.clock)

    def received(self, action: str) -> list[dict[str, str]]:
        """The AMI actions of one name the simulator received, oldest first."""
        return [h for name, h in self.sim.server.received if name == action.lower()]

    def sim_members(self) -> dict[str, Any]:
        """Zeynep's memberships as the simulated app_queue holds them, by queue."""
        device = self.sim.pbx.devices.get(IFACE)
        return {m.queue.name: m for m in (device.members if device else [])}

    def ring(self, number: str = "05321234567", talk: float = 5.0) -> None:
        """A caller dials the direct line (queue genel); the agent answers after 3 s."""
        plan = CallPlan(name="Ayşe Yılmaz", number=number, talk=talk, hangup_by="caller",
                        patience=300.0)  # fmt: skip
        self.sim.pbx.originate(plan.with_variables(), None, originated=False)


async def wait_until(predicate: Callable[[], Any], limit: float = 10.0) -> Any:
    """Polls ``predicate`` (sync or async) until true; fails after ``limit`` seconds."""
    for _ in range(int(limit / 0.02)):
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@contextlib.asynccontextmanager
async def desk_running(db_url: str, **settings: Any) -> AsyncIterator[Desk]:
    """The simulator, the service on its AMI, and the pages on a real socket."""
    sim = Simulator(speed=None, port=0, auth_fail_delay=0, traffic=False)
    await sim.start()
    for queue in QUEUES:
        sim_members.add_member(
            sim.pbx, sim.pbx.queues[queue], IFACE, AGENT, state_interface="Custom:1001"
        )
    service = Service(
        Settings(
            **{
                "database_url": db_url,
                "db_flush_interval": 0.05,
                "fastagi_enabled": False,
                "asterisk": (AsteriskServer(name="pbx1", port=sim.port, secret="callcenter"),),
                **settings,
            }
        )
    )
    server: TestServer | None = None
    try:
        await service.start()
        app = make_app(service, [metrics_http.setup, wallboard.setup, agent.setup, api.setup])
        server = TestServer(app)
        await server.start_server()
        await wait_until(lambda: len([k for k in service.tracker.members if k[2] == IFACE]) == 2)
        yield Desk(sim, service, server)
    finally:
        if server is not None:
            await server.close()
        await service.stop()
        await sim.stop()


async def seed_abandoned(pool: Any, linkedid: str, number: str, name: str, minutes_ago: float,
                         outcome: str = "abandoned") -> None:  # fmt: skip
    """A call of today in the log that ended without an agent (or answered, by ``outcome``)."""
    started = datetime.now(UTC).timestamp() - minutes_ago * 60
    await pool.execute(
        """
        INSERT INTO calls (server, linkedid, uniqueid, caller_number, caller_name, queue,
                           outcome, started_at, wait_s, agent)
        VALUES ('pbx1', $1, $1, $2, $3, 'genel', $4, to_timestamp($5), 95.0,
                CASE WHEN $4 = 'answered' THEN 'Elif Şahin' END)
        """,
        linkedid,
        number,
        name,
        outcome,
        started,
    )

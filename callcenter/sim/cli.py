"""The simulator as a function API: what ``python -m callcenter sim`` and ``demo`` call.

``run_sim(calls_per_second=N, agents=M, port=P)`` is load mode (a steady rate); without a
rate it is the municipality's working day, starting in the morning peak. Both serve real
AMI on ``host:port`` with simulated time running ``speed`` times faster than the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from callcenter.sim.agi_ivr import AgiIvr
from callcenter.sim.config import PbxConfig
from callcenter.sim.engine import Pbx
from callcenter.sim.hooks import CallEndHook
from callcenter.sim.ivr_caller import CallerMix
from callcenter.sim.server import AmiServer, Credentials
from callcenter.sim.traffic import TrafficParams, load_params
from callcenter.sim.workload import QUEUES, RunStats, Workload, morning_peak, traffic_config

log = logging.getLogger(__name__)


def scaled_staffing(params: TrafficParams, agents: int) -> TrafficParams:
    """The same day with ``agents`` seats at the peak (every hour scaled alike)."""
    peak = max(n for _, n in params.staffing)
    staffing = tuple((h, max(1, round(n * agents / peak))) for h, n in params.staffing)
    return dataclasses.replace(params, staffing=staffing, agent_count=agents)


class Simulator:
    """A simulated Asterisk with its traffic: start it, point a service at its port, stop it.

    With ``agi=(host, port)`` calls on the IVR line go through that FastAGI IVR (the
    service's) instead of the built-in menu, the caller model pressing the keys; port 0 means
    the IVR is not listening yet (set :attr:`agi_address` once it is): until then, as with
    any unreachable IVR, the dialplan sends callers to the general queue. ``ivr_menu`` is
    the menu file the callers read (default: the packaged one, as the service's default).
    """

    def __init__(
        self,
        *,
        calls_per_second: float | None = None,
        agents: int | None = None,
        params: TrafficParams | None = None,
        speed: float | None = 1.0,
        seed: int | None = None,
        start_epoch: float | None = None,
        host: str = "127.0.0.1",
        port: int = 5038,
        username: str = "callcenter",
        secret: str = "callcenter",
        on_call_answered_end: CallEndHook | None = None,
        config: PbxConfig | None = None,
        traffic: bool = True,
        auth_fail_delay: float = 1.0,
        agi: tuple[str, int] | None = None,
        ivr_menu: str | None = None,
        ivr_callers: CallerMix | None = None,
    ) -> None:
        if calls_per_second is not None:
            params = load_params(calls_per_second, agents or 50)
            start_epoch = time.time() if start_epoch is None else start_epoch
        else:
            params = params or TrafficParams()
            if agents is not None:
                params = scaled_staffing(params, agents)
        self.params = params
        self.host, self.requested_port = host, port
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        epoch = morning_peak() if start_epoch is None else start_epoch
        rng = random.Random(self.seed)
        menu = None
        queues: tuple[str, ...] = QUEUES
        if agi is not None:
            from callcenter.ivr.menu import load_menu

            menu = load_menu(ivr_menu or None)
            # The IVR routes to the menu's queues: agents log in to those too.
            queues = tuple(dict.fromkeys((*QUEUES, *menu.queues)))
        self.pbx = Pbx(config or traffic_config(params, queues=queues), epoch=epoch, rng=rng)
        self.pbx.hooks.on_call_answered_end = on_call_answered_end
        self.workload: Workload | None = None
        if traffic:
            self.workload = Workload(self.pbx, params, random.Random(self.seed + 1))
        self.server = AmiServer(
            self.pbx,
            credentials=Credentials(username, secret),
            speed=speed,
            auth_fail_delay=auth_fail_delay,
        )
        self.agi: AgiIvr | None = None
        if agi is not None and menu is not None:
            caller_rng = random.Random(self.seed + 2)  # its own, so the traffic draws stay put
            self.agi = AgiIvr(
                self.pbx, menu, agi, caller_rng, wake=self.server.wake, mix=ivr_callers
            )
            self.pbx.agi = self.agi
        self.port = 0

    @property
    def agi_address(self) -> tuple[str, int] | None:
        """Where IVR-line calls connect for their FastAGI session (None: the built-in menu)."""
        return self.agi.address if self.agi is not None else None

    @agi_address.setter
    def agi_address(self, address: tuple[str, int]) -> None:
        if self.agi is None:
            raise ValueError("this simulator has the built-in IVR: create it with agi=")
        self.agi.address = address

    @property
    def stats(self) -> RunStats:
        """Finished calls so far (a workload-less simulator counts nothing)."""
        return self.workload.stats if self.workload else RunStats()

    async def start(self) -> int:
        """Starts the traffic and the AMI listener; returns the port."""
        if self.workload is not None:
            self.workload.start()
        self.port = await self.server.start(self.host, self.requested_port)
        log.info("simulated Asterisk on %s:%s (seed %s)", self.host, self.port, self.seed)
        return self.port

    async def stop(self) -> None:
        """Disconnects every client and stops (disposition calls get two seconds to finish)."""
        await self.server.close()
        if self.agi is not None:
            await self.agi.close()
        await self.pbx.hooks.drain()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def snapshot(self) -> dict[str, Any]:
        """Live figures: simulated time, callers waiting, agents talking, calls so far."""
        pbx = self.pbx
        waiting = sum(len(q.entries) for q in pbx.queues.values())
        talking = sum(1 for c in pbx.calls.values() if c.attempt is not None)
        return {
            "sim_epoch": round(pbx.now_epoch(), 3),
            "waiting": waiting,
            "talking": talking,
            "live_calls": len(pbx.calls),
            "events": pbx.events_emitted,
            **self.stats.summary(),
        }

    def summary(self) -> dict[str, Any]:
        """The run's closing figures (simulated seconds)."""
        return self.stats.summary()


async def run_sim(
    *,
    calls_per_second: float | None = None,
    agents: int | None = None,
    port: int = 5038,
    host: str = "127.0.0.1",
    speed: float = 1.0,
    seed: int | None = None,
    start_epoch: float | None = None,
    duration: float | None = None,
    params: TrafficParams | None = None,
    username: str = "callcenter",
    secret: str = "callcenter",
    on_call_answered_end: CallEndHook | None = None,
    on_ready: Callable[[Simulator], None] | None = None,
    agi: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """Serves a simulated Asterisk until ``duration`` wall seconds pass (or the task is
    cancelled); returns the run's summary.

    With ``calls_per_second`` it is load mode: a steady rate around the clock, ``agents``
    seats (default 50) and talk times short enough for them to keep up. Otherwise the
    municipality's working day starting at 09:00 Istanbul time, ``agents`` scaling the
    staffing profile. ``on_call_answered_end(linkedid, agent, info)`` is called (or awaited)
    as each answered call ends, for the demo's dispositions. ``agi=(host, port)`` sends
    IVR-line calls through that FastAGI IVR.
    """
    sim = Simulator(
        calls_per_second=calls_per_second,
        agents=agents,
        params=params,
        speed=speed,
        seed=seed,
        start_epoch=start_epoch,
        host=host,
        port=port,
        username=username,
        secret=secret,
        on_call_answered_end=on_call_answered_end,
        agi=agi,
    )
    await sim.start()
    try:
        if on_ready is not None:
            on_ready(sim)
        if duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(duration)
    finally:
        with contextlib.suppress(Exception):
            await sim.stop()
    return sim.summary()

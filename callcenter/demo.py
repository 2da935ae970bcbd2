"""The whole service on one machine: PostgreSQL, a simulated Asterisk, the service, its pages.

Simulated agents close each answered call with a disposition through the same HTTP API the
agent page uses (about one call in four a request, which opens a ticket).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp
import structlog

from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.model import CallEnded, CallStarted, Effect

log = structlog.get_logger(__name__)

DEMO_SERVER = "demo"
# The simulator's caller intents (Turkish names) -> the ticket category codes.
_CATEGORY_CODES = {
    "Bilgi ve yönlendirme": "bilgi-rehberlik",
    "Sosyal yardım": "sosyal-yardim",
    "Başvuru durumu": "bilgi-rehberlik",
    "Masa-sandalye": "masa-sandalye",
    "Çözüm ofisleri": "cozum-ofisi",
    "Depremzede başvuruları": "depremzede",
    "Şikâyet ve öneri": "sikayet-oneri",
    "CİMER / Açık Kapı": "cimer-acik-kapi",
    "Muhtarlık işleri": "muhtarlik",
}


@dataclass
class DemoOptions:
    """What ``callcenter demo`` can be asked for."""

    duration: float | None = None  # wall seconds; None = until Ctrl-C
    speed: float = 30.0  # simulated seconds per wall second
    http_port: int = 8080
    seed: int | None = 1
    agents: int | None = None
    database_url: str | None = None


@dataclass
class _Tally:
    """Calls that ended during this run (the summary is read back from their rows)."""

    ended: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # every call of the run (IVR-only ones too)
    answered: int = 0
    abandoned: int = 0
    dispositions: int = 0
    disposition_errors: int = 0

    def effects(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, CallStarted | CallEnded):
                self.seen.add(effect.call.linkedid)
            if isinstance(effect, CallEnded) and effect.call.visits:
                self.ended.append(effect.call.linkedid)
                outcome = effect.call.outcome
                self.answered += outcome == "answered"
                self.abandoned += outcome == "abandoned"


async def _database(options: DemoOptions, stack: contextlib.AsyncExitStack) -> str:
    """The PostgreSQL to use: DATABASE_URL if given, else a private one started for the run."""
    url = options.database_url or os.environ.get("DATABASE_URL")
    if url:
        return url
    from callcenter.devdb import PrivatePostgres, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError(
            "no DATABASE_URL and no PostgreSQL server binaries: set DATABASE_URL or "
            "apt-get install postgresql"
        )
    server = PrivatePostgres(bindir)
    stack.callback(server.destroy)
    await asyncio.to_thread(server.init)
    await asyncio.to_thread(server.start)
    print(f"demo: private PostgreSQL on port {server.port}", file=sys.stderr)
    return server.url


async def _demo_tokens(service: Service) -> tuple[str, str]:
    """Tokens (stored hashed like any other) for the simulated agents and the supervisor."""
    from callcenter.web.auth import create_token

    agents, _ = await create_token(service.pool, role="integration", name="demo simulated agents")
    supervisor, _ = await create_token(service.pool, role="supervisor", name="demo supervisor")
    return agents, supervisor


async def agent_links(service: Service, sim: Any, base: str, limit: int = 12) -> list[str]:
    """One-time login links to the agent page, one per simulated agent (first ``limit``).

    Each agent gets an agent token naming their queue-member identity, so the page shows
    their pops and its controls act on their seat in the simulator.
    """
    from callcenter.web.auth import create_login_link, create_token

    workload = getattr(sim, "workload", None)
    if workload is None:
        return []
    lines = []
    for ext in workload.exts[:limit]:
        name = workload.names[ext]
        _, principal = await create_token(
            service.pool,
            role="agent",
            name=f"demo agent {name}",
            agent=name,
            interface=f"Local/{ext}@agents/n",
        )
        code = await create_login_link(
            service.pool, principal.token_id, service.settings.login_link_minutes
        )
        lines.append(f"demo: agent {ext} {name:<18} {base}/agent/login?code={code}")
    return lines


async def summary(service: Service, tally: _Tally) -> dict[str, Any]:
    """The run's figures, read back from the rows PostgreSQL holds for the calls it ended."""
    row = await service.pool.fetchrow(
        """
        SELECT count(*) AS calls,
               count(*) FILTER (WHERE outcome = 'answered') AS answered,
               count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
               avg(wait_s) AS avg_wait_s,
               avg(talk_s) FILTER (WHERE outcome = 'answered') AS avg_talk_s
        FROM calls WHERE server = $1 AND linkedid = ANY($2::text[])
        """,
        DEMO_SERVER,
        tally.ended,
    )
    # Agents' requests and the IVR's self-service (masa-sandalye) both attach their call.
    tickets = await service.pool.fetchval(
        """
        SELECT count(DISTINCT ticket_id) FROM ticket_calls
        WHERE server = $1 AND linkedid = ANY($2::text[])
        """,
        DEMO_SERVER,
        list(tally.seen),
    )
    return {
        "calls": row["calls"],
        "answered": row["answered"],
        "abandoned": row["abandoned"],
        "avg_wait_s": round(row["avg_wait_s"] or 0.0, 1),
        "avg_talk_s": round(row["avg_talk_s"] or 0.0, 1),
        "tickets": tickets,
    }


def _progress(service: Service, tally: _Tally, out: TextIO) -> None:
    """One line of live figures: calls so far, waiting now, answered, abandoned, SL."""
    waiting = sum(1 for _ in service.tracker.waiting())
    done = tally.answered + tally.abandoned
    sl = f"{100 * tally.answered / done:.0f}%" if done else "-"
    line = (
        f"calls {len(tally.ended):>5}  waiting {waiting:>3}  answered {tally.answered:>5}  "
        f"abandoned {tally.abandoned:>4}  answered/offered {sl:>4}  "
        f"dispositions {tally.dispositions}"
    )
    if out.isatty():
        out.write("\r" + line)
    else:
        out.write(line + "\n")
    out.flush()


async def run_demo(
    options: DemoOptions, out: TextIO = sys.stderr, stop: asyncio.Event | None = None
) -> dict[str, Any]:
    """Runs the demo until ``options.duration`` passes or ``stop`` is set; returns the summary."""
    from callcenter.sim.cli import Simulator
    from callcenter.sim.hooks import AnsweredCallEnd
    from callcenter.web.server import default_features, make_app, serve

    async with contextlib.AsyncExitStack() as stack:
        database_url = await _database(options, stack)
        tally = _Tally()
        http: aiohttp.ClientSession | None = None
        base = f"http://127.0.0.1:{options.http_port}"
        token_holder: dict[str, str] = {}

        async def dispose(linkedid: str, agent: str, info: AnsweredCallEnd) -> None:
            if http is None or "token" not in token_holder:
                return
            body: dict[str, Any] = {"kind": "info", "agent": agent, "server": DEMO_SERVER}
            if info.request:
                body.update(
                    kind="request",
                    category=_CATEGORY_CODES.get(info.category or "", "bilgi-rehberlik"),
                    note="Simüle edilen talep / simulated request",
                )
            # The call row may still be on its way to PostgreSQL: a few bounded tries.
            for _ in range(5):
                async with http.post(
                    f"{base}/api/calls/{linkedid}/disposition",
                    json=body,
                    headers={"Authorization": f"Bearer {token_holder['token']}"},
                ) as resp:
                    if resp.status in (200, 201):
                        tally.dispositions += 1
                        return
                    if resp.status != 404:
                        break
                await asyncio.sleep(0.5)
            tally.disposition_errors += 1

        sim = Simulator(
            speed=options.speed,
            seed=options.seed,
            agents=options.agents,
            port=0,
            on_call_answered_end=dispose,
            # IVR-line calls go through the service's FastAGI IVR; its port is set once it listens.
            agi=("127.0.0.1", 0),
        )
        port = await sim.start()
        stack.push_async_callback(sim.stop)
        settings = Settings(
            database_url=database_url,
            asterisk=(
                AsteriskServer(
                    name=DEMO_SERVER, port=port, username="callcenter", secret="callcenter"
                ),
            ),
            http_port=options.http_port,
            spool_dir=tempfile.mkdtemp(prefix="callcenter-demo-"),
            # The simulator's queues: wrap-up as its agents take it.
            wrapup_seconds={"*": 3.0},
            fastagi_port=0,  # an ephemeral port, read back below
            # An agent page left open pauses its agent for after-call work after each call:
            # wall seconds, so short at the simulator's speed (10 s is 5 simulated minutes).
            agent_wrapup_seconds=10.0,
        )
        service = Service(settings)
        service.subscribe(tally.effects)
        await service.start()
        stack.push_async_callback(service.stop)
        if service.ivr is not None:
            sim.agi_address = ("127.0.0.1", service.ivr.server.port)
        runner = await serve(make_app(service, default_features()), "127.0.0.1", options.http_port)
        stack.push_async_callback(runner.cleanup)
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)
        token_holder["token"], supervisor = await _demo_tokens(service)
        links = await agent_links(service, sim, base)
        print(
            f"demo: simulated Asterisk on 127.0.0.1:{port} "
            f"(seed {sim.seed}, speed x{options.speed:g})\n"
            f"demo: wallboard  {base}/wallboard?token={supervisor}\n"
            f"demo: reports    {base}/reports?token={supervisor}\n"
            f"demo: metrics    {base}/metrics   health {base}/healthz\n"
            "demo: agent page, one-time login links (each opens one browser session; "
            f"{base}/agent also takes an agent token):\n" + "\n".join(links),
            file=out,
        )
        stop = stop or asyncio.Event()
        deadline = None if options.duration is None else time.monotonic() + options.duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            left = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), left)
            _progress(service, tally, out)
        if out.isatty():
            out.write("\n")
        await sim.stop()  # no new calls; dispositions in flight get their chance
        await asyncio.wait_for(service.drain(), 30)
        await asyncio.wait_for(service.writer.flush(), 30)
        result = await summary(service, tally)
        log.info("demo_finished", **result, dispositions=tally.dispositions)
        return result

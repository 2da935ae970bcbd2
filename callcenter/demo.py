"""The whole service on one machine: PostgreSQL, a simulated Asterisk, the service, its pages.

Simulated agents close each answered call with a disposition through the same HTTP API the
agent page uses (about one call in four a request, which opens a ticket).

Time: the simulator replays yesterday's working day (from 09:00, Istanbul) ``speed`` times
faster than the wall clock, and the service, its pages and its reports run on that simulated
clock, so waits, talk, wrap-up and "today" agree with each other at any speed; the whole day
lies in the past, so ``callcenter report`` for it afterwards reads complete figures. Each demo
writes into a fresh database (``callcenter_demo`` on the DATABASE_URL server, replaced at every
start, or a private server), so demos never pile into one day.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

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
    database_url: str | None = None  # the server to create the demo's database on
    database_name: str = "callcenter_demo"  # dropped and created afresh at every start
    day: date | None = None  # the simulated working day (default: yesterday, Istanbul)


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


async def fresh_database(server_url: str, name: str) -> str:
    """Drops and creates database ``name`` on the server of ``server_url``; returns its URL."""
    import asyncpg

    if not name.replace("_", "").isalnum():
        raise RuntimeError(f"demo database name {name!r}: letters, digits and _ only")
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as exc:
        raise RuntimeError(
            f"cannot create the demo's fresh database {name!r} on {_redacted(server_url)}: {exc}"
        ) from None
    finally:
        await conn.close()
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def _redacted(url: str) -> str:
    """A database URL without its password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


async def _database(options: DemoOptions, stack: contextlib.AsyncExitStack) -> str:
    """A fresh PostgreSQL database: on DATABASE_URL's server if given, else a private server."""
    url = options.database_url or os.environ.get("DATABASE_URL")
    if url:
        return await fresh_database(url, options.database_name)
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


async def _demo_tokens(service: Service) -> tuple[str, str, int]:
    """Tokens (stored hashed like any other) for the simulated agents and the supervisor."""
    from callcenter.web.auth import create_token

    agents, _ = await create_token(service.pool, role="integration", name="demo simulated agents")
    supervisor, who = await create_token(service.pool, role="supervisor", name="demo supervisor")
    return agents, supervisor, who.token_id


async def supervisor_links(service: Service, token_id: int, base: str) -> tuple[str, str]:
    """One-time links opening the wallboard and the reports with a session cookie."""
    from callcenter.web.auth import create_login_link

    minutes = service.settings.login_link_minutes
    wallboard = await create_login_link(service.pool, token_id, minutes)
    reports = await create_login_link(service.pool, token_id, minutes)
    return (
        f"{base}/wallboard/login?code={wallboard}",
        f"{base}/wallboard/login?code={reports}&to=reports",
    )


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


async def summary(service: Service, tally: _Tally, day: date, last: date) -> dict[str, Any]:
    """The run's figures as ``callcenter report`` counts them for the simulated day(s).

    The demo's database holds this run only, so the report of its days is the run: every
    call (IVR-only ones too, as the municipality counts them), requests, talk and wait.
    """
    from callcenter.kpis import Thresholds
    from callcenter.reports import ReportQuery, build_report

    query = ReportQuery(day, last, tz=service.settings.timezone)
    report = await build_report(
        service.pool, query, Thresholds.from_settings(service.settings), now=service.clock()
    )
    k = report.total.kpis()
    tickets = await service.pool.fetchval(
        """
        SELECT count(DISTINCT ticket_id) FROM ticket_calls
        WHERE server = $1 AND linkedid = ANY($2::text[])
        """,
        DEMO_SERVER,
        list(tally.seen),
    )
    return {
        "from": day.isoformat(),
        "to": last.isoformat(),
        "calls": k["calls"],
        "requests": k["requests"],
        "avg_talk_s": k["avg_talk_s"],
        "avg_wait_s": k["avg_wait_s"],
        "answered": k["answered"],
        "abandoned": k["abandoned"],
        "service_level": k["service_level"],
        "tickets": tickets,
    }


def _day_over(sim: Any, service: Service) -> bool:
    """The simulated day's office hours are over: nobody logged in, nobody waiting."""
    workload = sim.workload
    if workload is None or workload.logged_in:
        return False
    hour = datetime.fromtimestamp(service.clock(), service_zone(service)).hour
    return hour >= 17 and not any(True for _ in service.tracker.waiting())


def service_zone(service: Service) -> Any:
    """The call center's time zone."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(service.settings.timezone)


def _log_everyone_off(service: Service, now: float) -> None:
    """Ends the sessions and pauses still open when the demo stops (its agents go home)."""
    tracker, writer = service.tracker, service.writer
    for pause in list(tracker.pauses.values()):
        if pause.ended_at is None:
            pause.ended_at = now
            writer.submit_pause(pause, pause.server)
    for session in list(tracker.sessions.values()):
        if session.ended_at is None:
            session.ended_at = now
            writer.submit_session(session, session.server)


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

        from callcenter.sim.workload import ISTANBUL, morning_peak

        day = options.day or (datetime.now(ISTANBUL).date() - timedelta(days=1))
        sim = Simulator(
            speed=options.speed,
            start_epoch=morning_peak(datetime(day.year, day.month, day.day, 12, tzinfo=ISTANBUL)),
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
        # The floor's clock is the simulator's: every page and figure reads simulated time.
        service = Service(settings, clock=lambda: sim.pbx.epoch + sim.server.sim_now())
        service.clock_rate = options.speed
        service.subscribe(tally.effects)
        await service.start()
        stack.push_async_callback(service.stop)
        if service.ivr is not None:
            sim.agi_address = ("127.0.0.1", service.ivr.server.port)
        runner = await serve(make_app(service, default_features()), "127.0.0.1", options.http_port)
        stack.push_async_callback(runner.cleanup)
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)
        token_holder["token"], supervisor, supervisor_id = await _demo_tokens(service)
        links = await agent_links(service, sim, base)
        tv_link, reports_link = await supervisor_links(service, supervisor_id, base)
        print(
            f"demo: simulated Asterisk on 127.0.0.1:{port} "
            f"(seed {sim.seed}, speed x{options.speed:g})\n"
            f"demo: wallboard  {tv_link}   (one-time links: the page then holds a session "
            "cookie)\n"
            f"demo: reports    {reports_link}\n"
            f"demo: supervisor token for more screens (the pages ask for it): {supervisor}\n"
            f"demo: metrics    {base}/metrics   health {base}/healthz\n"
            f"demo: definitions {base}/definitions\n"
            f"demo: database   {_redacted(database_url)} (fresh for this run; simulated day "
            f"{day.isoformat()})\n"
            "demo: agent page, one-time login links (each opens one browser session; "
            f"{base}/agent also takes an agent token):\n" + "\n".join(links),
            file=out,
        )
        closed_told = False
        stop = stop or asyncio.Event()
        deadline = None if options.duration is None else time.monotonic() + options.duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            left = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), left)
            _progress(service, tally, out)
            if not closed_told and _day_over(sim, service):
                closed_told = True
                out.write(
                    "\ndemo: the simulated working day is over (the wallboard says so); "
                    "Ctrl-C ends the demo\n"
                )
        if out.isatty():
            out.write("\n")
        await sim.stop()  # no new calls; dispositions in flight get their chance
        await asyncio.wait_for(service.drain(), 30)
        ended = service.clock()
        _log_everyone_off(service, ended)
        await asyncio.wait_for(service.writer.flush(), 30)
        last = datetime.fromtimestamp(ended, ISTANBUL).date()
        result = await summary(service, tally, day, max(day, last))
        print(
            f"demo: the same figures: DATABASE_URL={_redacted(database_url)} python -m callcenter"
            f" report --from {result['from']} --to {result['to']}",
            file=out,
        )
        log.info("demo_finished", **result, dispositions=tally.dispositions)
        return result

"""The fault scenarios, parametrised: the tests run them short, bench/faults.py runs them long.

Each one runs the real service against the simulated Asterisk over real sockets, injects its
fault, lets the traffic drain and returns a FaultReport whose verdict compares the call log in
PostgreSQL with what the simulator did.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg

import callcenter.ami
from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.devdb import PrivatePostgres
from callcenter.sim import Simulator, TrafficParams
from callcenter.sim.workload import ISTANBUL, morning_peak
from callcenter.web.server import default_features, make_app, serve
from callcenter.webhooks import (
    DeliveryWorker,
    Subscription,
    call_ended_msg_id,
    enqueue,
    generate_secret,
)
from tests.faults.harness import (
    ROOT,
    FaultReport,
    Gap,
    Tap,
    Truth,
    call_rows,
    compare,
    env_without_callcenter,
    free_port,
    wait_until,
)
from tests.faults.proxy import FaultProxy
from tests.integration.webhook_receiver import Receiver

_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)
# A fixed working day, so a seed always gives the same traffic (09:00 Istanbul, a Tuesday).
DAY_EPOCH = morning_peak(datetime(2026, 3, 3, 12, tzinfo=ISTANBUL))
# How far before a SIGKILL the call log may lag: open calls are snapshotted every second
# (app._TICK_S) and the writer flushes every 0.2 s; rounded up for a busy machine.
DURABILITY_S = 2.0


def busy_hour(volume: float) -> TrafficParams:
    """The municipality's working day with ``volume`` times its calls (IVR, abandons, pauses)."""
    base = TrafficParams()
    return dataclasses.replace(base, calls_per_year=int(base.calls_per_year * volume))


@contextlib.contextmanager
def quick_reconnect(delay_max: float) -> Iterator[None]:
    """Caps the AMI reconnect backoff for clients the service creates inside the block.

    In production the backoff doubles up to 30 s while sessions last under 30 s; a test that
    cuts the link every few wall seconds would otherwise spend its time waiting in it.
    """
    original = callcenter.ami.AmiClient

    class QuickReconnect(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("reconnect_delay_max", delay_max)
            super().__init__(*args, **kwargs)

    callcenter.ami.AmiClient = QuickReconnect  # type: ignore[misc]
    try:
        yield
    finally:
        callcenter.ami.AmiClient = original  # type: ignore[misc]


def beyond(count: Callable[[], int], start: int) -> Callable[[], bool]:
    """A predicate: has ``count()`` gone past ``start``?"""
    return lambda: count() > start


def subscription(receiver: Receiver) -> dict[str, Any]:
    """A webhook subscription of every call.ended to the test's receiver."""
    return {
        "name": "backend",
        "url": receiver.url,
        "secrets": [receiver.secret],
        "events": ["call.ended"],
    }


async def synced(service: Service, server: str) -> None:
    """Returns once the in-process service has processed every event the PBX sent so far."""
    # The answer to a Ping comes after every event the simulator sent before it.
    await asyncio.wait_for(service.clients[server].action({"Action": "Ping"}), 10)
    await asyncio.wait_for(service.drain(), 30)


async def health(http: aiohttp.ClientSession, port: int) -> tuple[int, dict[str, Any]]:
    """/healthz's status code and report (0 and {} when the service does not answer)."""
    try:
        async with http.get(f"http://127.0.0.1:{port}/healthz", timeout=_HTTP_TIMEOUT) as resp:
            return resp.status, dict(await resp.json())
    except (aiohttp.ClientError, TimeoutError):
        return 0, {}


async def drain_sim(sim: Simulator, truth: Truth, limit_s: float) -> None:
    """Stops new callers and waits (wall clock) until every call in progress has ended."""
    truth.stop_arrivals()
    await wait_until(lambda: not sim.pbx.calls, limit_s, "the simulator's calls to end")


def sim_now(sim: Simulator) -> float:
    """The simulator's clock now (epoch), also between two of its ticks."""
    return sim.pbx.epoch + sim.server.sim_now()


async def call_ended_events(pool: Any, server: str) -> Counter[str]:
    """call.ended events in the webhook outbox, per linkedid."""
    rows = await pool.fetch(
        """
        SELECT payload->'data'->>'linkedid' AS linkedid FROM webhook_outbox
        WHERE event_type = 'call.ended' AND payload->'data'->>'server' = $1
        """,
        server,
    )
    return Counter(str(r["linkedid"]) for r in rows)


def check_announced(
    report: FaultReport, announced: Counter[str], receiver: Receiver, server: str
) -> None:
    """Every finished call has one call.ended in the outbox, delivered under its own id."""
    assert report.verdict is not None
    truth = report.verdict.expected - set(report.verdict.invisible)
    report.verdict.lost.extend(f"call.ended {lid}" for lid in sorted(truth - set(announced)))
    delivered = set(receiver.accepted)
    report.verdict.lost.extend(
        f"delivery {lid}"
        for lid in sorted(truth)
        if lid in announced and call_ended_msg_id(server, lid) not in delivered
    )
    report.notes["outbox_twice"] = sum(n - 1 for n in announced.values())


# ---- 1. the AMI link cut and restored ----------------------------------------------------------


async def ami_cuts(
    db_url: str,
    spool: Path,
    *,
    seed: int = 11,
    minutes: float = 20.0,
    volume: float = 4.0,
    agents: int = 30,
    cuts: int = 8,
    gap_s: float = 2.0,
    stall_every: int = 4,
    step_s: float = 0.5,
) -> FaultReport:
    """Cuts the AMI link ``cuts`` times during ``minutes`` of a busy simulated morning.

    Simulated time is stepped by the scenario, so each gap is ``gap_s`` simulated seconds
    whatever the machine's speed (the service's reconnect still runs on the wall clock while
    the simulator waits). Every ``stall_every``-th fault is a silent stall instead of a reset,
    found only by the service's Ping watchdog. Before each fault the service has read every
    event up to it, so the gap is the only thing it misses.
    """
    kinds = "cut (TCP reset) or stalled" if stall_every > 0 else "cut (TCP reset)"
    report = FaultReport(fault=f"AMI link {kinds}, {gap_s:g} s of simulated time lost each")
    rng = random.Random(seed)
    sim = Simulator(
        speed=None,
        port=0,
        seed=seed,
        params=busy_hour(volume),
        agents=agents,
        start_epoch=DAY_EPOCH,
        auth_fail_delay=0,
    )
    truth = Truth(sim)
    await sim.start()
    proxy = FaultProxy("127.0.0.1", sim.port)
    await proxy.start()
    server = AsteriskServer(
        name="pbx-cuts",
        port=proxy.port,
        secret="callcenter",
        ping_interval=0.5,
        action_timeout=1.0,
        connect_timeout=1.0,
    )
    settings = Settings(
        database_url=db_url, asterisk=(server,), spool_dir=str(spool), fastagi_enabled=False
    )
    service = Service(settings)
    tap = Tap(service)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    gaps: list[Gap] = []
    detect: list[float] = []
    try:
        with quick_reconnect(1.0):
            await asyncio.wait_for(service.start(), 30)
        await wait_until(lambda: tap.resyncs >= 1, 30, "the first resync")
        end = minutes * 60.0
        # Faults spread over the run, each at a random point of its own slice.
        slice_s = (end - 60.0) / cuts
        due = [60.0 + i * slice_s + rng.uniform(0, slice_s - gap_s - step_s) for i in range(cuts)]
        now = 0.0
        while now < end:
            now += step_s
            sim.server.advance(now)
            await asyncio.sleep(0)
            if not due or now < due[0]:
                continue
            due.pop(0)
            await synced(service, server.name)
            report.in_flight.append(len(truth.live()))
            start = sim.pbx.now_epoch()
            downs, resyncs = tap.link_downs, tap.resyncs
            stall = stall_every > 0 and (report.injected + 1) % stall_every == 0
            began = time.monotonic()
            if stall:
                proxy.stall()
            else:
                proxy.cut()
            report.injected += 1
            # The PBX carries on while the service is blind.
            target = now + gap_s
            while now < target:
                now = min(target, now + 0.1)
                sim.server.advance(now)
                await asyncio.sleep(0)
            await wait_until(
                beyond(lambda: tap.link_downs, downs), 30, "the service to see the loss"
            )
            detect.append(time.monotonic() - began)
            restored = time.monotonic()
            proxy.restore()
            await wait_until(beyond(lambda: tap.resyncs, resyncs), 60, "the resync after a restore")
            report.recovery_s.append(time.monotonic() - restored)
            # Blind from the fault until the new session's login: events flow from there on.
            gaps.append(Gap(start, truth.login_times()[-1]))
        truth.stop_arrivals()
        limit = now + 3600.0
        while sim.pbx.calls and now < limit:
            now += step_s
            sim.server.advance(now)
            await asyncio.sleep(0)
        await synced(service, server.name)
        await asyncio.wait_for(service.writer.flush(), 60)
        rows = await call_rows(pool, server.name)
    finally:
        await asyncio.wait_for(service.stop(), 60)
        await proxy.close()
        await sim.stop()
        await pool.close()
    report.verdict = compare(rows, truth.ended, gaps)
    # A call that ended while the service was blind can only have been closed by the resync.
    ended_blind = {
        lid for lid, c in truth.ended.items() if any(g.start <= c.ended <= g.end for g in gaps)
    }
    closable = ended_blind - set(report.verdict.invisible)  # those it had seen at all
    report.verdict.unflagged.extend(sorted(closable - tap.closed_by_resync))
    report.calls = len(truth.ended)
    report.lost = len(report.verdict.lost)
    report.invisible = len(report.verdict.invisible)
    report.duplicates = len(tap.twice) + len(report.verdict.phantoms)
    report.notes.update(
        stalls=proxy.stalls,
        detect_s=[round(d, 3) for d in detect],
        ended_in_gaps=len(ended_blind),
        closed_by_resync=len(tap.closed_by_resync),
        still_open=len(service.tracker.calls),
        touched=report.verdict.touched,
        exact=report.verdict.exact,
    )
    return report


# ---- 2. PostgreSQL restarted under load ----------------------------------------------------


async def pg_restart(
    pg: PrivatePostgres,
    spool: Path,
    *,
    seed: int = 12,
    restarts: int = 1,
    warm_s: float = 3.0,
    down_s: float = 5.0,
    up_s: float = 3.0,
    calls_per_second: float = 6.0,
    agents: int = 60,
    buffer_limit: int = 100,
) -> FaultReport:
    """Stops PostgreSQL (as a crash: immediate mode) ``restarts`` times under steady load.

    The service keeps ingesting: call records wait in the writer's buffer, beyond
    ``buffer_limit`` in its spill file, and call.ended events in the outbox's queue. /healthz
    must say degraded while the database is away; afterwards everything must be written and
    every call.ended delivered to the webhook receiver.
    """
    report = FaultReport(fault="PostgreSQL stopped (immediate, like a crash) and restarted")
    sim = Simulator(calls_per_second=calls_per_second, agents=agents, speed=1.0, port=0, seed=seed)
    truth = Truth(sim)
    receiver = Receiver(secret=generate_secret())
    await receiver.start()
    await sim.start()
    server = AsteriskServer(name="pbx-pg", port=sim.port, secret="callcenter")
    settings = Settings(
        database_url=pg.url,
        asterisk=(server,),
        spool_dir=str(spool),
        fastagi_enabled=False,
        db_buffer_limit=buffer_limit,
        webhooks=(subscription(receiver),),
        webhook_allowed_hosts=("127.0.0.1",),
    )
    service = Service(settings)
    tap = Tap(service)
    app = make_app(service, default_features())
    runner: Any = None
    pool: Any = None
    peaks: list[int] = []
    detect: list[float] = []
    try:
        await asyncio.wait_for(service.start(), 30)
        await wait_until(lambda: tap.resyncs >= 1, 30, "the first resync")
        # The traffic started before the service: calls alive when it logged in.
        gaps = [Gap(0.0, truth.login_times()[0])]
        runner = await serve(app, "127.0.0.1", 0)
        port = int(runner.addresses[0][1])
        async with aiohttp.ClientSession() as http:

            async def degraded() -> bool:
                status, body = await health(http, port)
                return status == 503 and not body["database"]["reachable"]

            async def healthy() -> bool:
                return (await health(http, port))[0] == 200

            await asyncio.sleep(warm_s)
            for _ in range(restarts):
                report.in_flight.append(len(truth.live()))
                await asyncio.to_thread(pg.stop)
                stopped = time.monotonic()
                report.injected += 1
                detect.append(await wait_until(degraded, 30, "/healthz to say degraded"))
                peak = 0
                while time.monotonic() - stopped < down_s:
                    peak = max(peak, service.writer.pending)
                    await asyncio.sleep(0.1)
                peaks.append(peak)
                await asyncio.to_thread(pg.start)
                report.recovery_s.append(await wait_until(healthy, 120, "the writer to catch up"))
                await asyncio.sleep(up_s)
        await drain_sim(sim, truth, 120)
        await synced(service, server.name)
        await asyncio.wait_for(service.writer.flush(), 60)
        pool = await asyncpg.create_pool(pg.url, min_size=1, max_size=2)
        rows = await call_rows(pool, server.name)
        announced = await call_ended_events(pool, server.name)
        spill_left = service.writer.spill_path.exists()
        # The delivery worker has to come back from the outage too.
        wanted = {call_ended_msg_id(server.name, lid) for lid in truth.ended}
        delivery_s = await wait_until(
            lambda: wanted <= set(receiver.accepted), 90, "every call.ended to be delivered"
        )
    finally:
        if runner is not None:
            await runner.cleanup()
        await asyncio.wait_for(service.stop(), 60)
        await sim.stop()
        await receiver.stop()
        if pool is not None:
            await pool.close()
    report.verdict = compare(rows, truth.ended, gaps)
    check_announced(report, announced, receiver, server.name)
    report.calls = len(truth.ended)
    report.lost = len(report.verdict.lost)
    report.invisible = len(report.verdict.invisible)
    report.duplicates = (
        len(tap.twice)
        + len(report.verdict.phantoms)
        + report.notes["outbox_twice"]
        + sum(n - 1 for n in receiver.accepted.values())
    )
    report.notes.update(
        detect_s=[round(d, 3) for d in detect],
        peak_pending=peaks,
        spilled=service.writer.spilled,
        failed_flushes=service.writer.failed_flushes,
        spill_left=spill_left,
        exact=report.verdict.exact,
        touched=report.verdict.touched,
        webhooks_delivered_s=round(delivery_s, 3),
    )
    return report


# ---- 3. the service killed with SIGKILL --------------------------------------------------------


class ServiceProcess:
    """``python -m callcenter run`` in a child process, configured by its environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self._out: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        """Starts the service; its output goes to the log file."""
        if self._out is None:
            self._out = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "callcenter",
            "run",
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever is in memory is gone."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 30)

    async def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM and a clean shutdown (SIGKILL after ``grace`` seconds); the exit status."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                await self.kill()
        if self._out is not None:
            self._out.close()
            self._out = None
        return self.proc.returncode if self.proc is not None else None

    def tail(self, lines: int = 30) -> str:
        """The end of the service's log, for a failure message."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def leased_deliveries(pool: Any) -> int:
    """Deliveries claimed by a worker that never recorded the attempt (it died holding them)."""
    return int(
        await pool.fetchval(
            """
            SELECT count(*) FROM webhook_deliveries d
            WHERE d.state = 'pending' AND d.attempts >
                  (SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id)
            """
        )
    )


async def sigkill(
    db_url: str,
    spool: Path,
    *,
    seed: int = 13,
    kills: int = 1,
    run_s: float = 6.0,
    down_s: float = 2.0,
    calls_per_second: float = 6.0,
    agents: int = 60,
) -> FaultReport:
    """Kills the service (SIGKILL) ``kills`` times under steady load and starts it again.

    The service is a child process configured by its environment, as in production; the
    simulator runs in real time and keeps taking calls while the service is dead. A delivery
    the dead worker had claimed is sent again once its lease expires, under the same
    webhook-id (at-least-once delivery), so a receiver may see that id twice.
    """
    report = FaultReport(fault="Service killed (SIGKILL) under load and restarted")
    sim = Simulator(calls_per_second=calls_per_second, agents=agents, speed=1.0, port=0, seed=seed)
    truth = Truth(sim)
    receiver = Receiver(secret=generate_secret())
    await receiver.start()
    await sim.start()
    name = "pbx-kill"
    port = free_port()
    env = {
        **env_without_callcenter(),
        "DATABASE_URL": db_url,
        "CALLCENTER_AMI_NAME": name,
        "CALLCENTER_AMI_HOST": "127.0.0.1",
        "CALLCENTER_AMI_PORT": str(sim.port),
        "CALLCENTER_AMI_SECRET": "callcenter",
        "CALLCENTER_HTTP_PORT": str(port),
        "CALLCENTER_FASTAGI_ENABLED": "false",
        "CALLCENTER_SPOOL_DIR": str(spool),
        "CALLCENTER_WEBHOOKS": json.dumps([subscription(receiver)]),
        "CALLCENTER_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "CALLCENTER_LOG_FORMAT": "json",
        "CALLCENTER_LOG_LEVEL": "warning",
    }
    service = ServiceProcess(env, spool / "service.log")
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    gaps: list[Gap] = []
    leased: list[int] = []
    try:
        async with aiohttp.ClientSession() as http:

            async def up(logins: int) -> bool:
                # Serving, with a new AMI session.
                if len(truth.login_times()) <= logins:
                    return False
                return (await health(http, port))[0] == 200

            await service.start()
            await wait_until(lambda: up(0), 60, "the service to start")
            # The traffic started before the service: calls alive when it logged in.
            gaps.append(Gap(0.0, truth.login_times()[0]))
            for _ in range(kills):
                await asyncio.sleep(run_s)
                report.in_flight.append(len(truth.live()))
                killed_at = sim_now(sim)
                await service.kill()
                report.injected += 1
                leased.append(await leased_deliveries(pool))
                await asyncio.sleep(down_s)
                logins = len(truth.login_times())
                restarted = time.monotonic()
                await service.start()
                await wait_until(functools.partial(up, logins), 60, "the service to restart")
                report.recovery_s.append(time.monotonic() - restarted)
                # Its last moments may or may not have reached the database; after the kill
                # it was blind until the new process's resync.
                gaps.append(Gap(killed_at - DURABILITY_S, killed_at, lenient=True))
                gaps.append(Gap(killed_at, truth.login_times()[-1]))
            await asyncio.sleep(run_s)
            await drain_sim(sim, truth, 120)

            async def settled() -> bool:
                # No call open, nothing queued, nothing waiting for the database.
                status, body = await health(http, port)
                return (
                    status == 200
                    and body["open_calls"] == 0
                    and body["queue_depth"] == 0
                    and body["database"]["pending_writes"] == 0
                )

            await wait_until(settled, 60, "the service to settle")

            async def delivered() -> bool:
                # The outbox drained: a claim the dead worker held is sent again once its
                # lease (45 s) is over.
                undone = await pool.fetchval(
                    "SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'"
                )
                ids = await pool.fetch("SELECT msg_id FROM webhook_outbox")
                return undone == 0 and {r["msg_id"] for r in ids} <= set(receiver.accepted)

            with contextlib.suppress(AssertionError):
                report.notes["webhooks_delivered_s"] = round(
                    await wait_until(delivered, 90, "the webhook outbox to drain"), 3
                )
            rows = await call_rows(pool, name)
            announced = await call_ended_events(pool, name)
            report.notes["exit_status"] = await service.stop()
    finally:
        await service.kill()
        await service.stop()
        await sim.stop()
        await receiver.stop()
        await pool.close()
    report.verdict = compare(rows, truth.ended, gaps)
    check_announced(report, announced, receiver, name)
    resent = sum(n - 1 for n in receiver.accepted.values())
    report.calls = len(truth.ended)
    report.lost = len(report.verdict.lost)
    report.invisible = len(report.verdict.invisible)
    # Sent twice under one id is expected only for deliveries the dead worker held.
    report.duplicates = (
        len(report.verdict.phantoms) + report.notes["outbox_twice"] + max(0, resent - sum(leased))
    )
    report.notes.update(
        leased_at_kill=leased,
        resent_same_id=resent,
        exact=report.verdict.exact,
        touched=report.verdict.touched,
        reconstructed=report.verdict.reconstructed,
        log=str(service.log),
    )
    if report.problems() or report.invisible:
        report.notes["log_tail"] = service.tail()
        # Where each missing or unflagged call lived, relative to the kills (seconds).
        kill_times = [g.end for g in gaps if g.lenient]
        report.notes["relative_to_kill"] = {
            lid: [(round(c.started - k, 3), round(c.ended - k, 3)) for k in kill_times]
            for lid in [*report.verdict.lost, *report.verdict.unflagged, *report.verdict.invisible][
                :10
            ]
            if (c := truth.ended.get(lid)) is not None
        }
    return report


# ---- 4. the ticketing backend down for hours (long form only) ------------------------------


class SimClock:
    """A settable clock standing in for time.time in the delivery worker."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def deliveries(pool: Any, state: str) -> int:
    """Webhook deliveries in one state."""
    sql = "SELECT count(*) FROM webhook_deliveries WHERE state = $1"
    return int(await pool.fetchval(sql, state))


async def backend_down(
    db_url: str,
    *,
    hours: float = 12.0,
    every_s: float = 600.0,
    step_s: float = 60.0,
    seed: int = 14,
) -> FaultReport:
    """The ticketing backend refuses connections, then answers 500, for ``hours`` simulated
    hours while events keep arriving; then it comes back.

    The delivery worker runs on a simulated clock (a minute per round), so hours pass in
    seconds. Recovery is the simulated time from the backend's return to the last delivery:
    the retry backoff (capped at 6 h) decides it. The short suite's proof of the same is
    tests/integration/test_webhooks_delivery.py::test_backend_down_for_a_simulated_day_gets_every_event_once.
    """
    report = FaultReport(fault=f"Ticketing backend down {hours:g} h (refused, then HTTP 500)")
    clock = SimClock(DAY_EPOCH)
    receiver = Receiver(secret=generate_secret(), realtime=False)
    await receiver.start()
    await receiver.stop()  # the port is known; connections are refused
    sub = Subscription("backend", receiver.url, (receiver.secret,), ("*",))
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    worker = DeliveryWorker(
        lambda: pool,
        [sub],
        allowed_hosts=("127.0.0.1",),
        clock=clock,
        rand=random.Random(seed).random,
    )
    sent: list[str] = []
    try:
        down_until = clock.now + hours * 3600
        next_event = clock.now
        while clock.now < down_until:
            if receiver.mode == "ok" and clock.now >= down_until - hours * 1800:
                await receiver.start()  # half way: it answers again, but only with errors
                receiver.mode = "fail"
            if clock.now >= next_event:
                async with pool.acquire() as conn, conn.transaction():
                    msg_id = await enqueue(conn, "ticket.updated", {"n": len(sent)})
                assert msg_id is not None
                sent.append(msg_id)
                next_event += every_s
            await worker.run_once()
            clock.now += step_s
        report.injected = 1
        report.calls = len(sent)
        report.in_flight.append(await deliveries(pool, "pending"))
        receiver.mode = "ok"
        back = clock.now
        last = back
        limit = back + 2 * 86400
        while clock.now < limit:
            if await worker.run_once():
                last = clock.now
            if not await deliveries(pool, "pending"):
                break
            clock.now += step_s
        report.recovery_s.append(last - back)
        failed = await deliveries(pool, "failed")
    finally:
        await worker.stop()
        await receiver.stop()
        await pool.close()
    accepted = receiver.accepted
    report.lost = len(set(sent) - set(accepted)) + failed
    report.duplicates = sum(n - 1 for n in accepted.values())
    report.notes.update(
        events=len(sent),
        attempts=len(receiver.requests),
        verified=all(r.verified for r in receiver.requests),
        recovery_simulated_h=round((last - back) / 3600, 2),
    )
    return report

"""Composition root: wires AMI ingestion, the pipeline, PostgreSQL and the web server.

AMI messages from every server go into one queue with one consumer, so order is kept and a
failing message is logged, counted and skipped without losing the ones around it. Effects
go to subscribers (the store, metrics, WebSocket hub, tickets), each isolated from the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import structlog

from callcenter import events
from callcenter.config import AsteriskServer, Settings
from callcenter.model import (
    AgentSession,
    CallAnswered,
    CallEnded,
    CallStarted,
    Effect,
    Member,
    MemberChanged,
    PauseEnded,
    QueueJoined,
    SessionEnded,
    VisitEnded,
)
from callcenter.pipeline import Pipeline

log = structlog.get_logger(__name__)

Subscriber = Callable[[list[Effect]], None]
# How often the clock reaches the tracker (late AgentComplete grace) and open calls are
# snapshotted for a restart.
_TICK_S = 1.0
# How long start-up waits for PostgreSQL before it fails with one line.
_DB_CONNECT_S = 3.0


def _where(url: str) -> str:
    """host:port/database of a PostgreSQL URL, without its user or password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


# The longest the event stream holds the event loop before letting others (HTTP) run.
_SLICE_S = 0.01
# A backlog this large (queued messages and unwritten records) is a flood; once it has drained,
# memory is collected and handed back to the system (glibc keeps freed memory otherwise).
_FLOOD_BACKLOG = 10_000
_QUIET_TICKS = 10


def _release_memory() -> None:
    """Collects garbage and returns free heap pages to the system (glibc ``malloc_trim``)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


class Service:
    """The running service: one ordered event stream, its subscribers and its resources."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        clock_rate: float = 1.0,
    ) -> None:
        self.settings = settings
        # The floor's clock (epoch seconds): the wall clock, or a simulator's (the demo), so
        # waits, talk, wrap-up and "today" on every page are read on the clock the events
        # carry. ``clock_rate`` is how many of its seconds pass per wall second (pages tick).
        self.clock = clock
        self.clock_rate = clock_rate
        self.pipeline = Pipeline()
        self.tracker = self.pipeline.tracker
        self.tracker.max_open_per_server = settings.max_open_calls_per_server
        self.queue: asyncio.Queue[tuple[str, Mapping[str, str], float]] = asyncio.Queue()
        self.subscribers: list[Subscriber] = []
        self.clients: dict[str, Any] = {}  # server name -> AmiClient
        self.pool: Any = None
        self.writer: Any = None
        self.ivr: Any = None  # the FastAGI IVR runtime, when enabled
        self.started_at = time.time()
        self.last_event_at: dict[str, float] = {}
        self.subscriber_errors = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty: set[tuple[str, str]] = set()  # open calls changed since the last snapshot
        self._open_written: set[int] = set()  # open sessions and pauses already written (ids)
        self.cluster: Any = None  # callcenter.cluster.Cluster when ingest_mode is "cluster"
        self.reconciler: Any = None  # callcenter.reconciler.Reconciler unless reconcile = "off"
        self.started = False  # set once start() completed; a failed start writes no snapshots
        self._flooded = False  # a backlog of _FLOOD_BACKLOG was seen and has not drained yet
        self._quiet_ticks = 0  # ticks since with no backlog at all

    # ---- the stream -----------------------------------------------------------------------

    def ami_sink(self, server: str, headers: Mapping[str, str], received_at: float) -> None:
        """Receives one AMI message from an adapter; never blocks, never raises."""
        self.queue.put_nowait((server, headers, received_at))
        if self.cluster is not None:
            self.cluster.publish(server, headers, received_at)

    def subscribe(self, subscriber: Subscriber) -> None:
        """Adds a consumer of effects; it must be quick and must not block."""
        self.subscribers.append(subscriber)

    def dispatch(
        self, effects: list[Effect], *, durable_only: bool = False, reconciled: bool = False
    ) -> None:
        """Hands effects to every subscriber; one failing subscriber does not stop the others.

        With several instances, subscribers that write (the store, webhooks) get only the
        effects of servers this instance owns; ``durable_only`` skips the other subscribers.
        The final effects of a call that crossed an AMI gap wait in the reconciler until
        Asterisk's records have corrected it (``reconciled`` marks them coming back).
        """
        if self.reconciler is not None and not reconciled:
            effects = self.reconciler.hold(effects)
        if not effects:
            return
        cluster = self.cluster
        owned = effects if cluster is None else cluster.owned_effects(effects)
        for subscriber in self.subscribers:
            durable = cluster is not None and self._is_durable(subscriber)
            if durable_only and not durable:
                continue
            batch = owned if durable else effects
            if not batch:
                continue
            try:
                subscriber(batch)
            except Exception:
                self.subscriber_errors += 1
                log.exception("subscriber_error", subscriber=getattr(subscriber, "__name__", "?"))

    def process(self, server: str, headers: Mapping[str, str], received_at: float) -> None:
        """Runs one message through the pipeline and dispatches its effects."""
        self.last_event_at[server] = received_at
        if self.reconciler is not None:
            self.reconciler.note(server, headers, received_at)
        self.dispatch(self.pipeline.feed_headers(server, headers, received_at))

    async def _consume(self) -> None:
        # queue.get() does not yield while items wait: without a pause a backlog (a flooding
        # PBX, a reconnect's resync) would hold the event loop, and /healthz, until drained.
        loop = asyncio.get_running_loop()
        slice_end = loop.time() + _SLICE_S
        while True:
            server, headers, received_at = await self.queue.get()
            try:
                self.process(server, headers, received_at)
            finally:
                self.queue.task_done()
            if loop.time() >= slice_end:
                await asyncio.sleep(0)
                slice_end = loop.time() + _SLICE_S

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            try:
                self.dispatch(self.tracker.tick(self.clock()))
                self._snapshot_open_calls()
                self._after_flood()
            except Exception:
                log.exception("tick_error")

    # ---- several instances (callcenter.cluster) ---------------------------------------------

    def owns(self, server: str) -> bool:
        """Whether this instance ingests and writes that Asterisk server (always, when single)."""
        return self.cluster is None or self.cluster.owns(server)

    def _is_durable(self, subscriber: Subscriber) -> bool:
        from callcenter.cluster import is_durable

        return subscriber == self._store_effects or is_durable(subscriber)

    def snapshot_later(self, server: str) -> None:
        """Marks every open call of a server for the next snapshot (after a takeover)."""
        self._dirty.update(key for key in self.tracker.calls if key[0] == server)

    async def stop_ingest(self, name: str) -> None:
        """Closes the AMI client of a server this instance no longer owns."""
        client = self.clients.pop(name, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    # ---- persistence ----------------------------------------------------------------------

    def _store_effects(self, effects: list[Effect]) -> None:
        """Sends final records to the writer and remembers which open calls changed."""
        writer = self.writer
        for effect in effects:
            if isinstance(effect, CallEnded):
                self._dirty.discard((effect.call.server, effect.call.linkedid))
                writer.submit_call(effect.call)
            elif isinstance(effect, CallStarted):
                # At once, not at the next tick: a call that starts just before a crash and
                # ends while the service is down would otherwise leave no trace at all.
                writer.submit_open(effect.call)
            elif isinstance(effect, QueueJoined | CallAnswered | VisitEnded):
                self._dirty.add((effect.call.server, effect.call.linkedid))
            elif isinstance(effect, PauseEnded):
                self._open_written.discard(id(effect.pause))
                writer.submit_pause(effect.pause, effect.pause.server)
            elif isinstance(effect, SessionEnded):
                self._open_written.discard(id(effect.session))
                writer.submit_session(effect.session, effect.session.server)
            elif isinstance(effect, MemberChanged) and not effect.removed:
                self._write_open_agent_time(effect.member)

    def _write_open_agent_time(self, member: Member) -> None:
        """Writes a session (and pause) when it begins, not only when it ends.

        Without this an agent logged in all day has no logged-in, paused or occupancy time
        in today's report until they log off; the row's end is filled in when it comes.
        """
        key = (member.server, member.queue, member.interface)
        for record in (self.tracker.sessions.get(key), self.tracker.pauses.get(key)):
            if record is None or id(record) in self._open_written:
                continue
            self._open_written.add(id(record))
            if isinstance(record, AgentSession):
                self.writer.submit_session(record, record.server)
            else:
                self.writer.submit_pause(record, record.server)

    def _after_flood(self) -> None:
        """Gives memory back once a flood's backlog has drained (RSS must come back down)."""
        backlog = self.queue.qsize() + (self.writer.pending if self.writer is not None else 0)
        # Subscribers with a backlog of their own (the call.ended outbox) count too.
        backlog += sum(
            p for s in self.subscribers if isinstance(p := getattr(s, "pending", 0), int)
        )
        if backlog >= _FLOOD_BACKLOG:
            self._flooded = True
            self._quiet_ticks = 0
            # A full garbage collection walks every tracked object: over a flood's backlog it
            # held the event loop for up to a second. Objects older than a tick are frozen out
            # of it until the backlog drains (reference counting still frees them).
            gc.freeze()
        elif self._flooded and backlog == 0:
            # The flood must be over, not between two bursts: the collection below pauses.
            self._quiet_ticks += 1
            if self._quiet_ticks < _QUIET_TICKS:
                return
            self._flooded = False
            gc.unfreeze()
            _release_memory()
            log.info("memory_released_after_flood")

    def _snapshot_open_calls(self) -> None:
        """Writes changed calls in progress, so a restarted service can pick them up."""
        if self.writer is None:
            return
        for key in self._dirty:
            call = self.tracker.calls.get(key)
            if call is not None:
                self.writer.submit_open(call)
        self._dirty.clear()

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self, *, ami: bool = True, fastagi_sock: Any = None) -> None:
        """Connects to PostgreSQL, resumes open calls and starts ingesting.

        On failure the caller runs ``stop()``, which then leaves the resumed calls untouched.
        ``fastagi_sock`` is the IVR's listening socket, bound before anything connected.
        """
        from callcenter.store.calls import load_open_calls
        from callcenter.store.db import create_pool
        from callcenter.store.migrations import migrate
        from callcenter.store.writer import CallWriter

        try:
            # Bounded: a start-up failure must say so within seconds, not after asyncpg's 60.
            self.pool = await create_pool(self.settings.database_url, timeout=_DB_CONNECT_S)
        except TimeoutError:
            raise ConnectionError(
                f"database unreachable at {_where(self.settings.database_url)}: "
                f"no connection within {_DB_CONNECT_S:g} s"
            ) from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConnectionError(
                f"database unreachable at {_where(self.settings.database_url)}: {reason}"
            ) from None
        applied = await migrate(self.pool)
        if applied:
            log.info("migrations_applied", versions=applied)
        # call.ended is queued in the writer's transaction, with the call row (never dropped).
        self.writer = CallWriter(
            self.pool,
            self.settings,
            spill_dir=self.settings.spool_dir,
            call_ended_region=self.settings.phone_region,
        )
        self.writer.start()
        resumed = await load_open_calls(self.pool)
        self.tracker.resume(resumed)
        log.info("open_calls_resumed", calls=len(resumed))
        self.subscribe(self._store_effects)
        self._tasks.append(asyncio.create_task(self._consume(), name="consume"))
        self._tasks.append(asyncio.create_task(self._tick(), name="tick"))
        self._start_retention()
        if self.settings.reconcile != "off":
            from callcenter.reconciler import Reconciler

            self.reconciler = Reconciler(self)
            await self.reconciler.start()
        if ami and self.settings.ingest_mode == "cluster":
            from callcenter.cluster import Cluster

            self.cluster = Cluster(self)
            await self.cluster.start()
        elif ami:
            await self.start_ami()
        if self.settings.fastagi_enabled:
            from callcenter.ivr.service import start_ivr

            # After the AMI clients: the survey call-back dialer originates through one.
            self.ivr = await start_ivr(self, sock=fastagi_sock)
        self.started = True

    def _start_retention(self) -> None:
        """Starts the daily KVKK retention job (callcenter.retention); a bad setting stops start."""
        from callcenter.retention import check, retention_loop

        days, mode = self.settings.retention_days, self.settings.retention_mode
        check(days, mode)
        if days > 0:
            job = retention_loop(lambda: self.pool, days, mode, spool_dir=self.settings.spool_dir)
            self._tasks.append(asyncio.create_task(job, name="retention"))

    async def start_ami(self) -> None:
        """Starts one AMI client per configured Asterisk server.

        Rejected credentials stop the start-up with a clear error; an unreachable server is
        logged and retried in the background, so one PBX down does not stop the others.
        """
        for server in self.settings.asterisk:
            await self.start_ingest(server)

    async def start_ingest(self, server: AsteriskServer) -> None:
        """Starts the AMI client of one Asterisk server (see ``start_ami``)."""
        from callcenter.ami import AmiClient, AmiConnectError

        # VarSet floods are dropped from the raw text, before a message is even parsed.
        client = AmiClient(server, self.ami_sink, drop_raw=events.is_noise)
        self.clients[server.name] = client
        try:
            await client.start()
        except AmiConnectError as exc:
            log.warning("ami_unreachable_retrying", server=server.name, error=str(exc))
            client = AmiClient(server, self.ami_sink, drop_raw=events.is_noise)
            self.clients[server.name] = client
            await client.start(wait=False)
        self._tasks.append(asyncio.create_task(self._watch(client), name=f"watch:{server.name}"))

    async def _watch(self, client: Any) -> None:
        """Logs the error that stopped an AMI client for good (a refused re-login)."""
        try:
            await client.wait_closed()
        except Exception as exc:
            log.error("ami_stopped", server=client.server.name, error=str(exc))

    async def drain(self) -> None:
        """Waits until every queued AMI message has been processed."""
        await self.queue.join()

    async def stop(self) -> None:
        """Stops ingestion, snapshots open calls and flushes everything to PostgreSQL."""
        if self.cluster is not None:
            await self.cluster.stop()  # no takeover while stopping; locks go at the end
        if self.ivr is not None:
            with contextlib.suppress(Exception):
                await self.ivr.close()
            self.ivr = None
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                await self.drain()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # asyncio.wait, not a suppressed await: a cancellation of stop() itself (its time
            # budget ran out) must still propagate.
            await asyncio.wait(self._tasks)
        self._tasks.clear()
        if self.reconciler is not None:
            await self.reconciler.stop()
        if self.writer is not None:
            if self.started:
                # Not after a failed start: the calls it resumed may be another instance's,
                # and this process ingested nothing that would change them.
                self._dirty.update(key for key in self.tracker.calls if self.owns(key[0]))
            self._snapshot_open_calls()
            await self.writer.close(grace=4.0)  # then the rest goes to the spill file
        if self.cluster is not None:
            await self.cluster.close()  # only now may another instance take the servers
        if self.pool is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self.pool.close()
            except TimeoutError:
                # A connection someone never released must not hang the shutdown.
                log.warning("db_pool_close_timeout")
                self.pool.terminate()

    def health(self) -> dict[str, Any]:
        """What /healthz reports: AMI link per server, database, backlog; in memory only.

        ``status`` is ``ok``; ``partial`` while the service still does its job (some Asterisk
        servers of several are down, or records wait in the spill file); ``degraded`` (503)
        when it cannot: no Asterisk server connected, the database failing, or a follower
        without the shared stream. No database round trip: it answers during any flood.
        """
        now = time.time()
        open_calls = self.tracker.open_per_server()
        servers = {}
        for name, client in self.clients.items():
            last = getattr(client, "last_message_at", None)
            connected = bool(getattr(client, "connected", False))
            servers[name] = {
                "status": "up" if connected else "down",
                "connected": connected,
                "last_event_age_s": round(now - last, 3) if last else None,
                "reconnects": getattr(client, "reconnects", 0),
                "open_calls": open_calls.get(name, 0),
            }
        writer = self.writer
        failing = bool(writer is not None and writer.failing)
        spilling = bool(writer is not None and writer.spilling)
        up = sum(1 for s in servers.values() if s["connected"])
        ok = up == len(servers) and not failing and not spilling
        working = (up > 0 or not servers) and not failing
        cluster = self.cluster.health() if self.cluster is not None else None
        if cluster is not None and not cluster["stream_connected"]:
            ok = working = False  # a follower without the stream shows a frozen floor
        report = {
            "status": "ok" if ok else ("partial" if working else "degraded"),
            "asterisk": servers,
            "database": {
                "reachable": not failing,
                "spilling": spilling,
                "pending_writes": writer.pending if writer is not None else 0,
            },
            "queue_depth": self.queue.qsize(),
            "open_calls": len(self.tracker.calls),
            "pipeline": dict(self.pipeline.counters),
        }
        if cluster is not None:
            report["cluster"] = cluster
        return report

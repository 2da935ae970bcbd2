"""Several instances, one PostgreSQL: who ingests each Asterisk server, and how the others see it.

Ownership. Each Asterisk server has a session-level advisory lock (a stable 64-bit hash of the
channel name and the server name) held on a dedicated connection. The instance holding it runs
that server's AMI client and alone writes its calls, snapshots and webhooks; the others try the
lock every second, so when the owner dies (its connection drops) one of them takes over: it
loads the server's open-call snapshots, writes the records it saw end that never reached the
database, and logs in to Asterisk, whose resync closes the calls that ended during the gap.
An owner whose lock session ends keeps ingesting (while PostgreSQL is unreachable nobody can
take over, and the writer buffers); its next session either gets the lock back or finds it
held by another instance, and then it stops ingesting that server.

Stream. The owner NOTIFYs every AMI message that survived the noise filter on one channel,
batched every 50 ms, in numbered payloads under PostgreSQL's 8000-byte limit (one larger
message goes in fragments). Every instance LISTENs and feeds the messages of servers it does not
own into its own pipeline, so its tracker, metrics, wallboard and pops are live. A follower
that joins, reconnects or sees a gap in the numbers asks the owners for a resync, which they
run over their live link and which reaches every follower through the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import structlog

from callcenter.ami import (
    DEFAULT_RESYNC_ACTIONS,
    LINK_DOWN,
    RESYNC_BEGIN,
    RESYNC_END,
    AmiAuthError,
    AmiError,
)
from callcenter.model import (
    Anomaly,
    CallEnded,
    Effect,
    MemberChanged,
    PauseEnded,
    SessionEnded,
)

log = structlog.get_logger(__name__)

# A dead owner's lock is free as soon as PostgreSQL sees its connection drop; followers look
# this often, which bounds the takeover time together with the AMI login.
RETRY_S = 1.0
# PostgreSQL ends a lock session idle this long, so a frozen or cut-off owner loses its
# servers too (the live owner queries every RETRY_S).
LOCK_IDLE_TIMEOUT_S = 5.0
QUERY_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 5.0
BATCH_S = 0.05
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
PAYLOAD_LIMIT = 7800
# Messages waiting for the stream connection; beyond this they are dropped and followers,
# seeing the gap in the numbers, ask for a resync.
PENDING_LIMIT = 50_000
# How long a follower keeps the records it saw end: what a dying owner may not have written.
RECENT_S = 60.0
RECENT_LIMIT = 100_000
# After losing PostgreSQL, an instance leaves the servers it did not own alone this long.
HOLD_OFF_S = 3.0
# Resyncs a follower's request triggers are at least this far apart per owner.
RESYNC_MIN_S = 2.0

_DURABLE_TYPES: tuple[type, ...] | None = None


def lock_key(channel: str, server: str) -> int:
    """The advisory-lock key of a server: stable across versions, hosts and Python runs."""
    digest = hashlib.blake2b(f"{channel}\0{server}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def effect_server(effect: Effect) -> str:
    """The Asterisk server an effect is about."""
    if isinstance(effect, Anomaly):
        return effect.server
    if isinstance(effect, MemberChanged):
        return effect.member.server
    if isinstance(effect, PauseEnded):
        return effect.pause.server
    if isinstance(effect, SessionEnded):
        return effect.session.server
    return effect.call.server


def is_durable(subscriber: Any) -> bool:
    """Whether a subscriber writes to PostgreSQL or queues webhooks, which only an owner may do."""
    global _DURABLE_TYPES
    if getattr(subscriber, "durable", False):
        return True
    if _DURABLE_TYPES is None:
        # Imported late: both modules pull in the web and ticket layers.
        from callcenter.dispositions import CallbackTickets

        _DURABLE_TYPES = (CallbackTickets,)
    return isinstance(subscriber, _DURABLE_TYPES)


def _size(text: str) -> int:
    return len(text.encode())


def encode_stream(
    sender: str, seq: int, items: Iterable[str], limit: int = PAYLOAD_LIMIT
) -> list[str]:
    """Packs JSON-encoded messages into numbered payloads of at most ``limit`` bytes.

    Numbers run from ``seq`` upwards, one per payload; a message too large for one payload
    is split into fragment payloads (``f`` of ``n``) that ``StreamDecoder`` joins again.
    """
    sender_json = json.dumps(sender)
    payloads: list[str] = []
    batch: list[str] = []
    used = 0

    def head(n: int) -> str:
        return f'{{"i":{sender_json},"s":{n},"m":['

    def close() -> None:
        nonlocal batch, used
        if batch:
            payloads.append(head(seq + len(payloads)) + ",".join(batch) + "]}")
            batch, used = [], 0

    for item in items:
        size = _size(item)
        # 40 bytes cover the header's number and the closing brackets.
        if _size(head(0)) + size + 40 <= limit:
            if used + size + 1 + _size(head(0)) + 40 > limit:
                close()
            batch.append(item)
            used += size + 1
            continue
        close()
        # Rare: one huge message. Its text is cut into pieces that fit even when every
        # character needs a six-byte JSON escape.
        step = max(1, (limit - _size(head(0)) - 80) // 6)
        pieces = [item[i : i + step] for i in range(0, len(item), step)]
        for k, piece in enumerate(pieces):
            n = seq + len(payloads)
            payloads.append(
                f'{{"i":{sender_json},"s":{n},"f":{k},"n":{len(pieces)},'
                f'"d":{json.dumps(piece, ensure_ascii=False)}}}'
            )
    close()
    return payloads


class StreamDecoder:
    """Turns payloads back into messages, per sender, noticing lost or foreign-ordered ones."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.gaps = 0
        # The own payloads every listener also gets back are skipped without parsing them.
        self._own_prefix = f'{{"i":{json.dumps(me)},'
        self._last: dict[str, int] = {}
        self._parts: dict[str, list[str]] = {}

    def decode(self, payload: str) -> tuple[str, list[Any], bool]:
        """Returns (sender, messages, resync asked); a gap before it counts in ``gaps``."""
        if payload.startswith(self._own_prefix):
            return self.me, [], False
        data = json.loads(payload)
        sender, seq = str(data["i"]), int(data["s"])
        if sender == self.me:
            return sender, [], False
        last = self._last.get(sender)
        self._last[sender] = seq
        if last is not None and seq != last + 1:
            self.gaps += 1
            self._parts.pop(sender, None)
        if data.get("r"):
            return sender, [], True
        if "f" in data:
            parts = self._parts.setdefault(sender, [])
            if int(data["f"]) != len(parts):  # the start of this message was lost
                self._parts.pop(sender, None)
                return sender, [], False
            parts.append(str(data["d"]))
            if len(parts) < int(data["n"]):
                return sender, [], False
            del self._parts[sender]
            return sender, [json.loads("".join(parts))], False
        return sender, list(data["m"]), False


class Cluster:
    """This instance's share of the Asterisk servers and its end of the shared stream."""

    def __init__(self, service: Any) -> None:
        settings = service.settings
        self.service = service
        self.channel: str = settings.cluster_channel
        self.servers = {server.name: server for server in settings.asterisk}
        self.keys = {name: lock_key(self.channel, name) for name in self.servers}
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.owned: set[str] = set()
        self.following: dict[str, str] = {}  # server -> the instance whose stream we follow
        self.takeovers = 0
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.resyncs = 0
        self.recovered = 0  # calls a dead owner had not written, written at the takeover
        self.decoder = StreamDecoder(self.instance)
        self._url: str = settings.database_url
        self._lock_conn: Any = None
        self._hold_off_until = 0.0
        self._stream_failing = False  # an outage is logged once, not every 50 ms
        self._stream_conn: Any = None
        self._pending: list[tuple[str, Mapping[str, str], float]] = []
        self._wake = asyncio.Event()
        self._seq = 0
        self._ask_resync = False
        self._resync_due = asyncio.Event()
        self._resyncing: set[str] = set()  # owned servers with a resync on the wire
        self._recent: deque[tuple[float, Effect]] = deque()
        self._loops: list[asyncio.Task[None]] = []
        self._publisher: asyncio.Task[None] | None = None
        self._closing = False

    # ---- what the service asks ------------------------------------------------------------

    def owns(self, server: str) -> bool:
        """Whether this instance ingests (and writes) that Asterisk server now."""
        return server in self.owned

    def publish(self, server: str, headers: Mapping[str, str], received_at: float) -> None:
        """Queues a message of an owned server for the other instances; never raises."""
        if server not in self.owned:
            return
        name = headers.get("Event")
        if name == RESYNC_BEGIN:
            self._resyncing.add(server)
        elif name in (RESYNC_END, LINK_DOWN):
            self._resyncing.discard(server)
        if len(self._pending) >= PENDING_LIMIT:
            self.dropped += len(self._pending)
            self._pending.clear()
            self._seq += 1  # followers see the gap and ask for a resync
            log.warning("cluster_stream_overflow", dropped=PENDING_LIMIT)
        self._pending.append((server, headers, received_at))
        self._wake.set()

    def owned_effects(self, effects: list[Effect]) -> list[Effect]:
        """The effects of owned servers (the same list when all are); keeps the others' records."""
        if all(effect_server(e) in self.owned for e in effects):
            return effects
        now = time.monotonic()
        owned = []
        for effect in effects:
            if effect_server(effect) in self.owned:
                owned.append(effect)
            elif isinstance(effect, CallEnded | PauseEnded | SessionEnded):
                self._recent.append((now, effect))
        while self._recent and (
            now - self._recent[0][0] > RECENT_S or len(self._recent) > RECENT_LIMIT
        ):
            self._recent.popleft()
        return owned

    def health(self) -> dict[str, Any]:
        """This instance's part in the cluster, for /healthz."""
        writer = self.service.writer
        return {
            "instance": self.instance,
            "owned": sorted(self.owned),
            "following": {k: v for k, v in sorted(self.following.items()) if k not in self.owned},
            "stream_connected": self._stream_up(),
            "takeovers": self.takeovers,
            "published": self.published,
            "received": self.received,
            "gaps": self.decoder.gaps,
            "dropped": self.dropped,
            "resyncs": self.resyncs,
            "recovered_calls": self.recovered,
            "calls_written": getattr(writer, "flushed_calls", 0),
        }

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Joins the stream, takes the servers nobody holds and keeps trying for the others."""
        try:
            await self._connect_stream()
        except Exception as exc:  # the database is up (the pool just connected): retried
            self._stream_trouble("cluster_stream_down", error=repr(exc))
        await self._claim(initial=True)
        if set(self.servers) - self.owned:
            self._ask_resync = True  # what we resumed from snapshots may be stale
            self._wake.set()
        log.info("cluster_joined", instance=self.instance, owned=sorted(self.owned))
        self._publisher = asyncio.create_task(self._publish_loop(), name="cluster-publish")
        self._loops = [
            asyncio.create_task(self._keep_up(), name="cluster-locks"),
            asyncio.create_task(self._resync_loop(), name="cluster-resync"),
        ]

    async def stop(self) -> None:
        """Stops taking servers over; what this instance owns stays owned until ``close``."""
        for task in self._loops:
            task.cancel()
        if self._loops:
            await asyncio.wait(self._loops)  # our own cancellation still propagates
        self._loops.clear()

    async def close(self) -> None:
        """Sends the last messages and releases every lock (by closing its connection)."""
        if self._publisher is not None:
            self._closing = True
            self._wake.set()
            # The last batch carries the link-down of this instance's own AMI clients.
            done, _ = await asyncio.wait([self._publisher], timeout=2.0)
            if not done:
                self._publisher.cancel()
                await asyncio.wait([self._publisher])
            self._publisher = None
        for conn in (self._stream_conn, self._lock_conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2.0)
                conn.terminate()
        self._stream_conn = self._lock_conn = None
        self.owned.clear()

    # ---- ownership --------------------------------------------------------------------------

    async def _keep_up(self) -> None:
        while True:
            await asyncio.sleep(RETRY_S)
            try:
                if not self._stream_up():
                    await self._connect_stream()
                    self._ask_resync = True  # notifications sent while we were away are gone
                    self._wake.set()
                    if self._stream_failing:
                        self._stream_failing = False
                        log.info("cluster_stream_restored", dropped=self.dropped)
            except Exception as exc:
                self._stream_trouble("cluster_stream_down", error=repr(exc))
            await self._claim(initial=False)

    async def _claim(self, *, initial: bool) -> None:
        """Tries the locks this instance lacks; after a new lock session, also those it had.

        Losing the lock session does not stop ingestion: while PostgreSQL is out of reach nobody
        can take a server over, and records wait in the writer. Ingestion stops when the new
        session finds the lock held by another instance.
        """
        if self._lock_conn is not None and self._lock_conn.is_closed():
            self._drop_lock_connection("the lock session ended")
        fresh = self._lock_conn is None
        try:
            conn = await self._lock_connection()
        except Exception as exc:
            self._drop_lock_connection(f"cannot connect: {exc!r}")
            return
        if fresh and not initial:
            # Back after losing PostgreSQL: the previous owners get a head start to take their
            # servers back, rather than a takeover with stale calls.
            self._hold_off_until = time.monotonic() + HOLD_OFF_S
        held = set() if fresh else self.owned
        wanted = [name for name in self.servers if name not in held]
        if time.monotonic() < self._hold_off_until:
            wanted = [name for name in wanted if name in self.owned]
        try:
            rows = await conn.fetch(
                "SELECT k FROM unnest($1::bigint[]) AS k WHERE pg_try_advisory_lock(k)",
                [self.keys[name] for name in wanted],
                timeout=QUERY_TIMEOUT_S,
            )
        except Exception as exc:
            self._drop_lock_connection(repr(exc))
            return
        got = {row["k"] for row in rows}
        for name in wanted:
            if self.keys[name] not in got:
                if name in self.owned:
                    await self._lose(name, "another instance holds the lock")
            elif name not in self.owned:
                try:
                    await self._take_over(name, initial=initial)
                except AmiAuthError:
                    if initial:
                        raise  # as with one instance: a rejected secret stops the start
                    log.exception("cluster_takeover_failed", server=name)
                except Exception:
                    log.exception("cluster_takeover_failed", server=name)
                    await self._release(name)

    async def _lock_connection(self) -> Any:
        if self._lock_conn is not None:
            return self._lock_conn
        conn = await self._connect("lock")
        with contextlib.suppress(asyncpg.PostgresError):  # PostgreSQL < 14 lacks the setting
            await conn.execute(f"SET idle_session_timeout = {int(LOCK_IDLE_TIMEOUT_S * 1000)}")
        self._lock_conn = conn
        return conn

    async def _connect(self, role: str) -> Any:
        # Named, so pg_stat_activity shows which instance holds which lock.
        name = f"callcenter-{role} {self.instance}"[:63]
        return await asyncpg.connect(
            self._url, timeout=CONNECT_TIMEOUT_S, server_settings={"application_name": name}
        )

    def _drop_lock_connection(self, reason: str) -> None:
        """Closes the lock session (its locks go with it); owned servers keep ingesting."""
        conn, self._lock_conn = self._lock_conn, None
        if conn is None:
            return  # already reported
        conn.terminate()
        log.warning("cluster_lock_session_lost", owned=sorted(self.owned), reason=reason)

    async def _lose(self, name: str, reason: str) -> None:
        """Another instance owns the server now: stop ingesting it and follow its stream."""
        self.owned.discard(name)
        log.error("cluster_ingest_lost", server=name, reason=reason)
        await self.service.stop_ingest(name)
        # The new owner's login resync may have gone by while this instance still held it.
        self._ask_resync = True
        self._wake.set()

    async def _release(self, name: str) -> None:
        """Gives a server up after a failed takeover, so another instance can try."""
        self.owned.discard(name)
        await self.service.stop_ingest(name)
        try:
            await self._lock_conn.execute("SELECT pg_advisory_unlock($1)", self.keys[name])
        except Exception as exc:
            self._drop_lock_connection(repr(exc))  # which releases it too

    async def _take_over(self, name: str, *, initial: bool) -> None:
        """Becomes the writer of a server: resumes its calls, writes what it missed, logs in."""
        service = self.service
        self.owned.add(name)
        if not initial:
            self.takeovers += 1
        log.warning("cluster_ingest_owner", server=name, instance=self.instance, initial=initial)
        try:
            await self._resume(name)
        except Exception:
            # Ingesting matters more than what the snapshots would add: log in all the same.
            log.exception("cluster_resume_failed", server=name)
        if not initial:
            # The previous owner's link is gone: calls in flight may have missed events.
            service.ami_sink(name, {"Event": LINK_DOWN}, time.time())
        await service.start_ingest(self.servers[name])

    async def _resume(self, name: str) -> None:
        """Adds the server's open calls this instance does not follow; writes what it missed."""
        from callcenter.store.calls import load_open_calls

        service = self.service
        loaded = await load_open_calls(service.pool, name)
        seen_ended = {
            (e.call.server, e.call.linkedid) for _, e in self._recent if isinstance(e, CallEnded)
        }
        calls = service.tracker.calls
        service.tracker.resume(
            c
            for c in loaded
            if (c.server, c.linkedid) not in calls and (c.server, c.linkedid) not in seen_ended
        )
        await self._write_unconfirmed(name)
        service.snapshot_later(name)

    async def _write_unconfirmed(self, name: str) -> None:
        """Writes what this instance saw end for a server and its database does not have."""
        mine = [e for _, e in self._recent if effect_server(e) == name]
        if not mine:
            return
        linkedids = [e.call.linkedid for e in mine if isinstance(e, CallEnded)]
        rows = await self.service.pool.fetch(
            "SELECT linkedid FROM calls WHERE server = $1 AND linkedid = ANY($2::text[])",
            name,
            linkedids,
        )
        present = {row["linkedid"] for row in rows}
        missing = [
            e for e in mine if not isinstance(e, CallEnded) or e.call.linkedid not in present
        ]
        if missing:
            calls = sum(isinstance(e, CallEnded) for e in missing)
            self.recovered += calls
            log.warning("cluster_unconfirmed_written", server=name, calls=calls)
            self.service.dispatch(missing, durable_only=True)
        self._recent = deque((t, e) for t, e in self._recent if effect_server(e) != name)

    # ---- the stream -------------------------------------------------------------------------

    def _stream_up(self) -> bool:
        return self._stream_conn is not None and not self._stream_conn.is_closed()

    async def _connect_stream(self) -> None:
        old, self._stream_conn = self._stream_conn, None
        if old is not None:
            old.terminate()
        conn = await self._connect("stream")
        await conn.add_listener(self.channel, self._on_notify)
        self._stream_conn = conn

    def _stream_trouble(self, event: str, **fields: Any) -> None:
        if not self._stream_failing:
            self._stream_failing = True
            log.warning(event, **fields)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        """Feeds another owner's messages into this instance's pipeline; never raises."""
        try:
            gaps = self.decoder.gaps
            sender, messages, resync = self.decoder.decode(payload)
            if resync:
                self._resync_due.set()
            if self.decoder.gaps != gaps:
                self._ask_resync = True
                self._wake.set()
            queue = self.service.queue
            for server, received_at, headers in messages:
                if server in self.owned:
                    continue  # a late message from the owner this instance replaced
                queue.put_nowait((server, headers, float(received_at)))
                self.following[server] = sender
                self.received += 1
        except Exception:
            log.exception("cluster_bad_payload", payload=payload[:80])

    async def _publish_loop(self) -> None:
        while not (self._closing and not self._pending):
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(BATCH_S)  # one NOTIFY transaction per burst
            batch, self._pending = self._pending, []
            items = [
                json.dumps([server, received_at, dict(headers)], ensure_ascii=False)
                for server, headers, received_at in batch
            ]
            payloads = encode_stream(self.instance, self._seq, items)
            if self._ask_resync:
                self._ask_resync = False
                payloads.append(
                    json.dumps({"i": self.instance, "s": self._seq + len(payloads), "r": 1})
                )
            self._seq += len(payloads)
            if not payloads:
                continue
            try:
                if not self._stream_up():
                    raise ConnectionError("stream connection down")  # _keep_up reconnects
                await self._stream_conn.execute(
                    "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p",
                    self.channel,
                    payloads,
                    timeout=QUERY_TIMEOUT_S,
                )
                self.published += len(batch)
            except Exception as exc:
                # Dropped, not retried: followers see the gap in the numbers and ask for a
                # resync, which is cheaper than replaying a backlog.
                self.dropped += len(batch)
                self._stream_trouble("cluster_publish_failed", error=repr(exc))
                if self._stream_conn is not None:
                    self._stream_conn.terminate()

    async def _resync_loop(self) -> None:
        last = 0.0
        while True:
            await self._resync_due.wait()
            await asyncio.sleep(max(0.0, last + RESYNC_MIN_S - time.monotonic()))
            self._resync_due.clear()
            last = time.monotonic()
            for name in sorted(self.owned - self._resyncing):
                try:
                    await self._resync(name)
                except Exception:
                    log.exception("cluster_resync_failed", server=name)

    async def _resync(self, name: str) -> None:
        """Re-reads a server's live state over its link, bracketed like the login resync."""
        client = self.service.clients.get(name)
        if client is None or not client.connected:
            return  # its next login resyncs, and that reaches the followers too
        sink = self.service.ami_sink
        sink(name, {"Event": RESYNC_BEGIN}, time.time())
        failed = []
        for action in DEFAULT_RESYNC_ACTIONS:
            try:
                answer = await client.action({"Action": action})
            except AmiError:
                failed.append(action)
                continue
            if not isinstance(answer, list):
                failed.append(action)
        end = {
            "Event": RESYNC_END,
            "Complete": "no" if failed else "yes",
            "Failed": ",".join(failed),
        }
        sink(name, end, time.time())
        self.resyncs += 1
        log.info("cluster_resync_sent", server=name, failed=failed)

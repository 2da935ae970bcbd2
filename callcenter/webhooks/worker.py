"""The delivery worker: signed POSTs from the outbox, retried with backoff for up to 3 days.

Every instance may run one; deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` and leased by
moving ``next_attempt_at``, so a crashed worker's claim is retried once the lease expires. The
clock and the randomness are injectable, so a test can run a simulated day in a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import asyncpg
import structlog

from callcenter.webhooks import signing
from callcenter.webhooks.outbox import NOTIFY_CHANNEL
from callcenter.webhooks.subscriptions import Subscription, host_allowed

log = structlog.get_logger(__name__)

USER_AGENT = "callcenter-webhooks/1"


def _gone(conn: Any) -> bool:
    """Whether a pooled connection is closed, or was taken back by the pool when it broke."""
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # a released proxy refuses every call
        return True


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(slots=True)
class Claimed:
    """A delivery this worker holds the lease on."""

    id: int
    subscription: str
    attempts: int
    first_attempt_at: datetime
    msg_id: str
    event_type: str
    body: str


@dataclass(slots=True)
class Outcome:
    """What one attempt got back."""

    status: int | None = None
    error: str | None = None
    response: str = ""
    retry_after: float | None = None
    duration_ms: float = 0.0


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


class DeliveryWorker:
    """Delivers outbox events to the configured subscriptions."""

    def __init__(
        self,
        pool: Callable[[], Any],
        subscriptions: list[Subscription],
        *,
        allowed_hosts: tuple[str, ...] | list[str],
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        timeout: float = 15.0,
        batch: int = 100,
        concurrency: int = 32,
        max_age_s: float = 3 * 86400.0,
        base_delay: float = 5.0,
        max_delay: float = 6 * 3600.0,
        max_retry_after: float = 86400.0,
        poll_interval: float = 1.0,
        retention_days: float = 30.0,
        probe_interval: float = 60.0,
    ) -> None:
        self._pool = pool
        self.subscriptions = {s.name: s for s in subscriptions}
        self.allowed_hosts = tuple(allowed_hosts)
        self.clock = clock
        self.rand = rand
        self.timeout = timeout
        self.batch = batch
        self.max_age_s = max_age_s
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self.poll_interval = poll_interval
        self.retention_days = retention_days
        # A claim outlives the attempt it covers, so no other worker takes it meanwhile.
        self.lease_s = timeout + 30.0
        # A receiver in backoff is probed with its oldest delivery this often; once one gets
        # through, the whole backlog is due at once (not each on its own backoff, up to 6 h).
        # math.inf turns both off (each delivery on its own backoff: the old behaviour).
        self.probe_interval = probe_interval
        self._last_probe = float("-inf")
        self._hold_until: dict[str, float] = {}  # a Retry-After the receiver asked for
        self._sem = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._synced = False
        self._disabled: set[str] = set()
        self._last_purge = 0.0
        self.counters = {"attempts": 0, "delivered": 0, "retried": 0, "failed": 0, "disabled": 0}

    # ---- one round ---------------------------------------------------------------------

    def pool(self) -> Any:
        """The database pool (raises while the service has none)."""
        pool = self._pool()
        if pool is None:
            raise RuntimeError("no database pool yet")
        return pool

    async def run_once(self) -> int:
        """Fans out new events, then attempts every due delivery once; returns how many."""
        now = self.clock()
        if not self._synced:
            await self.sync_subscriptions()
        await self._refresh_disabled()
        await self.fan_out(now)
        if now - self._last_probe >= self.probe_interval:  # never when set to math.inf
            await self.probe(now)
        claimed = await self._claim(now)
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(c, now) for c in claimed))
        await self._record(claimed, list(outcomes), now)
        return len(claimed)

    async def sync_subscriptions(self) -> None:
        """Records the configured subscriptions; a changed URL clears an earlier 410."""
        rows = [(s.name, s.url) for s in self.subscriptions.values()]
        await self.pool().executemany(
            """
            INSERT INTO webhook_subscriptions (name, url) VALUES ($1, $2)
            ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url,
                disabled_at = CASE WHEN webhook_subscriptions.url = EXCLUDED.url
                                   THEN webhook_subscriptions.disabled_at END,
                disabled_reason = CASE WHEN webhook_subscriptions.url = EXCLUDED.url
                                       THEN webhook_subscriptions.disabled_reason END
            """,
            rows,
        )
        self._synced = True

    async def _refresh_disabled(self) -> None:
        rows = await self.pool().fetch(
            "SELECT name FROM webhook_subscriptions WHERE disabled_at IS NOT NULL"
        )
        self._disabled = {r["name"] for r in rows}

    async def fan_out(self, now: float) -> int:
        """Creates one delivery per matching subscription for events not yet fanned out."""
        async with self.pool().acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """
                SELECT id, event_type FROM webhook_outbox WHERE NOT fanned_out
                ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED
                """
            )
            if not rows:
                return 0
            deliveries = [
                (r["id"], s.name, "disabled" if s.name in self._disabled else "pending", _dt(now))
                for r in rows
                for s in self.subscriptions.values()
                if s.wants(r["event_type"])
            ]
            if deliveries:
                await conn.executemany(
                    """
                    INSERT INTO webhook_deliveries (outbox_id, subscription, state, next_attempt_at)
                    VALUES ($1, $2, $3, $4) ON CONFLICT (outbox_id, subscription) DO NOTHING
                    """,
                    deliveries,
                )
            await conn.execute(
                "UPDATE webhook_outbox SET fanned_out = true WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        return len(deliveries)

    async def probe(self, now: float) -> int:
        """Makes one backed-off delivery of each receiver with a backlog due now.

        The one due soonest is taken, so a delivery the receiver keeps refusing (a poison
        message) is not the only one ever probed; a lone delivery keeps its own backoff.
        Skips receivers that asked for a Retry-After still running and deliveries leased by
        a worker (their ``next_attempt_at`` is the lease's end). Returns how many it moved.
        """
        self._last_probe = now
        held = [name for name, until in self._hold_until.items() if until > now]
        rows = await self.pool().fetch(
            """
            WITH waiting AS (
                SELECT id, subscription, next_attempt_at FROM webhook_deliveries
                WHERE state = 'pending' AND NOT (subscription = ANY($2::text[]))
                  AND (last_attempt_at IS NULL
                       OR abs(extract(epoch FROM next_attempt_at - last_attempt_at) - $3) > 0.01)
            ), backlog AS (
                SELECT subscription FROM waiting GROUP BY 1 HAVING count(*) > 1
                   AND min(next_attempt_at) > $1
            )
            UPDATE webhook_deliveries d SET next_attempt_at = $1
            WHERE d.id IN (
                SELECT DISTINCT ON (w.subscription) w.id FROM waiting w
                JOIN backlog b USING (subscription)
                ORDER BY w.subscription, w.next_attempt_at, w.id
            )
            RETURNING d.id
            """,
            _dt(now),
            held,
            self.lease_s,
        )
        return len(rows)

    async def _release(self, conn: Any, names: set[str], now: float) -> None:
        """A receiver answered 2xx: every delivery waiting on its backoff is due now."""
        await conn.execute(
            """
            UPDATE webhook_deliveries SET next_attempt_at = $2
            WHERE subscription = ANY($1::text[]) AND state = 'pending' AND next_attempt_at > $2
              AND (last_attempt_at IS NULL
                   OR abs(extract(epoch FROM next_attempt_at - last_attempt_at) - $3) > 0.01)
            """,
            sorted(names),
            _dt(now),
            self.lease_s,
        )

    async def _claim(self, now: float) -> list[Claimed]:
        rows = await self.pool().fetch(
            """
            WITH due AS (
                SELECT id FROM webhook_deliveries
                WHERE state = 'pending' AND next_attempt_at <= $1
                ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
            )
            UPDATE webhook_deliveries d
            SET next_attempt_at = $2, attempts = d.attempts + 1, last_attempt_at = $1,
                first_attempt_at = COALESCE(d.first_attempt_at, $1)
            FROM due, webhook_outbox o
            WHERE d.id = due.id AND o.id = d.outbox_id
            RETURNING d.id, d.subscription, d.attempts, d.first_attempt_at, o.msg_id,
                      o.event_type, o.payload::text AS body
            """,
            _dt(now),
            _dt(now + self.lease_s),
            self.batch,
        )
        return [Claimed(**dict(r)) for r in rows]

    # ---- one attempt -------------------------------------------------------------------

    async def _attempt(self, item: Claimed, now: float) -> Outcome:
        sub = self.subscriptions.get(item.subscription)
        if sub is None:
            return Outcome(error="subscription is no longer configured")
        if not host_allowed(sub.url, self.allowed_hosts):
            return Outcome(error="host not in webhook_allowed_hosts")
        headers = {
            **signing.headers(sub.secrets, item.msg_id, int(now), item.body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        async with self._sem:
            started = time.perf_counter()
            outcome = await self._post(sub.url, item.body, headers, now)
            outcome.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        return outcome

    async def _post(self, url: str, body: str, headers: dict[str, str], now: float) -> Outcome:
        session = self._client()
        try:
            async with asyncio.timeout(self.timeout):
                async with session.post(
                    url, data=body.encode(), headers=headers, allow_redirects=False
                ) as resp:
                    raw = await resp.content.read(1024)
                    return Outcome(
                        status=resp.status,
                        response=raw.decode("utf-8", "replace"),
                        retry_after=retry_after_seconds(resp.headers.get("Retry-After"), now),
                    )
        except TimeoutError:
            return Outcome(error=f"no answer within {self.timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}"[:500])

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=100),
            )
        return self._session

    # ---- results -----------------------------------------------------------------------

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try: exponential, capped, with equal jitter."""
        delay = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return delay / 2 + self.rand() * delay / 2

    def _next(self, item: Claimed, outcome: Outcome, now: float) -> tuple[str, datetime]:
        """The delivery's next state and attempt time after a failed attempt."""
        deadline = item.first_attempt_at.timestamp() + self.max_age_s
        if outcome.error in ("subscription is no longer configured",) or now >= deadline:
            return "failed", _dt(now)
        if outcome.retry_after is not None:
            delay = min(max(outcome.retry_after, 1.0), self.max_retry_after)
        else:
            delay = self.backoff(item.attempts)
        # The last try lands on the deadline rather than beyond it.
        return "pending", _dt(min(now + delay, deadline))

    async def _record(self, items: list[Claimed], outcomes: list[Outcome], now: float) -> None:
        updates, attempts, gone, back = [], [], set(), set()
        for item, out in zip(items, outcomes, strict=True):
            self.counters["attempts"] += 1
            delivered_at = None
            if out.retry_after is not None:
                self._hold_until[item.subscription] = now + out.retry_after
            if out.status is not None and 200 <= out.status < 300:
                state, next_at, delivered_at = "delivered", _dt(now), _dt(now)
                self.counters["delivered"] += 1
                back.add(item.subscription)
                self._hold_until.pop(item.subscription, None)
            elif out.status == 410:
                state, next_at = "disabled", _dt(now)
                gone.add(item.subscription)
                self.counters["disabled"] += 1
            else:
                state, next_at = self._next(item, out, now)
                self.counters["retried" if state == "pending" else "failed"] += 1
                if state == "failed":
                    log.error(
                        "webhook_delivery_failed",
                        subscription=item.subscription,
                        msg_id=item.msg_id,
                        attempts=item.attempts,
                        error=out.error,
                        status=out.status,
                    )
            error = out.error or (None if state == "delivered" else f"HTTP {out.status}")
            updates.append((item.id, state, next_at, out.status, error, delivered_at))
            attempts.append(
                (item.id, item.attempts, _dt(now), out.status, out.error, out.duration_ms)
                + (out.response,)
            )
        async with self.pool().acquire() as conn, conn.transaction():
            await conn.executemany(
                """
                UPDATE webhook_deliveries SET state = $2, next_attempt_at = $3, last_status = $4,
                    last_error = $5, delivered_at = COALESCE($6, delivered_at)
                WHERE id = $1
                """,
                updates,
            )
            await conn.executemany(
                """
                INSERT INTO webhook_attempts
                    (delivery_id, attempt, at, status, error, duration_ms, response)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                """,
                attempts,
            )
            for name in gone:
                await self._disable(conn, name, now)
            if back - gone and math.isfinite(self.probe_interval):
                await self._release(conn, back - gone, now)

    async def _disable(self, conn: Any, name: str, now: float) -> None:
        """Stops delivering to a subscription that answered 410 Gone."""
        log.warning("webhook_subscription_disabled", subscription=name, reason="410 Gone")
        self._disabled.add(name)
        await conn.execute(
            """
            UPDATE webhook_subscriptions SET disabled_at = $2, disabled_reason = '410 Gone'
            WHERE name = $1 AND disabled_at IS NULL
            """,
            name,
            _dt(now),
        )
        await conn.execute(
            """
            UPDATE webhook_deliveries SET state = 'disabled'
            WHERE subscription = $1 AND state = 'pending'
            """,
            name,
        )

    # ---- the loop ----------------------------------------------------------------------

    def kick(self) -> None:
        """Wakes the loop now (an event was just enqueued)."""
        self._wake.set()

    def start(self) -> None:
        """Starts delivering in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="webhook-worker")

    async def stop(self) -> None:
        """Stops the loop and closes the HTTP client; leased deliveries are retried later."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # our own cancellation still propagates
            self._task = None
        await self._unlisten()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self) -> None:
        delay = self.poll_interval
        while True:
            try:
                await self._listen()
                done = await self.run_once()
                await self._maybe_purge()
                delay = self.poll_interval
            except Exception as exc:  # database away or a bug: log, wait, go on
                log.warning("webhook_worker_error", error=repr(exc))
                done = 0
                delay = min(delay * 2, 30.0)
            if done >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):  # cancel-safe, unlike 3.11's wait_for
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

    async def _listen(self) -> None:
        """Holds a connection that LISTENs for new outbox events (best effort)."""
        if self._listener is not None and not _gone(self._listener):
            return
        await self._unlisten()
        # Held in self._listener at once: if stop() cancels us inside add_listener, _unlisten
        # still releases the connection (else pool.close() would wait for it forever).
        self._listener = await self.pool().acquire()
        try:
            await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)
        except Exception:
            await self._unlisten()
            raise

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.remove_listener(NOTIFY_CHANNEL, self._notified)
            with contextlib.suppress(Exception):
                await self.pool().release(conn)

    async def _maybe_purge(self) -> None:
        """Once an hour, deletes old events whose deliveries are all finished."""
        if time.monotonic() - self._last_purge < 3600:
            return
        self._last_purge = time.monotonic()
        await self.pool().execute(
            """
            DELETE FROM webhook_outbox o
            WHERE o.created_at < now() - make_interval(days => $1::int) AND o.fanned_out
              AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                              WHERE d.outbox_id = o.id AND d.state = 'pending')
            """,
            int(self.retention_days),
        )

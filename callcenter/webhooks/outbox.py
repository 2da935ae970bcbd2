"""The outbox: events written in the caller's transaction, delivered later by the worker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from callcenter.model import CallEnded, Effect, iso
from callcenter.popup import normalize_number

log = structlog.get_logger(__name__)

NOTIFY_CHANNEL = "callcenter_webhooks"

_INSERT = """
INSERT INTO webhook_outbox (msg_id, event_type, payload) VALUES ($1, $2, $3::text::jsonb)
ON CONFLICT (msg_id) DO NOTHING
RETURNING id
"""

_INSERT_MANY = """
INSERT INTO webhook_outbox (msg_id, event_type, payload)
SELECT m, $2, p::jsonb FROM unnest($1::text[], $3::text[]) AS u(m, p)
ON CONFLICT (msg_id) DO NOTHING
"""


def new_msg_id() -> str:
    """A random webhook-id for an event that happens once (a ticket opened, a status change)."""
    return "msg_" + uuid.uuid4().hex


def derived_msg_id(*parts: str) -> str:
    """A webhook-id derived from what identifies the event, so a replay cannot duplicate it."""
    return "msg_" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def envelope(event_type: str, data: Any, occurred_at: float | None = None) -> dict[str, Any]:
    """The Standard Webhooks body: ``{"type", "timestamp", "data"}``."""
    when = occurred_at if occurred_at is not None else datetime.now(UTC).timestamp()
    return {"type": event_type, "timestamp": iso(when), "data": data}


async def enqueue(
    conn: Any,
    event_type: str,
    payload: Any,
    *,
    msg_id: str | None = None,
    occurred_at: float | None = None,
) -> str | None:
    """Writes an event to the outbox; call it inside the transaction that caused the event.

    Returns the webhook-id, or None if an event with that id was already queued (a replay).
    """
    msg_id = msg_id or new_msg_id()
    body = json.dumps(envelope(event_type, payload, occurred_at), ensure_ascii=False)
    row_id = await conn.fetchval(_INSERT, msg_id, event_type, body)
    if row_id is None:
        return None
    # Delivered to listeners at commit; wakes the delivery workers of every instance at once.
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, event_type)
    return msg_id


def call_ended_msg_id(server: str, linkedid: str) -> str:
    """The webhook-id of a call's call.ended event: one per (server, linkedid), ever."""
    return derived_msg_id("call.ended", server, linkedid)


def call_ended_data(call_dict: dict[str, Any], region: str = "TR") -> dict[str, Any]:
    """The data of a call.ended event: the call record plus its number in E.164."""
    return {**call_dict, "caller_e164": normalize_number(call_dict.get("caller_number"), region)}


class CallEndedOutbox:
    """Subscriber that queues call.ended for every finished call, idempotently per linkedid.

    The call row is written by the store's batched writer; this writes the event in a
    transaction of its own, keyed by (server, linkedid), so replaying a trace or a restart that
    finishes the same call again never sends a second call.ended.
    """

    def __init__(
        self,
        pool: Callable[[], Any],
        *,
        region: str = "TR",
        limit: int = 100_000,
        batch: int = 500,
        retry_max: float = 30.0,
    ) -> None:
        self._pool = pool
        self._region = region
        self._pending: deque[tuple[str, float | None, dict[str, Any]]] = deque()
        self._limit = limit
        self._batch = batch
        self._retry_max = retry_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.lost = 0

    def __call__(self, effects: list[Effect]) -> None:
        """Takes a snapshot of each finished call; never blocks."""
        for effect in effects:
            if not isinstance(effect, CallEnded):
                continue
            call = effect.call
            if len(self._pending) >= self._limit:
                self._pending.popleft()
                self.lost += 1
                log.error("call_ended_webhook_lost", reason="outbox buffer full")
            msg_id = call_ended_msg_id(call.server, call.linkedid)
            data = call_ended_data(call.to_dict(), self._region)
            self._pending.append((msg_id, call.ended_at, data))
            self._wake.set()

    @property
    def pending(self) -> int:
        """Events not yet in the outbox table."""
        return len(self._pending)

    def start(self) -> None:
        """Starts the background writer."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="call-ended-outbox")

    async def stop(self, grace: float = 5.0) -> None:
        """Writes what is pending (within ``grace`` seconds) and stops."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                while self._pending and not self._task.done():
                    self._wake.set()
                    await asyncio.sleep(0.05)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._pending:
            log.error("call_ended_webhooks_not_written", count=len(self._pending))

    async def flush(self) -> None:
        """Waits until every queued event is in the outbox (bound it with a timeout)."""
        while self._pending:
            self._wake.set()
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                items = [self._pending[i] for i in range(min(self._batch, len(self._pending)))]
                try:
                    await self._write(items)
                except Exception as exc:  # database away: keep the events, retry
                    log.warning("call_ended_outbox_retry", error=repr(exc), pending=self.pending)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry_max)
                    continue
                delay = 0.2
                for _ in items:
                    self._pending.popleft()
                self.written += len(items)

    async def _write(self, items: list[tuple[str, float | None, dict[str, Any]]]) -> None:
        pool = self._pool()
        if pool is None:
            raise RuntimeError("no database pool yet")
        ids = [msg_id for msg_id, _, _ in items]
        bodies = [
            json.dumps(envelope("call.ended", data, ended_at), ensure_ascii=False)
            for _, ended_at, data in items
        ]
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(_INSERT_MANY, ids, "call.ended", bodies)
            await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, "call.ended")

"""The outbox: events written in the caller's transaction, delivered later by the worker."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from callcenter.model import Call, iso
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


def call_ended_row(call: Call, region: str = "TR") -> tuple[str, str]:
    """The outbox row ``(msg_id, body)`` of a finished call's call.ended event.

    Raises ValueError for a call that cannot be encoded (NaN, a lone surrogate), so the
    store's writer can set that one call aside instead of blocking the others.
    """
    data = call_ended_data(call.to_dict(), region)
    body = json.dumps(
        envelope("call.ended", data, call.ended_at), ensure_ascii=False, allow_nan=False
    )
    body.encode("utf-8")  # a lone surrogate fails here, not in the database driver
    return call_ended_msg_id(call.server, call.linkedid), body


async def enqueue_call_ended(conn: Any, rows: list[tuple[str, str]]) -> None:
    """Writes call.ended rows in the caller's transaction (the store's, with the call rows).

    Keyed by (server, linkedid), so replaying a trace or a restart that finishes the same call
    again never queues a second call.ended.
    """
    if not rows:
        return
    await conn.execute(_INSERT_MANY, [m for m, _ in rows], "call.ended", [body for _, body in rows])
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, "call.ended")

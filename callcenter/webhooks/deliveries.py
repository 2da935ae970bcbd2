"""The delivery log: list deliveries and their attempts, replay one, re-enable a subscription."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from callcenter.model import iso

STATES = ("pending", "delivered", "failed", "disabled")


def _ts(value: datetime | None) -> str | None:
    return iso(value.timestamp()) if value is not None else None


def _delivery(row: Any) -> dict[str, Any]:
    """A delivery row as the API shows it."""
    return {
        "id": row["id"],
        "msg_id": row["msg_id"],
        "event_type": row["event_type"],
        "subscription": row["subscription"],
        "state": row["state"],
        "attempts": row["attempts"],
        "created_at": _ts(row["created_at"]),
        "first_attempt_at": _ts(row["first_attempt_at"]),
        "last_attempt_at": _ts(row["last_attempt_at"]),
        "next_attempt_at": _ts(row["next_attempt_at"]) if row["state"] == "pending" else None,
        "delivered_at": _ts(row["delivered_at"]),
        "last_status": row["last_status"],
        "last_error": row["last_error"],
    }


_SELECT = """
SELECT d.*, o.msg_id, o.event_type, o.created_at FROM webhook_deliveries d
JOIN webhook_outbox o ON o.id = d.outbox_id
"""


async def list_deliveries(
    pool: Any,
    *,
    state: str | None = None,
    subscription: str | None = None,
    event_type: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Deliveries, newest first, filtered by state, subscription or event type."""
    rows = await pool.fetch(
        _SELECT
        + """
        WHERE ($1::text IS NULL OR d.state = $1) AND ($2::text IS NULL OR d.subscription = $2)
          AND ($3::text IS NULL OR o.event_type = $3) AND ($4::bigint IS NULL OR d.id < $4)
        ORDER BY d.id DESC LIMIT $5
        """,
        state,
        subscription,
        event_type,
        before_id,
        limit,
    )
    return [_delivery(r) for r in rows]


async def get_delivery(pool: Any, delivery_id: int) -> dict[str, Any] | None:
    """One delivery with its payload and every attempt."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            _SELECT.replace("o.created_at", "o.created_at, o.payload::text AS payload")
            + " WHERE d.id = $1",
            delivery_id,
        )
        if row is None:
            return None
        attempts = await conn.fetch(
            """
            SELECT attempt, at, status, error, duration_ms, response FROM webhook_attempts
            WHERE delivery_id = $1 ORDER BY id
            """,
            delivery_id,
        )
    found = _delivery(row)
    found["payload"] = json.loads(row["payload"])
    found["log"] = [{**dict(a), "at": _ts(a["at"])} for a in attempts]
    return found


async def replay_delivery(pool: Any, delivery_id: int, now: float | None = None) -> bool:
    """Sends a delivery again (same webhook-id) with a fresh 3-day retry window."""
    when = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
    done = await pool.execute(
        """
        UPDATE webhook_deliveries
        SET state = 'pending', next_attempt_at = $2, first_attempt_at = NULL
        WHERE id = $1
        """,
        delivery_id,
        when,
    )
    await pool.execute("SELECT pg_notify('callcenter_webhooks', 'replay')")
    return str(done).endswith(" 1")


async def list_subscriptions(pool: Any, configured: list[Any]) -> list[dict[str, Any]]:
    """The configured subscriptions with their state and delivery counts (never the secrets)."""
    rows = {
        r["name"]: r
        for r in await pool.fetch(
            """
            SELECT s.name, s.disabled_at, s.disabled_reason,
                   count(*) FILTER (WHERE d.state = 'pending') AS pending,
                   count(*) FILTER (WHERE d.state = 'failed') AS failed,
                   count(*) FILTER (WHERE d.state = 'delivered') AS delivered
            FROM webhook_subscriptions s
            LEFT JOIN webhook_deliveries d ON d.subscription = s.name
            GROUP BY s.name
            """
        )
    }
    out = []
    for sub in configured:
        row = rows.get(sub.name)
        out.append(
            {
                "name": sub.name,
                "url": sub.url,
                "events": list(sub.events),
                "secrets": len(sub.secrets),
                "disabled_at": _ts(row["disabled_at"]) if row else None,
                "disabled_reason": row["disabled_reason"] if row else None,
                "pending": row["pending"] if row else 0,
                "failed": row["failed"] if row else 0,
                "delivered": row["delivered"] if row else 0,
            }
        )
    return out


async def enable_subscription(pool: Any, name: str, *, resume: bool = True) -> int | None:
    """Re-enables a subscription disabled by a 410; with ``resume`` its held deliveries resume.

    Returns how many deliveries were resumed, or None if no such subscription is known.
    """
    async with pool.acquire() as conn, conn.transaction():
        done = await conn.execute(
            """
            UPDATE webhook_subscriptions SET disabled_at = NULL, disabled_reason = NULL
            WHERE name = $1
            """,
            name,
        )
        if not str(done).endswith(" 1"):
            return None
        resumed = 0
        if resume:
            moved = await conn.execute(
                """
                UPDATE webhook_deliveries
                SET state = 'pending', next_attempt_at = now(), first_attempt_at = NULL
                WHERE subscription = $1 AND state = 'disabled'
                """,
                name,
            )
            resumed = int(str(moved).split()[-1])
        await conn.execute("SELECT pg_notify('callcenter_webhooks', 'enable')")
    return resumed

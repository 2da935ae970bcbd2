"""Today's callers who hung up waiting and were not reached since, and agents' call-backs.

A caller is on the list when a call of theirs ended abandoned (or timed out) in a queue today
and no later call from the same number was answered. Each call-back an agent starts is stored
against that abandoned call and the caller's open ticket, if any (``agent_callbacks``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.popup import format_number, normalize_number

_LIST = """
WITH missed AS (
  SELECT DISTINCT ON (c.caller_number)
         c.server, c.linkedid, c.caller_number, c.caller_name, c.queue, c.wait_s,
         c.started_at
  FROM calls c
  WHERE c.started_at >= $1 AND c.outcome IN ('abandoned', 'timeout')
    AND coalesce(c.caller_number, '') <> ''
  ORDER BY c.caller_number, c.started_at DESC
)
SELECT m.server, m.linkedid, m.caller_number, m.caller_name, m.queue, m.wait_s,
       to_char(m.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS started_at,
       (SELECT count(*) FROM calls x
        WHERE x.caller_number = m.caller_number AND x.started_at >= $1
          AND x.outcome IN ('abandoned', 'timeout')) AS missed_calls,
       (SELECT json_agg(json_build_object(
                 'agent', b.agent, 'result', b.result,
                 'at', to_char(b.created_at AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) ORDER BY b.created_at)
        FROM agent_callbacks b
        WHERE b.caller_number = m.caller_number AND b.created_at >= $1)
         AS callbacks
FROM missed m
WHERE NOT EXISTS (
  SELECT 1 FROM calls a
  WHERE a.caller_number = m.caller_number AND a.outcome = 'answered'
    AND a.started_at > m.started_at
)
ORDER BY m.started_at DESC
LIMIT $2
"""


def day_start(now: float, timezone: str) -> datetime:
    """The local midnight that began the day containing ``now`` (an aware datetime)."""
    local = datetime.fromtimestamp(now, ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def missed_callers(
    pool: Any, since: datetime, *, limit: int = 100, region: str = "TR"
) -> list[dict[str, Any]]:
    """Callers who hung up waiting since ``since`` and have not been answered since, newest first.

    Callers already called back by an agent stay on the list (a call-back is not proof they
    were reached) but come last, with their call-backs listed.
    """
    rows = await pool.fetch(_LIST, since, limit)
    found = []
    for row in rows:
        callbacks = json.loads(row["callbacks"]) if row["callbacks"] else []
        found.append(
            {
                "server": row["server"],
                "linkedid": row["linkedid"],
                "caller_number": row["caller_number"],
                "caller_e164": normalize_number(row["caller_number"], region),
                "caller_national": format_number(row["caller_number"], region)["national"],
                "caller_name": row["caller_name"],
                "queue": row["queue"],
                "wait_s": row["wait_s"],
                "started_at": row["started_at"],
                "missed_calls": row["missed_calls"],
                "callbacks": callbacks,
            }
        )
    found.sort(key=lambda r: bool(r["callbacks"]))  # stable: newest first within each group
    return found


async def abandoned_call(pool: Any, linkedid: str, server: str | None) -> dict[str, Any] | None:
    """One abandoned or timed-out call of the log, by linkedid."""
    row = await pool.fetchrow(
        """
        SELECT server, linkedid, caller_number, caller_name, queue FROM calls
        WHERE linkedid = $1 AND ($2::text IS NULL OR server = $2)
          AND outcome IN ('abandoned', 'timeout') AND coalesce(caller_number, '') <> ''
        ORDER BY started_at DESC LIMIT 1
        """,
        linkedid,
        server,
    )
    return dict(row) if row is not None else None


async def open_ticket_reference(pool: Any, e164: str | None) -> str | None:
    """The caller's newest open ticket, if any."""
    if not e164:
        return None
    reference: str | None = await pool.fetchval(
        """
        SELECT reference FROM tickets
        WHERE caller_number = $1 AND status IN ('open', 'in_progress')
        ORDER BY created_at DESC LIMIT 1
        """,
        e164,
    )
    return reference


async def record_callback(
    pool: Any,
    *,
    call: dict[str, Any],
    agent: str,
    interface: str,
    ticket: str | None,
    result: str,
    error: str | None = None,
) -> dict[str, Any]:
    """Stores one call-back attempt against the abandoned call (and ticket); returns it."""
    row = await pool.fetchrow(
        """
        INSERT INTO agent_callbacks (server, linkedid, caller_number, agent, interface,
                                     ticket_reference, result, error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        RETURNING id, to_char(created_at AT TIME ZONE 'UTC',
                              'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
        """,
        call["server"],
        call["linkedid"],
        call["caller_number"],
        agent,
        interface,
        ticket,
        result,
        error,
    )
    return {
        "id": row["id"],
        "server": call["server"],
        "linkedid": call["linkedid"],
        "agent": agent,
        "ticket": ticket,
        "result": result,
        "error": error,
        "at": row["at"],
    }

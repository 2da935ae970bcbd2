"""SQL for the call log: idempotent batch upserts, open-call snapshots and read helpers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from callcenter.model import AgentSession, Call, Pause, Visit, iso
from callcenter.store.serialize import call_from_json, call_to_json
from callcenter.webhooks.outbox import enqueue_call_ended

log = structlog.get_logger(__name__)

# Errors caused by the rows themselves: retrying the same batch would fail forever, so the
# writer isolates the offending record instead. Anything else (connection lost, server
# restarting, missing table before migrations) is treated as transient and retried.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
    TypeError,
    OverflowError,
)


def _ts(epoch: float | None) -> datetime | None:
    """Epoch seconds from the model as an aware UTC datetime for timestamptz."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _iso(value: datetime | None) -> str | None:
    """A timestamptz in the model's ISO format (UTC, milliseconds), as ``Call.to_dict`` has it."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: Any) -> str:
    """JSON text for a jsonb parameter; NaN is refused here rather than by the server."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False)


@dataclass(slots=True)
class Batch:
    """Records to write in one transaction; pauses and sessions carry their server name."""

    calls: list[Call] = field(default_factory=list)
    opens: list[Call] = field(default_factory=list)
    pauses: list[tuple[str, Pause]] = field(default_factory=list)
    sessions: list[tuple[str, AgentSession]] = field(default_factory=list)
    # call.ended outbox rows (msg_id, body) written in the same transaction as the calls.
    announce: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.calls) + len(self.opens) + len(self.pauses) + len(self.sessions)


_UPSERT_CALL = """
INSERT INTO calls (
    server, linkedid, uniqueid, caller_number, caller_name, dialled, queue, agent, outcome,
    hangup_by, hangup_cause, started_at, entered_at, answered_at, ended_at, wait_s, talk_s,
    hold_s, ivr_path, ivr_digits, ivr_result, ivr_vars, reconstructed, reconciled, updated_at
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
    $21, $22::text::jsonb, $23, $24, now()
)
ON CONFLICT (server, linkedid) DO UPDATE SET
    uniqueid = EXCLUDED.uniqueid, caller_number = EXCLUDED.caller_number,
    caller_name = EXCLUDED.caller_name, dialled = EXCLUDED.dialled, queue = EXCLUDED.queue,
    agent = EXCLUDED.agent, outcome = EXCLUDED.outcome, hangup_by = EXCLUDED.hangup_by,
    hangup_cause = EXCLUDED.hangup_cause, started_at = EXCLUDED.started_at,
    entered_at = EXCLUDED.entered_at, answered_at = EXCLUDED.answered_at,
    ended_at = EXCLUDED.ended_at, wait_s = EXCLUDED.wait_s, talk_s = EXCLUDED.talk_s,
    hold_s = EXCLUDED.hold_s, ivr_path = EXCLUDED.ivr_path, ivr_digits = EXCLUDED.ivr_digits,
    ivr_result = EXCLUDED.ivr_result, ivr_vars = EXCLUDED.ivr_vars,
    reconstructed = EXCLUDED.reconstructed, reconciled = EXCLUDED.reconciled, updated_at = now()
"""

_UPSERT_VISIT = """
INSERT INTO queue_visits (
    server, linkedid, seq, queue, agent, interface, outcome, hangup_by, position, entered_at,
    answered_at, left_at, ended_at, wait_s, talk_s, hold_s, ring_s, transferred_to, offers
) VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
    $19::text::jsonb
)
ON CONFLICT (server, linkedid, seq) DO UPDATE SET
    queue = EXCLUDED.queue, agent = EXCLUDED.agent, interface = EXCLUDED.interface,
    outcome = EXCLUDED.outcome, hangup_by = EXCLUDED.hangup_by, position = EXCLUDED.position,
    entered_at = EXCLUDED.entered_at, answered_at = EXCLUDED.answered_at,
    left_at = EXCLUDED.left_at, ended_at = EXCLUDED.ended_at, wait_s = EXCLUDED.wait_s,
    talk_s = EXCLUDED.talk_s, hold_s = EXCLUDED.hold_s, ring_s = EXCLUDED.ring_s,
    transferred_to = EXCLUDED.transferred_to, offers = EXCLUDED.offers
"""

# A re-submitted call with fewer visits (e.g. rebuilt after a resync) must not keep stale ones.
_TRIM_VISITS = """
DELETE FROM queue_visits v
USING unnest($1::text[], $2::text[], $3::int[]) AS k(server, linkedid, n)
WHERE v.server = k.server AND v.linkedid = k.linkedid AND v.seq > k.n
"""

_DELETE_OPEN = """
DELETE FROM open_calls o
USING unnest($1::text[], $2::text[]) AS k(server, linkedid)
WHERE o.server = k.server AND o.linkedid = k.linkedid
"""

# A snapshot arriving after the final record (late retry, replay, spill re-read) must not
# bring a finished call back to life at the next restart.
_UPSERT_OPEN = """
INSERT INTO open_calls (server, linkedid, state, updated_at)
SELECT $1::text, $2::text, $3::text::jsonb, now()
WHERE NOT EXISTS (SELECT 1 FROM calls c WHERE c.server = $1::text AND c.linkedid = $2::text)
ON CONFLICT (server, linkedid) DO UPDATE SET state = EXCLUDED.state, updated_at = now()
"""

# An end time, once known, is never overwritten by an older snapshot without one.
_UPSERT_PAUSE = """
INSERT INTO agent_pauses (
    server, interface, queue, started_at, agent, reason, ended_at, duration_s
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (server, interface, queue, started_at) DO UPDATE SET
    agent = EXCLUDED.agent, reason = EXCLUDED.reason,
    ended_at = COALESCE(EXCLUDED.ended_at, agent_pauses.ended_at),
    duration_s = COALESCE(EXCLUDED.duration_s, agent_pauses.duration_s)
"""

_UPSERT_SESSION = """
INSERT INTO agent_sessions (server, interface, queue, started_at, agent, ended_at, static)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (server, interface, queue, started_at) DO UPDATE SET
    agent = EXCLUDED.agent, static = EXCLUDED.static,
    ended_at = COALESCE(EXCLUDED.ended_at, agent_sessions.ended_at)
"""


def _offers_json(visit: Visit) -> list[dict[str, Any]]:
    """The offers of a visit as stored in ``queue_visits.offers``."""
    return [
        {
            "agent": o.agent,
            "interface": o.interface,
            "result": o.result,
            "ring_s": o.ring_s,
            "rang_at": iso(o.rang_at),
            "ended_at": iso(o.ended_at),
        }
        for o in visit.offers
    ]


def call_row(call: Call) -> tuple[Any, ...]:
    """The ``calls`` row of a finished call, in ``_UPSERT_CALL`` parameter order."""
    first = call.first_answered
    return (
        call.server,
        call.linkedid,
        call.uniqueid,
        call.caller_number,
        call.caller_name,
        call.dialled,
        call.queue,
        call.agent,
        call.outcome,
        call.hangup_by,
        call.hangup_cause,
        _ts(call.started_at),
        _ts(call.visits[0].entered_at) if call.visits else None,
        _ts(first.answered_at) if first else None,
        _ts(call.ended_at),
        call.wait_s,
        call.talk_s,
        call.hold_s,
        list(call.ivr_path),
        call.ivr_digits,
        call.ivr_result,
        _json(dict(call.ivr_vars)),
        call.reconstructed,
        call.reconciled,
    )


def visit_rows(call: Call) -> list[tuple[Any, ...]]:
    """The ``queue_visits`` rows of a call, numbered from 1 in visit order."""
    return [
        (
            call.server,
            call.linkedid,
            seq,
            v.queue,
            v.agent,
            v.interface,
            v.outcome,
            v.hangup_by,
            v.position,
            _ts(v.entered_at),
            _ts(v.answered_at),
            _ts(v.left_at),
            _ts(v.ended_at),
            v.wait_s,
            v.talk_s,
            round(v.hold_s, 3),
            v.ring_s,
            v.transferred_to,
            _json(_offers_json(v)),
        )
        for seq, v in enumerate(call.visits, start=1)
    ]


async def write_batch(conn: Any, batch: Batch) -> None:
    """Upserts a batch in one transaction; a finished call's open snapshot goes with it.

    The batch's call.ended outbox rows are written in the same transaction: a call row is
    never in the database without its event, nor the event without the row.
    """
    # Rows are built before touching the database so a malformed record fails fast.
    calls = [call_row(c) for c in batch.calls]
    visits = [row for c in batch.calls for row in visit_rows(c)]
    opens = [(c.server, c.linkedid, _json(call_to_json(c))) for c in batch.opens]
    pauses = [
        (server, p.interface, p.queue, _ts(p.started_at), p.agent, p.reason)
        + (_ts(p.ended_at), p.duration_s)
        for server, p in batch.pauses
    ]
    sessions = [
        (server, s.interface, s.queue, _ts(s.started_at), s.agent, _ts(s.ended_at), s.static)
        for server, s in batch.sessions
    ]
    async with conn.transaction():
        if calls:
            await conn.executemany(_UPSERT_CALL, calls)
            if visits:
                await conn.executemany(_UPSERT_VISIT, visits)
            servers = [c.server for c in batch.calls]
            linkedids = [c.linkedid for c in batch.calls]
            counts = [len(c.visits) for c in batch.calls]
            await conn.execute(_TRIM_VISITS, servers, linkedids, counts)
            await conn.execute(_DELETE_OPEN, servers, linkedids)
        if batch.announce:
            await enqueue_call_ended(conn, batch.announce)
        if opens:
            await conn.executemany(_UPSERT_OPEN, opens)
        if pauses:
            await conn.executemany(_UPSERT_PAUSE, pauses)
        if sessions:
            await conn.executemany(_UPSERT_SESSION, sessions)


async def save_batch(pool: Any, batch: Batch, acquire_timeout: float | None = None) -> None:
    """Writes a batch through a pooled connection (see ``write_batch``)."""
    async with pool.acquire(timeout=acquire_timeout) as conn:
        await write_batch(conn, batch)


async def load_open_calls(pool: Any, server: str | None = None) -> list[Call]:
    """Rebuilds the calls still in progress from their snapshots, oldest first."""
    rows = await pool.fetch(
        """
        SELECT server, linkedid, state::text AS state FROM open_calls
        WHERE $1::text IS NULL OR server = $1::text
        ORDER BY updated_at, server, linkedid
        """,
        server,
    )
    calls = []
    for row in rows:
        try:
            calls.append(call_from_json(json.loads(row["state"])))
        except (ValueError, TypeError, KeyError) as exc:
            # One unreadable snapshot must not stop the service from resuming the others.
            log.error(
                "open call snapshot unreadable",
                server=row["server"],
                linkedid=row["linkedid"],
                error=repr(exc),
            )
    return calls


_CALL_COLUMNS = """
    server, linkedid, uniqueid, caller_number, caller_name, dialled, queue, agent, outcome,
    hangup_by, hangup_cause, wait_s, talk_s, hold_s, entered_at, answered_at, started_at,
    ended_at, ivr_path, ivr_digits, ivr_result, ivr_vars::text AS ivr_vars, reconstructed,
    reconciled
"""


def _visit_dict(row: Any) -> dict[str, Any]:
    """A ``queue_visits`` row in the shape of ``Visit.to_dict``."""
    offers = json.loads(row["offers"])
    return {
        "queue": row["queue"],
        "agent": row["agent"],
        "outcome": row["outcome"],
        "hangup_by": row["hangup_by"],
        "wait_s": row["wait_s"],
        "talk_s": row["talk_s"],
        "hold_s": row["hold_s"],
        "ring_s": row["ring_s"],
        "entered_at": _iso(row["entered_at"]),
        "answered_at": _iso(row["answered_at"]),
        "ended_at": _iso(row["ended_at"]),
        "transferred_to": row["transferred_to"],
        "offered": [o["agent"] for o in offers],
        "offers": [
            {
                "agent": o["agent"],
                "result": o["result"],
                "ring_s": o["ring_s"],
                "rang_at": o["rang_at"],
            }
            for o in offers
        ],
    }


def _call_dict(row: Any, visits: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``calls`` row and its visits in the shape of ``Call.to_dict``."""
    d = dict(row)
    for key in ("entered_at", "answered_at", "started_at", "ended_at"):
        d[key] = _iso(d[key])
    d["ivr_path"] = list(d["ivr_path"] or [])
    d["ivr_vars"] = json.loads(d["ivr_vars"])
    d["visits"] = visits
    return d


async def _visits_of(conn: Any, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list]:
    """The visits of several calls, grouped by (server, linkedid) in visit order."""
    keys = list(keys)
    rows = await conn.fetch(
        """
        SELECT v.*, v.offers::text AS offers FROM queue_visits v
        JOIN unnest($1::text[], $2::text[]) AS k(server, linkedid)
          ON v.server = k.server AND v.linkedid = k.linkedid
        ORDER BY v.server, v.linkedid, v.seq
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    grouped: dict[tuple[str, str], list] = {k: [] for k in keys}
    for row in rows:
        grouped[(row["server"], row["linkedid"])].append(_visit_dict(row))
    return grouped


async def get_call(pool: Any, server: str, linkedid: str) -> dict[str, Any] | None:
    """The stored call in the shape of ``Call.to_dict``, or None if it is not (yet) stored."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT {_CALL_COLUMNS} FROM calls WHERE server = $1 AND linkedid = $2",
            server,
            linkedid,
        )
        if row is None:
            return None
        visits = await _visits_of(conn, [(server, linkedid)])
    return _call_dict(row, visits[(server, linkedid)])


async def recent_calls(pool: Any, caller_number: str, limit: int = 5) -> list[dict[str, Any]]:
    """The caller's latest finished calls on any server, newest first, as ``Call.to_dict``."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"""
            SELECT {_CALL_COLUMNS} FROM calls WHERE caller_number = $1
            ORDER BY started_at DESC, server, linkedid LIMIT $2
            """,
            caller_number,
            limit,
        )
        visits = await _visits_of(conn, [(r["server"], r["linkedid"]) for r in rows])
    return [_call_dict(r, visits[(r["server"], r["linkedid"])]) for r in rows]

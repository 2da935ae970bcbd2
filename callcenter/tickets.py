"""Which calls become tickets, and de-duplication: one ticket per open request.

A ticket is opened for an agent's "request" disposition, for an IVR self-service request and,
if configured, for an abandoned call that waited long enough (a call-back request). A request
with the number and category of a ticket that is still open and younger than the de-duplication
window is attached to that ticket instead. Every change writes its webhook (``ticket.created``,
``ticket.updated``) to the outbox in the same transaction.

For the IVR::

    ticket = await open_ticket(pool, category="masa-sandalye", caller_number="05321234567",
                               channel="ivr", linkedid=linkedid, settings=settings)
    ticket.reference        # "2026-004217": tell the caller
    await ticket_status(pool, "2026004217")  # "open", "in_progress", "resolved", "rejected"
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from callcenter.config import Settings
from callcenter.model import iso
from callcenter.popup import normalize_number
from callcenter.webhooks.outbox import enqueue

CHANNELS = ("phone", "ivr", "callback", "api")
STATUSES = ("open", "in_progress", "resolved", "rejected")
OPEN_STATUSES = ("open", "in_progress")
# Where a status may go next; a closed request can only be reopened.
TRANSITIONS = {
    "open": {"in_progress", "resolved", "rejected"},
    "in_progress": {"open", "resolved", "rejected"},
    "resolved": {"open"},
    "rejected": {"open"},
}
DEFAULT_DEDUPE_DAYS = 30.0
# References count per year of the call center's local calendar (Türkiye is UTC+3 all year).
REFERENCE_TZ = timezone(timedelta(hours=3))


class TicketError(Exception):
    """A ticket request that cannot be done; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Ticket:
    """A citizen's request and the calls that asked for it."""

    id: int
    reference: str
    category: str
    status: str
    channel: str
    caller_number: str | None
    caller_name: str | None
    note: str
    fields: dict[str, Any]
    agent: str | None
    external_id: str | None
    requests: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    survey_candidate_at: datetime | None
    calls: list[dict[str, Any]] = field(default_factory=list)
    merged: bool = False  # this request joined an earlier open ticket

    def to_dict(self) -> dict[str, Any]:
        """The ticket as the API and the webhooks show it."""
        return {
            "reference": self.reference,
            "category": self.category,
            "status": self.status,
            "channel": self.channel,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "note": self.note,
            "fields": self.fields,
            "agent": self.agent,
            "external_id": self.external_id,
            "requests": self.requests,
            "created_at": _stamp(self.created_at),
            "updated_at": _stamp(self.updated_at),
            "closed_at": _stamp(self.closed_at),
            "survey_candidate": self.survey_candidate_at is not None,
            "calls": self.calls,
        }


def _stamp(value: datetime | None) -> str | None:
    return iso(value.timestamp()) if value is not None else None


_COLUMNS = """
id, reference, category, status, channel, caller_number, caller_name, note, fields::text AS fields,
agent, external_id, requests, created_at, updated_at, closed_at, survey_candidate_at
"""


@contextlib.asynccontextmanager
async def in_transaction(db: Any) -> AsyncIterator[Any]:
    """A transaction on a pool (a pooled connection) or on a connection (a savepoint if nested)."""
    if hasattr(db, "acquire"):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


async def _load(conn: Any, where: str, *args: Any, lock: bool = False) -> Ticket | None:
    """One ticket with its calls, selected by a WHERE clause."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM tickets WHERE {where} {'FOR UPDATE' if lock else ''}", *args
    )
    if row is None:
        return None
    data = dict(row)
    data["fields"] = json.loads(data["fields"])
    calls = await conn.fetch(
        """
        SELECT server, linkedid, channel, attached_at FROM ticket_calls
        WHERE ticket_id = $1 ORDER BY attached_at, linkedid
        """,
        data["id"],
    )
    data["calls"] = [{**dict(c), "attached_at": iso(c["attached_at"].timestamp())} for c in calls]
    return Ticket(**data)


def parse_reference(text: str) -> str | None:
    """A reference as stored (``2026-004217``) from what a citizen keys or says."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 5:
        return None
    return f"{digits[:4]}-{int(digits[4:]):06d}"


async def _next_reference(conn: Any) -> str:
    """The next public reference of this year; the counter row serialises concurrent tickets."""
    year = datetime.now(REFERENCE_TZ).year
    seq = await conn.fetchval(
        """
        INSERT INTO ticket_sequences (year, last_value) VALUES ($1, 1)
        ON CONFLICT (year) DO UPDATE SET last_value = ticket_sequences.last_value + 1
        RETURNING last_value
        """,
        year,
    )
    return f"{year}-{seq:06d}"


async def _attach_call(conn: Any, ticket_id: int, server: str, linkedid: str, channel: str) -> bool:
    """Attaches a call to a ticket; False if it was already attached."""
    done = await conn.execute(
        """
        INSERT INTO ticket_calls (ticket_id, server, linkedid, channel) VALUES ($1, $2, $3, $4)
        ON CONFLICT DO NOTHING
        """,
        ticket_id,
        server,
        linkedid,
        channel,
    )
    return str(done).endswith(" 1")


async def _event(
    conn: Any, ticket_id: int, kind: str, source: str, status: str | None = None, note: str = ""
) -> None:
    await conn.execute(
        """
        INSERT INTO ticket_events (ticket_id, kind, status, source, note)
        VALUES ($1, $2, $3, $4, $5)
        """,
        ticket_id,
        kind,
        status,
        source,
        note,
    )


async def open_ticket(
    pool: Any,
    *,
    category: str,
    caller_number: str | None,
    channel: str,
    linkedid: str | None = None,
    note: str = "",
    fields: dict[str, Any] | None = None,
    server: str | None = None,
    caller_name: str | None = None,
    agent: str | None = None,
    settings: Settings | None = None,
) -> Ticket:
    """Opens a ticket for a request, or attaches the request to the open ticket it repeats.

    ``pool`` may also be a connection (the ticket is then written in its transaction). The
    de-duplication window and the phone region come from ``settings`` (defaults otherwise).
    """
    if channel not in CHANNELS:
        raise TicketError("bad_channel", f"channel must be one of {', '.join(CHANNELS)}")
    if not category.strip():
        raise TicketError("bad_category", "a ticket needs a category")
    region = settings.phone_region if settings else "TR"
    window = settings.ticket_dedupe_days if settings else DEFAULT_DEDUPE_DAYS
    number = normalize_number(caller_number, region)
    server = server if server is not None else (settings.asterisk[0].name if settings else "")
    source = agent or channel
    async with in_transaction(pool) as conn:
        if linkedid:
            # The same call asking again for the same thing (a retried request) changes nothing.
            again = await _load(
                conn,
                "category = $1 AND id IN (SELECT ticket_id FROM ticket_calls "
                "WHERE server = $2 AND linkedid = $3)",
                category,
                server,
                linkedid,
            )
            if again is not None:
                again.merged = True
                return again
        earlier = None
        if number:
            # Two requests of one caller at the same moment must not both open a ticket.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))", f"ticket:{number}:{category}"
            )
            earlier = await _load(
                conn,
                """caller_number = $1 AND category = $2 AND status IN ('open', 'in_progress')
                AND created_at >= now() - make_interval(secs => $3)
                ORDER BY created_at DESC LIMIT 1""",
                number,
                category,
                window * 86400.0,
                lock=True,
            )
        if earlier is not None:
            return await _merge(conn, earlier, server, linkedid, channel, note, source)
        reference = await _next_reference(conn)
        ticket_id = await conn.fetchval(
            """
            INSERT INTO tickets (reference, category, channel, caller_number, caller_name, note,
                                 fields, agent)
            VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8) RETURNING id
            """,
            reference,
            category,
            channel,
            number,
            caller_name,
            note,
            json.dumps(fields or {}, ensure_ascii=False),
            agent,
        )
        if linkedid:
            await _attach_call(conn, ticket_id, server, linkedid, channel)
        await _event(conn, ticket_id, "created", source, "open", note)
        ticket = await _load(conn, "id = $1", ticket_id)
        assert ticket is not None
        await enqueue(conn, "ticket.created", {"ticket": ticket.to_dict()})
        return ticket


async def _merge(
    conn: Any,
    ticket: Ticket,
    server: str,
    linkedid: str | None,
    channel: str,
    note: str,
    source: str,
) -> Ticket:
    """Attaches a repeated request to its open ticket and announces it."""
    await conn.execute(
        "UPDATE tickets SET requests = requests + 1, updated_at = now() WHERE id = $1", ticket.id
    )
    if linkedid:
        await _attach_call(conn, ticket.id, server, linkedid, channel)
    await _event(conn, ticket.id, "attached", source, ticket.status, note)
    merged = await _load(conn, "id = $1", ticket.id)
    assert merged is not None
    merged.merged = True
    change = {"change": "request_attached", "channel": channel, "linkedid": linkedid, "note": note}
    await enqueue(conn, "ticket.updated", {"ticket": merged.to_dict(), **change})
    return merged


async def get_ticket(pool: Any, reference: str) -> Ticket | None:
    """The ticket with this public reference (any spelling of it), or None."""
    ref = parse_reference(reference)
    if ref is None:
        return None
    async with pool.acquire() as conn:
        return await _load(conn, "reference = $1", ref)


async def ticket_status(pool: Any, reference: str) -> str | None:
    """The status of a ticket by its reference (for the IVR's status query), or None."""
    ref = parse_reference(reference)
    if ref is None:
        return None
    status: str | None = await pool.fetchval("SELECT status FROM tickets WHERE reference = $1", ref)
    return status


async def set_status(
    pool: Any,
    reference: str,
    status: str,
    *,
    source: str,
    note: str = "",
    external_id: str | None = None,
) -> Ticket:
    """Moves a ticket to a new status; a resolved ticket becomes a feedback-survey candidate."""
    if status not in STATUSES:
        raise TicketError("bad_status", f"status must be one of {', '.join(STATUSES)}")
    ref = parse_reference(reference)
    if ref is None:
        raise TicketError("not_found", f"no ticket {reference!r}")
    async with in_transaction(pool) as conn:
        ticket = await _load(conn, "reference = $1", ref, lock=True)
        if ticket is None:
            raise TicketError("not_found", f"no ticket {reference!r}")
        if status == ticket.status:
            return ticket
        if status not in TRANSITIONS[ticket.status]:
            raise TicketError("bad_transition", f"a {ticket.status} ticket cannot become {status}")
        await conn.execute(
            """
            UPDATE tickets SET status = $2, updated_at = now(),
                external_id = COALESCE($3, external_id),
                closed_at = CASE WHEN $2 IN ('resolved', 'rejected') THEN now() END,
                survey_candidate_at = CASE
                    WHEN $2 = 'resolved' AND caller_number IS NOT NULL THEN now()
                    WHEN $2 = 'open' THEN NULL ELSE survey_candidate_at END
            WHERE id = $1
            """,
            ticket.id,
            status,
            external_id,
        )
        await _event(conn, ticket.id, "status", source, status, note)
        changed = await _load(conn, "id = $1", ticket.id)
        assert changed is not None
        change = {"change": "status", "previous_status": ticket.status, "note": note}
        await enqueue(conn, "ticket.updated", {"ticket": changed.to_dict(), **change})
        return changed


async def list_tickets(
    pool: Any,
    *,
    status: str | None = None,
    caller_number: str | None = None,
    category: str | None = None,
    region: str = "TR",
    before_id: int | None = None,
    limit: int = 50,
) -> list[Ticket]:
    """Tickets, newest first, filtered by status, number or category."""
    number = normalize_number(caller_number, region) if caller_number else None
    async with pool.acquire() as conn:
        ids = await conn.fetch(
            """
            SELECT id FROM tickets
            WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR caller_number = $2)
              AND ($3::text IS NULL OR category = $3) AND ($4::bigint IS NULL OR id < $4)
            ORDER BY id DESC LIMIT $5
            """,
            status,
            number,
            category,
            before_id,
            limit,
        )
        found = [await _load(conn, "id = $1", r["id"]) for r in ids]
    return [t for t in found if t is not None]


async def survey_candidates(pool: Any, limit: int = 100) -> list[dict[str, Any]]:
    """Resolved tickets whose caller may be asked for feedback, oldest first."""
    rows = await pool.fetch(
        """
        SELECT reference, category, caller_number, caller_name, survey_candidate_at
        FROM tickets WHERE survey_candidate_at IS NOT NULL AND status = 'resolved'
        ORDER BY survey_candidate_at LIMIT $1
        """,
        limit,
    )
    return [
        {**dict(r), "survey_candidate_at": iso(r["survey_candidate_at"].timestamp())} for r in rows
    ]

"""How a call ends up marked: the agent's disposition, and optional call-back tickets."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from callcenter.categories import categories
from callcenter.config import Settings
from callcenter.model import Call, CallEnded, Effect, iso
from callcenter.tickets import TicketError, in_transaction, open_ticket

log = structlog.get_logger(__name__)

KINDS = ("info", "request")


def _check_category(category: str | None, kind: str, settings: Settings | None) -> None:
    """A request needs a configured category; information given may name one."""
    known = {c.code for c in categories(settings)}
    if kind == "request" and not category:
        raise TicketError("bad_category", "a request needs a category")
    if category and category not in known:
        raise TicketError("bad_category", f"unknown category {category!r}")


async def record_disposition(
    pool: Any,
    *,
    server: str,
    linkedid: str,
    agent: str,
    kind: str,
    category: str | None = None,
    note: str = "",
    caller_number: str | None = None,
    caller_name: str | None = None,
    fields: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Marks a call as information given or a request (which opens or joins a ticket).

    Idempotent per (call, agent): a repeated submission returns the first one, flagged
    ``duplicate``, and opens nothing.
    """
    if kind not in KINDS:
        raise TicketError("bad_kind", "kind must be 'info' or 'request'")
    _check_category(category, kind, settings)
    async with in_transaction(pool) as conn:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"disposition:{server}:{linkedid}:{agent}"
        )
        existing = await conn.fetchrow(
            """
            SELECT d.*, t.reference FROM call_dispositions d
            LEFT JOIN tickets t ON t.id = d.ticket_id
            WHERE d.server = $1 AND d.linkedid = $2 AND d.agent = $3
            """,
            server,
            linkedid,
            agent,
        )
        if existing is not None:
            return {**_shape(existing, existing["reference"]), "duplicate": True}
        ticket = None
        if kind == "request":
            assert category is not None
            ticket = await open_ticket(
                conn,
                category=category,
                caller_number=caller_number,
                channel="phone",
                linkedid=linkedid,
                server=server,
                note=note,
                fields=fields,
                caller_name=caller_name,
                agent=agent or None,
                settings=settings,
            )
        row = await conn.fetchrow(
            """
            INSERT INTO call_dispositions (server, linkedid, agent, kind, category, note, ticket_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *
            """,
            server,
            linkedid,
            agent,
            kind,
            category,
            note,
            ticket.id if ticket else None,
        )
    result = {**_shape(row, ticket.reference if ticket else None), "duplicate": False}
    result["ticket"] = ticket.to_dict() if ticket else None
    if ticket is not None:
        result["ticket"]["merged"] = ticket.merged
    return result


def _shape(row: Any, reference: str | None) -> dict[str, Any]:
    """A disposition row as the API returns it."""
    return {
        "server": row["server"],
        "linkedid": row["linkedid"],
        "agent": row["agent"],
        "kind": row["kind"],
        "category": row["category"],
        "note": row["note"],
        "created_at": iso(row["created_at"].timestamp()),
        "reference": reference,
    }


class CallbackTickets:
    """Subscriber that opens a call-back ticket for callers who gave up after a long wait.

    Off unless ``callback_tickets`` is set. Idempotent per call: a replayed or resumed call
    finds its ticket instead of opening another.
    """

    def __init__(self, pool: Callable[[], Any], settings: Settings, limit: int = 10_000) -> None:
        self._pool = pool
        self.settings = settings
        self._pending: deque[Call] = deque(maxlen=limit)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.opened = 0

    def wanted(self, call: Call) -> bool:
        """Whether a finished call is an abandon long enough to call the citizen back."""
        wait = call.wait_s
        return (
            self.settings.callback_tickets
            and call.outcome == "abandoned"
            and bool(call.caller_number)
            and wait is not None
            and wait >= self.settings.callback_min_wait_s
        )

    def __call__(self, effects: list[Effect]) -> None:
        """Queues qualifying calls; never blocks."""
        for effect in effects:
            if isinstance(effect, CallEnded) and self.wanted(effect.call):
                self._pending.append(effect.call)
                self._wake.set()

    def start(self) -> None:
        """Starts the background task (only when call-back tickets are enabled)."""
        if self._task is None and self.settings.callback_tickets:
            self._task = asyncio.create_task(self._run(), name="callback-tickets")

    async def stop(self) -> None:
        """Stops the task; calls not yet turned into tickets are logged."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # our own cancellation still propagates
            self._task = None
        if self._pending:
            log.warning("callback_tickets_not_opened", count=len(self._pending))

    async def flush(self) -> None:
        """Waits until every queued call has its ticket (bound it with a timeout)."""
        while self._pending:
            self._wake.set()
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        delay = 0.5
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                call = self._pending[0]
                try:
                    await self.open_for(call)
                except Exception as exc:
                    log.warning("callback_ticket_retry", linkedid=call.linkedid, error=repr(exc))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                delay = 0.5
                self._pending.popleft()

    async def open_for(self, call: Call) -> None:
        """Opens (or finds) the call-back ticket of one abandoned call."""
        wait = round(call.wait_s or 0.0)
        await open_ticket(
            self._pool(),
            category=self.settings.callback_category,
            caller_number=call.caller_number,
            channel="callback",
            linkedid=call.linkedid,
            server=call.server,
            caller_name=call.caller_name,
            note=f"Arayan {call.queue or ''} kuyruğunda {wait} sn bekledikten sonra kapattı.",
            fields={"queue": call.queue, "wait_s": call.wait_s},
            settings=self.settings,
        )
        self.opened += 1

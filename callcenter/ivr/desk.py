"""What the IVR's flows need from the rest of the service, as a small Protocol, and two desks.

``PgTicketDesk`` is the real one: tickets through ``callcenter.tickets`` and surveys through
``callcenter.ivr.surveys`` (answer + ``survey.completed`` webhook in one transaction).
``MemoryDesk`` keeps everything in memory, for the demo and tests that need no database.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from callcenter.ivr.steps import SurveyAnswer


class TicketDesk(Protocol):
    """Tickets and surveys as the self-service flows use them."""

    async def open_ticket(
        self,
        *,
        category: str,
        caller_number: str | None,
        channel: str,
        linkedid: str | None,
        note: str,
        fields: Mapping[str, str],
    ) -> str:
        """Opens a ticket and returns its public reference (2026-004217)."""
        ...

    async def ticket_status(self, reference: str) -> str | None:
        """The status of a ticket, or None if there is no such ticket."""
        ...

    async def record_survey(self, answer: SurveyAnswer) -> None:
        """Stores survey answers and announces them (survey.completed)."""
        ...

    async def callback_reached(self, ticket_id: int) -> None:
        """A called-back citizen picked up: the call-back is done."""
        ...


class PgTicketDesk:
    """The desk over PostgreSQL and the tickets module."""

    def __init__(self, pool: Any, settings: Any = None) -> None:
        self.pool = pool
        self.settings = settings  # region, de-duplication window, Asterisk server name

    async def open_ticket(
        self,
        *,
        category: str,
        caller_number: str | None,
        channel: str,
        linkedid: str | None,
        note: str,
        fields: Mapping[str, str],
    ) -> str:
        """Opens the ticket with ``callcenter.tickets.open_ticket``."""
        from callcenter import tickets  # imported late: the tickets module is optional here

        ticket = await tickets.open_ticket(
            self.pool,
            category=category,
            caller_number=caller_number,
            channel=channel,
            linkedid=linkedid,
            note=note,
            fields=dict(fields),
            settings=self.settings,
        )
        return str(ticket.reference)

    async def ticket_status(self, reference: str) -> str | None:
        """Reads the status with ``callcenter.tickets.ticket_status``."""
        from callcenter import tickets

        status = await tickets.ticket_status(self.pool, reference)
        return None if status is None else str(status)

    async def record_survey(self, answer: SurveyAnswer) -> None:
        """Stores the answers and their webhook in one transaction."""
        from callcenter.ivr.surveys import store_survey

        async with self.pool.acquire() as conn, conn.transaction():
            await store_survey(conn, answer)

    async def callback_reached(self, ticket_id: int) -> None:
        """Marks the call-back reached so the dialer does not call again."""
        from callcenter.ivr.surveys import mark_reached

        await mark_reached(self.pool, ticket_id)


@dataclass
class MemoryTicket:
    """A ticket as MemoryDesk keeps it."""

    reference: str
    category: str
    caller_number: str | None
    channel: str
    linkedid: str | None
    note: str
    fields: dict[str, str]
    status: str = "open"


@dataclass
class MemoryDesk:
    """A desk in memory: numbered tickets, settable statuses, a list of surveys."""

    year: int = 2026
    tickets: dict[str, MemoryTicket] = field(default_factory=dict)
    surveys: list[SurveyAnswer] = field(default_factory=list)
    reached: list[int] = field(default_factory=list)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def open_ticket(
        self,
        *,
        category: str,
        caller_number: str | None,
        channel: str,
        linkedid: str | None,
        note: str,
        fields: Mapping[str, str],
    ) -> str:
        """Opens a ticket numbered YEAR-NNNNNN."""
        reference = f"{self.year}-{next(self._numbers):06d}"
        self.tickets[reference] = MemoryTicket(
            reference, category, caller_number, channel, linkedid, note, dict(fields)
        )
        return reference

    async def ticket_status(self, reference: str) -> str | None:
        """The ticket's status, or None."""
        ticket = self.tickets.get(reference)
        return None if ticket is None else ticket.status

    async def record_survey(self, answer: SurveyAnswer) -> None:
        """Keeps the answers (once per call and kind)."""
        if answer.linkedid and any(
            s.linkedid == answer.linkedid and s.kind == answer.kind for s in self.surveys
        ):
            return
        self.surveys.append(answer)

    async def callback_reached(self, ticket_id: int) -> None:
        """Notes the call-back as reached."""
        self.reached.append(ticket_id)

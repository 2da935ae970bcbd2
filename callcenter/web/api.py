"""The JSON API: dispositions, tickets, webhooks, and the OpenAPI document that describes it.

Every endpoint checks the caller's role (``callcenter.web.auth``) and answers errors as
``{"error": {"code", "message"}}``; ``GET /api/openapi.json`` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from callcenter.categories import categories
from callcenter.dispositions import record_disposition
from callcenter.model import Call
from callcenter.tickets import (
    CHANNELS,
    STATUSES,
    TicketError,
    get_ticket,
    list_tickets,
    open_ticket,
    set_status,
    survey_candidates,
)
from callcenter.web import api_webhooks
from callcenter.web.access import AgentScope, log_access, read_access_log
from callcenter.web.api_common import body_of, int_query, json_errors, ok, text_field, ticket_error
from callcenter.web.auth import json_error, require
from callcenter.web.openapi import document
from callcenter.web.server import SERVICE


@dataclass(slots=True)
class CallInfo:
    """What a disposition needs to know about a call."""

    server: str
    linkedid: str
    caller_number: str | None
    caller_name: str | None
    agents: set[str] = field(default_factory=set)  # who answered: member names, interfaces


def _from_call(call: Call) -> CallInfo:
    """The call's identity and the agents who answered it (member names and interfaces)."""
    agents = {a for v in call.visits if v.answered_at for a in (v.agent, v.interface) if a}
    return CallInfo(call.server, call.linkedid, call.caller_number, call.caller_name, agents)


async def find_call(request: web.Request, linkedid: str, server: str | None) -> CallInfo | None:
    """A call in progress, just ended, or in the call log."""
    service = request.app[SERVICE]
    from callcenter.web.agent import SCREENPOP, find_live

    call: Call | None
    if request.app.get(SCREENPOP) is not None:
        call = find_live(request, linkedid, server)
    else:
        names = [server] if server else [s.name for s in service.settings.asterisk]
        call = next((c for n in names if (c := service.tracker.calls.get((n, linkedid)))), None)
    if call is not None:
        return _from_call(call)
    row = await service.pool.fetchrow(
        """
        SELECT c.server, c.linkedid, c.caller_number, c.caller_name,
               array_remove(array_agg(v.agent) || array_agg(v.interface), NULL) AS agents
        FROM calls c LEFT JOIN queue_visits v ON v.server = c.server AND v.linkedid = c.linkedid
        WHERE c.linkedid = $1 AND ($2::text IS NULL OR c.server = $2)
        GROUP BY c.server, c.linkedid ORDER BY c.started_at DESC LIMIT 1
        """,
        linkedid,
        server,
    )
    if row is None:
        return None
    return CallInfo(
        row["server"], row["linkedid"], row["caller_number"], row["caller_name"], set(row["agents"])
    )


async def disposition(request: web.Request) -> web.Response:
    """Marks a call as information given or a request (which opens or joins a ticket)."""
    principal = await require(request, "agent", "supervisor", "admin", "integration")
    linkedid = request.match_info["linkedid"]
    data = await body_of(request)
    kind = text_field(data, "kind", required=True)
    server = text_field(data, "server") or request.query.get("server") or None
    call = await find_call(request, linkedid, server)
    if principal.role == "agent":
        agent = principal.agent or principal.interface or principal.name
        if call is None:
            raise json_error(404, "not_found", f"no call {linkedid!r}")
        if not {principal.agent, principal.interface} & call.agents:
            raise json_error(403, "forbidden", "agents may only close their own calls")
    else:
        agent = text_field(data, "agent") or principal.name
    number = call.caller_number if call else (text_field(data, "caller_number") or None)
    if call is None and number is None:
        raise json_error(404, "not_found", f"no call {linkedid!r}; pass caller_number to record it")
    settings = request.app[SERVICE].settings
    try:
        result = await record_disposition(
            request.app[SERVICE].pool,
            server=call.server if call else (server or settings.asterisk[0].name),
            linkedid=linkedid,
            agent=agent,
            kind=kind,
            category=text_field(data, "category") or None,
            note=text_field(data, "note", limit=4000),
            caller_number=number,
            caller_name=(call.caller_name if call else None) or text_field(data, "caller_name"),
            settings=settings,
        )
    except TicketError as exc:
        raise ticket_error(exc) from None
    return ok(result, 200 if result["duplicate"] else 201)


async def me(request: web.Request) -> web.Response:
    """Who the token belongs to."""
    return ok((await require(request)).to_dict())


async def list_categories(request: web.Request) -> web.Response:
    """The ticket categories, with Turkish and English names."""
    await require(request)
    return ok([c.to_dict() for c in categories(request.app[SERVICE].settings)])


async def tickets_index(request: web.Request) -> web.Response:
    """Tickets, newest first; filters: status, number, category; paging with ``before``."""
    principal = await require(request, "supervisor", "admin", "integration")
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise json_error(400, "bad_query", f"status must be one of {', '.join(STATUSES)}")
    found = await list_tickets(
        request.app[SERVICE].pool,
        status=status,
        caller_number=request.query.get("number") or None,
        category=request.query.get("category") or None,
        region=request.app[SERVICE].settings.phone_region,
        before_id=int_query(request, "before", None, top=2**62),
        limit=int_query(request, "limit", 50) or 50,
    )
    await log_access(request, principal, "tickets.list", request.query_string)
    return ok({"tickets": [t.to_dict() for t in found]})


async def ticket_create(request: web.Request) -> web.Response:
    """Opens a ticket (or joins the open one it repeats) for a CRM or a script."""
    principal = await require(request, "supervisor", "admin", "integration")
    data = await body_of(request)
    settings = request.app[SERVICE].settings
    category = text_field(data, "category", required=True)
    if category not in {c.code for c in categories(settings)}:
        raise json_error(400, "bad_category", f"unknown category {category!r}")
    channel = text_field(data, "channel") or "api"
    if channel not in CHANNELS:
        raise json_error(400, "bad_channel", f"channel must be one of {', '.join(CHANNELS)}")
    fields = data.get("fields") or {}
    if not isinstance(fields, dict):
        raise json_error(400, "bad_field", "field 'fields' must be an object")
    try:
        ticket = await open_ticket(
            request.app[SERVICE].pool,
            category=category,
            caller_number=text_field(data, "caller_number") or None,
            channel=channel,
            linkedid=text_field(data, "linkedid") or None,
            server=text_field(data, "server") or None,
            note=text_field(data, "note", limit=4000),
            caller_name=text_field(data, "caller_name") or None,
            fields=fields,
            agent=principal.name,
            settings=settings,
        )
    except TicketError as exc:
        raise ticket_error(exc) from None
    return ok({**ticket.to_dict(), "merged": ticket.merged}, 200 if ticket.merged else 201)


_TICKET_DENIED = "agents read only the tickets of the calls at their position and their recent ones"


async def ticket_show(request: web.Request) -> web.Response:
    """One ticket with its calls; an agent only a ticket of its own calls (else 403)."""
    principal = await require(request, "agent", "supervisor", "admin", "integration")
    reference = request.match_info["reference"]
    ticket = await get_ticket(request.app[SERVICE].pool, reference)
    shown = ticket.to_dict() if ticket is not None else None
    if principal.role == "agent":
        # Not found and not yours answer alike: sequential references cannot be enumerated.
        if shown is None or not await AgentScope(request, principal).may_see_ticket(shown):
            await log_access(
                request, principal, "ticket.read", reference, allowed=False, status=403
            )
            raise json_error(403, "forbidden", _TICKET_DENIED)
    if shown is None:
        await log_access(request, principal, "ticket.read", reference, status=404)
        raise json_error(404, "not_found", f"no ticket {reference!r}")
    await log_access(request, principal, "ticket.read", reference)
    return ok(shown)


async def access_log(request: web.Request) -> web.Response:
    """The access log (who read which personal data), newest first; supervisors and admins."""
    principal = await require(request, "supervisor", "admin")
    rows = await read_access_log(
        request.app[SERVICE].pool,
        principal=request.query.get("principal") or None,
        action=request.query.get("action") or None,
        denied_only=request.query.get("denied") in ("1", "true"),
        before_id=int_query(request, "before", None, top=2**62),
        limit=int_query(request, "limit", 100, top=1000) or 100,
    )
    await log_access(request, principal, "access_log.read")
    return ok({"entries": rows})


async def ticket_set_status(request: web.Request) -> web.Response:
    """Moves a ticket to another status (open, in_progress, resolved, rejected)."""
    principal = await require(request, "supervisor", "admin", "integration")
    data = await body_of(request)
    try:
        ticket = await set_status(
            request.app[SERVICE].pool,
            request.match_info["reference"],
            text_field(data, "status", required=True),
            source=principal.name,
            note=text_field(data, "note", limit=4000),
            external_id=text_field(data, "external_id") or None,
        )
    except TicketError as exc:
        raise ticket_error(exc) from None
    return ok(ticket.to_dict())


async def surveys(request: web.Request) -> web.Response:
    """Resolved tickets whose caller may be asked for feedback."""
    principal = await require(request, "admin", "integration")
    limit = int_query(request, "limit", 100) or 100
    found = await survey_candidates(request.app[SERVICE].pool, limit)
    await log_access(request, principal, "surveys.candidates", f"limit={limit}")
    return ok({"candidates": found})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 document of this API (public)."""
    return ok(document())


def setup(app: web.Application) -> None:
    """Adds the API routes, the JSON error middleware and the webhook machinery."""
    app.middlewares.append(json_errors)
    r = app.router
    r.add_get("/api/openapi.json", openapi)
    r.add_get("/api/me", me)
    r.add_get("/api/categories", list_categories)
    r.add_post("/api/calls/{linkedid}/disposition", disposition)
    r.add_get("/api/tickets", tickets_index)
    r.add_post("/api/tickets", ticket_create)
    r.add_get("/api/tickets/{reference}", ticket_show)
    r.add_post("/api/tickets/{reference}/status", ticket_set_status)
    r.add_get("/api/surveys/candidates", surveys)
    r.add_get("/api/access-log", access_log)
    api_webhooks.setup(app)

"""The agent's desk over HTTP: log-in to a cookie session, and the agent's own AMI controls.

Pages: ``POST /agent/session`` (a token in, a session cookie out), ``GET /agent/login?code=``
(a one-time link, exchanged for the cookie and a redirect to ``/agent``), ``POST
/agent/logout``. API (also for softphones and CRMs, listed in ``/api/openapi.json``):
``/api/agent/desk`` (state), ``…/pause``, ``…/unpause``, ``…/queues/{queue}/join|leave``,
``…/wrapup/end``, ``…/callbacks`` and ``…/callbacks/{linkedid}/call``.

Agent tokens act on their own seat; supervisor, admin and integration tokens name the agent
with ``?agent=`` (member name) or ``?interface=``. Every control is an AMI action; its effect
comes back as QueueMember* events through the tracker, which is what the desk, the wallboard
and Prometheus show. The desk also pauses an agent who has it open for after-call work
(reason ``wrapup``) when their call ends, for ``agent_wrapup_seconds`` or until they end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from callcenter import agentdesk
from callcenter.agent_callbacks import (
    abandoned_call,
    day_start,
    missed_callers,
    open_ticket_reference,
    record_callback,
)
from callcenter.logs import mask_number
from callcenter.model import Effect, Member, MemberChanged, VisitEnded
from callcenter.popup import normalize_number
from callcenter.screenpop import topics_for
from callcenter.web.api_common import body_of, int_query, ok, text_field
from callcenter.web.auth import (
    SESSION_COOKIE,
    Principal,
    create_session,
    end_session,
    json_error,
    lookup,
    redeem_login_link,
    require,
)
from callcenter.web.hub import Hub
from callcenter.web.server import SERVICE

log = structlog.get_logger(__name__)

_ACTORS = ("agent", "supervisor", "admin", "integration")


@dataclass(frozen=True, slots=True)
class Seat:
    """Whose controls these are: the queue-member identity on one Asterisk server."""

    server: str
    agent: str | None
    interface: str


# ---- sessions --------------------------------------------------------------------------


def _set_cookie(request: web.Request, response: web.StreamResponse, secret: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    hours = request.app[SERVICE].settings.session_hours
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(hours * 3600),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


async def session_open(request: web.Request) -> web.Response:
    """Exchanges an API token (the login form) for a session cookie."""
    data = await body_of(request)
    token = text_field(data, "token", required=True, limit=400)
    pool = request.app[SERVICE].pool
    principal = await lookup(pool, token)
    if principal is None:
        raise json_error(401, "unauthorized", "the API token is unknown or revoked")
    secret = await create_session(
        pool, principal.token_id, request.app[SERVICE].settings.session_hours
    )
    response = ok(principal.to_dict(), 201)
    _set_cookie(request, response, secret)
    return response


async def login_link(request: web.Request) -> web.StreamResponse:
    """A one-time login link: sets the session cookie and goes to the agent page."""
    code = request.query.get("code", "")
    service = request.app[SERVICE]
    token_id = await redeem_login_link(service.pool, code) if code else None
    if token_id is None:
        # The page says what happened and how to get a new link (no code in the address).
        raise web.HTTPSeeOther("/agent?login=expired")
    secret = await create_session(service.pool, token_id, service.settings.session_hours)
    response = web.HTTPSeeOther("/agent")
    _set_cookie(request, response, secret)
    log.info("login_link_used", token_id=token_id)
    raise response


async def logout(request: web.Request) -> web.Response:
    """Ends the browser session and clears its cookie."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await end_session(request.app[SERVICE].pool, secret)
    response = ok({"logged_out": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# ---- whose seat ------------------------------------------------------------------------


def _members_of(service: Any, seat: Seat) -> list[Member]:
    return [
        m
        for (server, _, iface), m in service.tracker.members.items()
        if server == seat.server and iface == seat.interface
    ]


async def _seat(request: web.Request, *, acting: bool = True) -> tuple[Principal, Seat]:
    """The caller and the seat they act on (their own, or the one named by a supervisor).

    A seat needs an interface to act on; only looking (``acting=False``) does without one.
    """
    principal = await require(request, *_ACTORS)
    if principal.role == "agent":
        agent, interface = principal.agent, principal.interface
    else:
        agent = request.query.get("agent") or None
        interface = request.query.get("interface") or None
        if not (agent or interface):
            raise json_error(400, "bad_request", "name the agent: ?agent= or ?interface=")
    service = request.app[SERVICE]
    members = service.tracker.members
    found = next(
        (
            (server, m)
            for (server, _, iface), m in members.items()
            if (interface and iface == interface) or (not interface and m.agent == agent)
        ),
        None,
    )
    if found is not None:
        server, member = found
        return principal, Seat(server, agent or member.agent, member.interface)
    if not interface and not acting:
        return principal, Seat(service.settings.asterisk[0].name, agent, "")
    if not interface:
        raise json_error(
            409,
            "no_interface",
            f"agent {agent!r} is in no queue and the token names no interface: create the "
            "agent's token with --interface",
        )
    return principal, Seat(service.settings.asterisk[0].name, agent, interface)


async def _ami(request: web.Request, seat: Seat, fields: dict[str, Any]) -> dict[str, str]:
    """Sends an AMI action for a seat; 409 with Asterisk's refusal, or when the link is down.

    A link that is down is a 409 (``pbx_unavailable``), not a 5xx: the request is sound, the
    PBX's present state refuses it, and the client may retry.
    """
    from callcenter.ami import AmiError

    client = request.app[SERVICE].clients.get(seat.server)
    if client is None:
        raise json_error(409, "pbx_unavailable", f"no AMI link to {seat.server!r} in this instance")
    try:
        answer = await client.action(fields)
    except AmiError as exc:
        raise json_error(409, "pbx_unavailable", f"Asterisk did not answer: {exc}") from None
    first = answer[0] if isinstance(answer, list) else answer
    if str(first.get("Response", "")).lower() != "success":
        raise json_error(
            409, "refused", f"Asterisk refused {fields['Action']}: {first.get('Message', '')}"
        )
    log.info("agent_control", action=fields["Action"], server=seat.server, agent=seat.agent)
    return first


# ---- after-call work -------------------------------------------------------------------


@dataclass(slots=True)
class _Acw:
    started: float
    seconds: float
    handle: asyncio.TimerHandle | None = None


class Wrapup:
    """Pauses an agent who has the desk open for after-call work when their call ends."""

    def __init__(self, service: Any, hub: Hub) -> None:
        self.service = service
        self.hub = hub
        self.active: dict[tuple[str, str], _Acw] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, effects: list[Effect]) -> None:
        """Starts wrap-up for desk users whose answered call just ended."""
        seconds = self.service.settings.agent_wrapup_seconds
        for effect in effects:
            if not isinstance(effect, VisitEnded) or seconds <= 0:
                continue
            visit, server = effect.visit, effect.call.server
            if not (visit.answered_at and visit.interface) or not self.service.owns(server):
                continue
            if not self.hub.subscribers(topics_for(visit.agent, visit.interface)):
                continue  # nobody at this desk: Asterisk's own wrap-up applies
            seat = Seat(server, visit.agent, visit.interface)
            self._spawn(self._begin(seat, seconds))

    def _spawn(self, job: Any) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _begin(self, seat: Seat, seconds: float) -> None:
        members = _members_of(self.service, seat)
        if any(m.paused for m in members):
            return  # already paused (a break chosen during the call): leave it
        client = self.service.clients.get(seat.server)
        if client is None:
            return
        # Registered before the action: the pause's own events already show the countdown.
        key = (seat.server, seat.interface)
        previous = self.active.pop(key, None)
        if previous is not None and previous.handle is not None:
            previous.handle.cancel()
        acw = _Acw(time.monotonic(), seconds)
        self.active[key] = acw
        try:
            answer = await client.action(
                agentdesk.pause_action(seat.interface, True, agentdesk.WRAPUP_REASON)
            )
        except Exception as exc:  # a failed pause only loses the wrap-up, never the loop
            log.warning("wrapup_pause_failed", server=seat.server, error=str(exc))
            answer = None
        if not isinstance(answer, dict) or answer.get("Response") != "Success":
            if self.active.get(key) is acw:
                del self.active[key]
            return
        loop = asyncio.get_running_loop()
        acw.handle = loop.call_later(seconds, lambda: self._spawn(self.end(seat, "timeout")))

    def left(self, seat: Seat) -> dict[str, Any]:
        """The wrap-up the desk shows: whether it runs, and its seconds left and in all."""
        acw = self.active.get((seat.server, seat.interface))
        total = self.service.settings.agent_wrapup_seconds
        if acw is None:
            return {"active": False, "left_s": None, "total_s": total}
        left = max(0.0, acw.seconds - (time.monotonic() - acw.started))
        return {"active": True, "left_s": round(left, 1), "total_s": acw.seconds}

    async def end(self, seat: Seat, why: str) -> bool:
        """Ends the wrap-up pause (if the agent is still in it); True if an unpause was sent."""
        acw = self.active.pop((seat.server, seat.interface), None)
        if acw is not None and acw.handle is not None:
            acw.handle.cancel()
        members = _members_of(self.service, seat)
        if not any(m.paused and m.paused_reason == agentdesk.WRAPUP_REASON for m in members):
            return False  # the agent paused for something else meanwhile, or it is over
        client = self.service.clients.get(seat.server)
        if client is None:
            return False
        try:
            await client.action(agentdesk.pause_action(seat.interface, False))
        except Exception as exc:
            log.warning("wrapup_unpause_failed", server=seat.server, error=str(exc))
            return False
        log.info("wrapup_ended", server=seat.server, agent=seat.agent, why=why)
        return True

    async def close(self) -> None:
        """Cancels timers and pending actions (shutdown)."""
        for acw in self.active.values():
            if acw.handle is not None:
                acw.handle.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


WRAPUP = web.AppKey("desk_wrapup", Wrapup)


class DeskPush:
    """Pushes ``{type: desk}`` to an agent's screens when their queue membership changes."""

    def __init__(self, service: Any, hub: Hub, wrapup: Wrapup) -> None:
        self.service = service
        self.hub = hub
        self.wrapup = wrapup
        self._due: dict[tuple[str, str], str | None] = {}
        self._handle: asyncio.Handle | None = None

    def __call__(self, effects: list[Effect]) -> None:
        """Collects changed seats; one push per seat per batch."""
        for effect in effects:
            if isinstance(effect, MemberChanged):
                m = effect.member
                if self.hub.subscribers(topics_for(m.agent, m.interface)):
                    self._due[(m.server, m.interface)] = m.agent
        if self._due and self._handle is None:
            self._handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._handle = None
        due, self._due = self._due, {}
        for (server, interface), agent in due.items():
            seat = Seat(server, agent, interface)
            message = {"type": "desk", **desk_body(self.service, seat, self.wrapup)}
            text = json.dumps(message, ensure_ascii=False)
            self.hub.publish(topics_for(agent, interface), text)


# ---- the API ---------------------------------------------------------------------------


def desk_body(service: Any, seat: Seat, wrapup: Wrapup) -> dict[str, Any]:
    """The seat's state: overall and per queue, wrap-up, the pause reasons to choose from."""
    members = _members_of(service, seat)
    known = {q for (server, q) in service.tracker.queue_stats if server == seat.server}
    known |= {q for (server, q, _) in service.tracker.members if server == seat.server}
    from callcenter.calls import agent_state

    # Asterisk's own wrapuptime is a few seconds on the PBX's clock: the desk shows only the
    # after-call work it manages (a pause), so time never makes a state here.
    states = {m.queue: agent_state(m, math.inf, 0.0) for m in members}
    client = service.clients.get(seat.server)
    return {
        "agent": seat.agent,
        "interface": seat.interface,
        "server": seat.server,
        **agentdesk.desk_state(members, states),
        "queues": agentdesk.desk_queues(members, known),
        "wrapup": wrapup.left(seat),
        "pause_reasons": [
            r.to_dict() for r in (*agentdesk.pause_reasons(service.settings), agentdesk.WRAPUP)
        ],
        "ami_connected": bool(client is not None and getattr(client, "connected", False)),
    }


async def desk(request: web.Request) -> web.Response:
    """The seat's state (GET /api/agent/desk)."""
    _, seat = await _seat(request, acting=False)
    return ok(desk_body(request.app[SERVICE], seat, request.app[WRAPUP]))


async def pause(request: web.Request) -> web.Response:
    """Pauses the agent in all their queues with a configured reason (QueuePause)."""
    _, seat = await _seat(request)
    data = await body_of(request)
    reason = text_field(data, "reason", required=True)
    codes = {r.code for r in agentdesk.pause_reasons(request.app[SERVICE].settings)}
    if reason not in codes:
        raise json_error(400, "bad_reason", f"reason must be one of {', '.join(sorted(codes))}")
    request.app[WRAPUP].active.pop((seat.server, seat.interface), None)
    await _ami(request, seat, agentdesk.pause_action(seat.interface, True, reason))
    return ok({"action": "QueuePause", "paused": True, "reason": reason}, 202)


async def unpause(request: web.Request) -> web.Response:
    """Unpauses the agent in all their queues (QueuePause Paused: false)."""
    _, seat = await _seat(request)
    wrapup = request.app[WRAPUP].active.pop((seat.server, seat.interface), None)
    if wrapup is not None and wrapup.handle is not None:
        wrapup.handle.cancel()
    await _ami(request, seat, agentdesk.pause_action(seat.interface, False))
    return ok({"action": "QueuePause", "paused": False}, 202)


async def end_wrapup(request: web.Request) -> web.Response:
    """Ends the after-call-work pause now (409 if the agent is not in one)."""
    _, seat = await _seat(request)
    if not await request.app[WRAPUP].end(seat, "agent"):
        raise json_error(409, "not_in_wrapup", "the agent is not in after-call work")
    return ok({"action": "QueuePause", "paused": False}, 202)


def _queue_name(request: web.Request) -> str:
    queue = request.match_info["queue"]
    if not queue or len(queue) > 80 or any(ch in queue for ch in "\r\n"):
        raise json_error(400, "bad_request", "bad queue name")
    return queue


async def join_queue(request: web.Request) -> web.Response:
    """Logs the agent in to a queue (QueueAdd as a dynamic member)."""
    _, seat = await _seat(request)
    queue = _queue_name(request)
    await _ami(request, seat, agentdesk.join_action(queue, seat.interface, seat.agent))
    return ok({"action": "QueueAdd", "queue": queue}, 202)


async def leave_queue(request: web.Request) -> web.Response:
    """Logs the agent off a queue (QueueRemove)."""
    _, seat = await _seat(request)
    queue = _queue_name(request)
    await _ami(request, seat, agentdesk.leave_action(queue, seat.interface))
    return ok({"action": "QueueRemove", "queue": queue}, 202)


async def callbacks(request: web.Request) -> web.Response:
    """Today's callers who hung up waiting and were not answered since."""
    await require(request, *_ACTORS)
    service = request.app[SERVICE]
    since = day_start(time.time(), service.settings.timezone)
    limit = int_query(request, "limit", 100) or 100
    found = await missed_callers(
        service.pool, since, limit=limit, region=service.settings.phone_region
    )
    return ok({"since": since.isoformat(), "callers": found})


async def call_back(request: web.Request) -> web.Response:
    """Calls a caller back: Originate rings the agent's phone, then dials the citizen."""
    from callcenter.ivr.dialer import dial_number

    _, seat = await _seat(request)
    service = request.app[SERVICE]
    settings = service.settings
    linkedid = request.match_info["linkedid"]
    call = await abandoned_call(service.pool, linkedid, request.query.get("server") or None)
    if call is None:
        raise json_error(404, "not_found", f"no abandoned call {linkedid!r} with a number")
    ticket = await open_ticket_reference(
        service.pool, normalize_number(call["caller_number"], settings.phone_region)
    )
    action = agentdesk.callback_action(
        interface=seat.interface,
        dial=dial_number(call["caller_number"], settings.phone_region),
        context=settings.agent_callback_context,
        caller_id=settings.agent_callback_caller_id,
        linkedid=call["linkedid"],
        agent=seat.agent or seat.interface,
        ticket=ticket,
    )
    agent = seat.agent or seat.interface
    try:
        await _ami(request, seat, action)
    except web.HTTPException as exc:
        await record_callback(
            service.pool,
            call=call,
            agent=agent,
            interface=seat.interface,
            ticket=ticket,
            result="failed",
            error=exc.text,
        )
        raise
    done = await record_callback(
        service.pool,
        call=call,
        agent=agent,
        interface=seat.interface,
        ticket=ticket,
        result="originated",
    )
    log.info(
        "agent_callback", agent=agent, number=mask_number(call["caller_number"]), ticket=ticket
    )
    return ok(done, 201)


# ---- wiring ----------------------------------------------------------------------------


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Subscribes the wrap-up and the desk pushes to the service while the app runs."""
    from callcenter.web.agent import HUB

    service = app[SERVICE]
    wrapup = app[WRAPUP]
    service.subscribe(wrapup)
    service.subscribe(DeskPush(service, app[HUB], wrapup))
    yield
    await wrapup.close()


def setup(app: web.Application) -> None:
    """Adds the log-in routes and the agent's control API (after ``agent.setup``)."""
    from callcenter.web.agent import HUB

    app[WRAPUP] = Wrapup(app[SERVICE], app[HUB])
    r = app.router
    r.add_post("/agent/session", session_open)
    r.add_get("/agent/login", login_link)
    r.add_post("/agent/logout", logout)
    r.add_get("/api/agent/desk", desk)
    r.add_post("/api/agent/pause", pause)
    r.add_post("/api/agent/unpause", unpause)
    r.add_post("/api/agent/wrapup/end", end_wrapup)
    r.add_post("/api/agent/queues/{queue}/join", join_queue)
    r.add_post("/api/agent/queues/{queue}/leave", leave_queue)
    r.add_get("/api/agent/callbacks", callbacks)
    r.add_post("/api/agent/callbacks/{linkedid}/call", call_back)
    app.cleanup_ctx.append(_lifecycle)

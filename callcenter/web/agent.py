"""The agent's screen: ``/ws/agent`` (live pops), ``/pop`` (the pop as a page), ``/agent``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from importlib import resources
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from callcenter.categories import categories
from callcenter.model import Call
from callcenter.popup import build_pop, normalize_number
from callcenter.screenpop import ScreenPop, caller_history, topics_for
from callcenter.web import pop_page
from callcenter.web.auth import json_error, require
from callcenter.web.hub import Hub
from callcenter.web.server import SERVICE

HUB = web.AppKey("agent_hub", Hub)
SCREENPOP = web.AppKey("screenpop", ScreenPop)
_STATIC = {
    "/agent": ("agent.html", "text/html"),
    "/agent/agent.js": ("agent.js", "text/javascript"),
    "/agent/agent.css": ("agent.css", "text/css"),
}


def _identity(request: web.Request, role: str, agent: str | None, iface: str | None) -> list[str]:
    """The topics a screen listens on: an agent's own; a supervisor names the agent to watch."""
    if role != "agent":
        agent, iface = request.query.get("agent"), request.query.get("interface")
    topics = topics_for(agent, iface)
    if not topics:
        raise json_error(400, "bad_request", "name the agent to watch: ?agent= or ?interface=")
    return topics


async def ws_agent(request: web.Request) -> web.WebSocketResponse:
    """Streams pops to one agent's screen: hello, the current call if any, then every pop."""
    principal = await require(request, "agent", "supervisor", "admin")
    topics = _identity(request, principal.role, principal.agent, principal.interface)
    hub, screenpop = request.app[HUB], request.app[SCREENPOP]
    ws = web.WebSocketResponse(heartbeat=25.0)
    if not ws.can_prepare(request).ok:
        # aiohttp would answer a plain GET with a text/plain 400; API errors are JSON.
        raise json_error(400, "bad_request", "a WebSocket endpoint: connect with Upgrade")
    await ws.prepare(request)
    client = hub.add(ws, topics)
    settings = request.app[SERVICE].settings
    client.offer(
        json.dumps(
            {
                "type": "hello",
                "agent": principal.agent,
                "interface": principal.interface,
                "topics": topics,
                "categories": [c.to_dict() for c in categories(settings)],
            },
            ensure_ascii=False,
        )
    )
    for current in dict.fromkeys(screenpop.current.get(t) for t in topics):
        if current:
            client.offer(current)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                client.offer('{"type":"pong"}')
    finally:
        hub.remove(client)
    return ws


def _find_by_number(calls: list[Call], number: str, region: str) -> Call | None:
    """The newest live call from this number."""
    key = normalize_number(number, region)
    matches = [c for c in calls if normalize_number(c.caller_number, region) == key]
    return max(matches, key=lambda c: c.started_at) if matches else None


async def pop(request: web.Request) -> web.Response:
    """The pop for ``?linkedid=`` or ``?number=`` as HTML (``format=json`` for JSON)."""
    await require(request)
    service = request.app[SERVICE]
    screenpop = request.app[SCREENPOP]
    region = service.settings.phone_region
    linkedid, number = request.query.get("linkedid"), request.query.get("number")
    live = list(service.tracker.calls.values())
    call = None
    if linkedid:
        call = screenpop.find(live, linkedid, request.query.get("server"))
    if call is None and number:
        call = _find_by_number(live, number, region) or Call("", "", "", 0.0, caller_number=number)
    if call is None:
        raise json_error(404, "not_found", "no such call: pass ?linkedid= or ?number=")
    try:
        recent, tickets = await asyncio.wait_for(
            caller_history(service.pool, call.caller_number, region), 5.0
        )
    except (TimeoutError, OSError):
        recent, tickets = [], []
    answered = call.first_answered
    stage = "ended" if call.ended_at else ("connected" if answered else "ringing")
    offer = None
    if stage == "ringing" and call.visits and call.visits[-1].offers:
        offer = call.visits[-1].offers[-1]
    message = build_pop(
        call,
        answered,
        offer,
        stage=stage,
        recent_calls=recent,
        open_tickets=tickets,
        region=region,
    )
    if request.query.get("format") == "json":
        return web.json_response(message, dumps=lambda o: json.dumps(o, ensure_ascii=False))
    lang = "en" if request.query.get("lang") == "en" else "tr"
    other = {**request.query, "lang": "tr" if lang == "en" else "en"}
    switch = f"{request.path}?{urlencode(other)}"
    return web.Response(text=pop_page.render(message, lang, switch), content_type="text/html")


async def static(request: web.Request) -> web.Response:
    """The agent page and its script and style sheet."""
    name, content_type = _STATIC[request.path]
    body = resources.files("callcenter.web").joinpath("static", name).read_text(encoding="utf-8")
    return web.Response(text=body, content_type=content_type, headers={"Cache-Control": "no-cache"})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Subscribes the screen-pop to the service while the app runs."""
    app[SERVICE].subscribe(app[SCREENPOP])
    yield


async def _close_screens(app: web.Application) -> None:
    """Closes the agents' WebSockets first, so shutdown does not wait for them."""
    await app[HUB].close()


def setup(app: web.Application) -> None:
    """Adds the agent's WebSocket, the pop page and the agent page to the app."""
    service = app[SERVICE]
    hub = Hub()
    app[HUB] = hub
    app[SCREENPOP] = ScreenPop(hub, lambda: service.pool, service.settings)
    app.router.add_get("/ws/agent", ws_agent)
    app.router.add_get("/pop", pop)
    for path in _STATIC:
        app.router.add_get(path, static)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_screens)
    from callcenter.web import desk

    desk.setup(app)

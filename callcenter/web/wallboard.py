"""The supervisor wallboard: a static page at ``/wallboard``, live over ``/ws/wallboard``.

Every message is the whole board (small, and a page that missed one loses nothing), built
once per burst of effects and handed to each client's bounded queue; each client has its
own writer task, so one slow screen never delays the others — it just skips to the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from callcenter.metrics.board import snapshot
from callcenter.metrics.today import Today
from callcenter.model import Effect
from callcenter.web.server import SERVICE

log = structlog.get_logger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
# Effects arriving within this window go out as one board (bursts: thousands of events/s).
_COALESCE_S = 0.1
# The board is re-sent this often without events (wrap-ups end silently; keep-alive).
_REFRESH_S = 10.0
_TICK_S = 0.5


class _Client:
    """One connected page: a bounded queue of boards and the task that writes them."""

    def __init__(self, ws: web.WebSocketResponse, maxsize: int, send_timeout: float) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.skipped = 0
        self.send_timeout = send_timeout
        self.task = asyncio.create_task(self._write(), name="wallboard-writer")

    def offer(self, text: str) -> None:
        """Queues a board without waiting; a full queue drops its oldest (stale) board."""
        if self.queue.full():
            self.queue.get_nowait()
            self.skipped += 1
        self.queue.put_nowait(text)

    async def _write(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                await asyncio.wait_for(self.ws.send_str(text), self.send_timeout)
        except (TimeoutError, ConnectionError, RuntimeError):
            # A page that cannot take a board in time is closed; it reconnects by itself.
            with contextlib.suppress(Exception):
                await self.ws.close(code=1011, message=b"too slow")


class WallboardHub:
    """Keeps today's figures, builds boards and fans them out to connected pages."""

    def __init__(
        self,
        service: Any,
        clock: Callable[[], float] | None = None,
        queue_size: int = 2,
        send_timeout: float = 10.0,
    ) -> None:
        self.service = service
        self.today = Today(service.settings)
        self.clock: Callable[[], float] = (
            clock if clock is not None else getattr(service, "clock", time.time)
        )
        self.queue_size = queue_size
        self.send_timeout = send_timeout
        self.clients: set[_Client] = set()
        self.sent = 0
        self._pending: asyncio.TimerHandle | None = None
        self._last_sent = 0.0
        self._next_change: float | None = None

    def __call__(self, effects: list[Effect]) -> None:
        """Folds effects into today's figures and schedules a board for the pages."""
        for effect in effects:
            self.today.apply(effect)
        if self.clients and self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(_COALESCE_S, self.broadcast)

    def board(self) -> dict[str, Any]:
        """The board as of now."""
        data = snapshot(self.service.tracker, self.today, self.service.settings, self.clock())
        self._next_change = data.pop("next_change")
        # Pages tick waits between boards at the floor clock's pace (a simulator's: faster).
        data["clock_rate"] = getattr(self.service, "clock_rate", 1.0)
        data["timezone"] = self.service.settings.timezone
        return data

    def broadcast(self) -> None:
        """Sends the current board to every page (never waits for any of them)."""
        self._pending = None
        text = json.dumps(self.board(), ensure_ascii=False, separators=(",", ":"))
        self._last_sent = self.clock()
        self.sent += 1
        for client in list(self.clients):
            client.offer(text)

    async def refresh(self) -> None:
        """Re-sends the board when a wrap-up ends (no event says so) and now and then."""
        while True:
            await asyncio.sleep(_TICK_S)
            if not self.clients:
                continue
            now = self.clock()
            due = self._next_change is not None and now >= self._next_change
            if due or now - self._last_sent >= _REFRESH_S:
                self.broadcast()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Serves one page: the board at once, then every change, until it goes away."""
        if request.app[SERVICE].settings.wallboard_requires_token:
            from callcenter.web.auth import require

            await _subprotocol_token(request)
            await require(request, "supervisor", "admin")
        ws = web.WebSocketResponse(heartbeat=30.0, protocols=(_PROTOCOL,))
        await ws.prepare(request)
        client = _Client(ws, self.queue_size, self.send_timeout)
        self.clients.add(client)
        client.offer(json.dumps(self.board(), ensure_ascii=False, separators=(",", ":")))
        try:
            async for msg in ws:  # pages only listen; this loop notices them leaving
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.clients.discard(client)
            client.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client.task
        return ws

    async def close(self) -> None:
        """Closes every page's socket (on shutdown)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.ws.close(code=1001, message=b"server shutdown")


WALLBOARD = web.AppKey("wallboard", WallboardHub)
# A page offers ["callcenter", "cc.token.<token>"]: browsers cannot set headers on a
# WebSocket, and a token in the URL would end up in histories and proxy logs.
_PROTOCOL = "callcenter"
_TOKEN_PROTOCOL = "cc.token."


async def _subprotocol_token(request: web.Request) -> None:
    """Authenticates a socket by the token it offers as a subprotocol, if it offers one."""
    from callcenter.web.auth import PRINCIPAL, SESSION_COOKIE, json_error, lookup, token_of

    if PRINCIPAL in request or token_of(request) is not None:
        return  # a header, ?token= or a login cookie decides
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    for item in offered.split(","):
        item = item.strip()
        if item.startswith(_TOKEN_PROTOCOL):
            pool = request.app[SERVICE].pool
            if pool is None:
                raise json_error(503, "unavailable", "the database is not connected yet")
            principal = await lookup(pool, item[len(_TOKEN_PROTOCOL) :])
            if principal is not None:
                request[PRINCIPAL] = principal
            elif SESSION_COOKIE not in request.cookies:  # else the session cookie decides
                raise json_error(401, "unauthorized", "the API token is unknown or revoked")
            return


def _static(name: str, content_type: str) -> Callable[[web.Request], Any]:
    path = STATIC / name

    async def serve(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path, headers={"Content-Type": content_type})

    return serve


# Where a one-time supervisor link may lead (a fixed list: the link cannot send anyone away).
_LOGIN_TARGETS = {"wallboard": "/wallboard", "reports": "/reports"}


async def tv_login(request: web.Request) -> web.StreamResponse:
    """A one-time link for a TV or a supervisor: sets the session cookie and opens the page.

    ``/wallboard/login?code=…`` (``&to=reports`` for the reports): the code is used up, so
    the address a TV keeps in its history no longer opens anything, and no page carries a
    token in a URL.
    """
    from callcenter.web.auth import SESSION_COOKIE, create_session, redeem_login_link

    service = request.app[SERVICE]
    target = _LOGIN_TARGETS.get(request.query.get("to", "wallboard"), "/wallboard")
    code = request.query.get("code", "")
    token_id = await redeem_login_link(service.pool, code) if code and service.pool else None
    if token_id is None:
        raise web.HTTPSeeOther(f"{target}?login=expired")
    secret = await create_session(service.pool, token_id, service.settings.session_hours)
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(service.settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    log.info("tv_login_link_used", token_id=token_id, page=target)
    raise response


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    hub = app[WALLBOARD]
    task = asyncio.create_task(hub.refresh(), name="wallboard-refresh")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _on_shutdown(app: web.Application) -> None:
    await app[WALLBOARD].close()


def setup(app: web.Application) -> None:
    """Adds the wallboard page, its assets and its WebSocket, fed by the app's service."""
    from callcenter.web.assets import add_shared

    add_shared(app)
    hub = WallboardHub(app[SERVICE])
    app[WALLBOARD] = hub
    app[SERVICE].subscribe(hub)
    app.router.add_get("/wallboard", _static("wallboard.html", "text/html; charset=utf-8"))
    app.router.add_get(
        "/wallboard/wallboard.js", _static("wallboard.js", "text/javascript; charset=utf-8")
    )
    app.router.add_get("/wallboard/wallboard.css", _static("wallboard.css", "text/css"))
    app.router.add_get("/ws/wallboard", hub.handle)
    app.router.add_get("/wallboard/login", tv_login)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)

"""The wallboard's WebSocket: boards on connect and on change, and slow pages left behind."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.model import Effect, QueueJoined
from callcenter.web import wallboard
from callcenter.web.wallboard import WALLBOARD, WallboardHub, _Client
from tests.metrics_support import LiveFeed, caller_numbers, serving


class FakeSocket:
    """Stands in for a page's WebSocket; a slow one never finishes a send until released."""

    def __init__(self, slow: bool = False) -> None:
        self.slow = slow
        self.release = asyncio.Event()
        self.sent: list[str] = []
        self.closed = asyncio.Event()

    async def send_str(self, text: str) -> None:
        if self.slow:
            await self.release.wait()
        self.sent.append(text)

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed.set()


def _joined(_: str, effects: list[Effect]) -> bool:
    return any(isinstance(e, QueueJoined) for e in effects)


def _genel(board: dict[str, Any]) -> dict[str, Any] | None:
    return next((q for q in board["queues"] if q["name"] == "genel"), None)


async def test_a_slow_page_never_holds_up_the_others() -> None:
    service = Service(Settings(wallboard_requires_token=False))
    hub = WallboardHub(service)
    fast, slow = FakeSocket(), FakeSocket(slow=True)
    clients = [_Client(fast, 2, 0.5), _Client(slow, 2, 0.5)]  # type: ignore[arg-type]
    hub.clients.update(clients)
    try:
        for i in range(50):
            hub.broadcast()
            # The fast page gets every board while the slow one is stuck on its first.
            await _until(lambda n=i + 1: len(fast.sent) == n)  # type: ignore[misc]
        assert slow.sent == []  # still stuck in its first send
        assert clients[1].queue.qsize() <= 2  # bounded: older boards were dropped
        assert clients[1].skipped >= 47
        # A page that cannot take a board within the send timeout is closed (it reconnects).
        await asyncio.wait_for(slow.closed.wait(), 5)
        assert not fast.closed.is_set()
    finally:
        for client in clients:
            client.task.cancel()
        await asyncio.gather(*(c.task for c in clients), return_exceptions=True)


async def _until(condition: Any, polls: int = 500) -> None:
    """Waits (bounded) for a condition to hold, polling every 10 ms."""
    for _ in range(polls):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("condition never held")


async def test_a_page_gets_the_board_at_once_and_each_change_soon_after() -> None:
    service = Service(Settings(wallboard_requires_token=False))
    async with serving(service, [wallboard.setup]) as base:
        hub = None
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.ws_connect(base + "/ws/wallboard") as ws,
        ):
            first = json.loads(await asyncio.wait_for(ws.receive_str(), 5))
            assert first["type"] == "snapshot" and first["queues"] == []

            feed = LiveFeed(service, "answered")
            assert feed.until(_joined)  # the login snapshot and a caller, in one burst
            board = json.loads(await asyncio.wait_for(ws.receive_str(), 5))
            genel = _genel(board)
            assert genel is not None and genel["waiting"] == 1
            assert board["agents"] and board["totals"]["offered"] == 1
            # The burst went out as one board, not one per message.
            for app_hub in _hubs(service):
                hub = app_hub
            assert hub is not None and hub.sent == 1
            text = json.dumps(board)  # no caller number on a screen visitors can read
            assert not any(number in text for number in caller_numbers("answered"))
        assert hub is not None
        await asyncio.wait_for(_until(lambda: not hub.clients), 5)


def _hubs(service: Service) -> list[WallboardHub]:
    return [s for s in service.subscribers if isinstance(s, WallboardHub)]


async def test_pages_are_closed_when_the_service_shuts_down() -> None:
    service = Service(Settings(wallboard_requires_token=False))
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with serving(service, [wallboard.setup]) as base:
            ws = await session.ws_connect(base + "/ws/wallboard")
            await asyncio.wait_for(ws.receive_str(), 5)
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()


def test_setup_registers_the_hub_as_a_subscriber() -> None:
    from callcenter.web.server import make_app

    service = Service(Settings(wallboard_requires_token=False))
    app = make_app(service, [wallboard.setup])
    assert app[WALLBOARD] in service.subscribers
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/wallboard", "/ws/wallboard", "/wallboard/wallboard.js"} <= paths

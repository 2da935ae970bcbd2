"""The WebSocket hub over real sockets: a stuck or dead client never holds up the others."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcenter.web.hub import Hub

HUB = web.AppKey("hub", Hub)
PAYLOAD = "x" * 32_000  # large enough to fill a stuck client's socket buffers quickly


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    hub = request.app[HUB]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    client = hub.add(ws, {request.query.get("topic", "t")})
    try:
        async for _ in ws:
            pass
    finally:
        hub.remove(client)
    return ws


@pytest.fixture
async def hub_server() -> AsyncIterator[tuple[Hub, TestServer]]:
    hub = Hub(queue_size=8, send_timeout=1.0)
    app = web.Application()
    app[HUB] = hub
    app.router.add_get("/ws", ws_handler)
    server = TestServer(app)
    await server.start_server()
    try:
        yield hub, server
    finally:
        await hub.close()
        await server.close()


async def stuck_client(server: TestServer, topic: str) -> asyncio.StreamWriter:
    """A client that completes the WebSocket handshake and then never reads again."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws?topic={topic} HTTP/1.1\r\nHost: {server.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    return writer


async def wait_until(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    for _ in range(int(limit / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_stuck_client_is_dropped_and_the_others_get_everything(
    hub_server: tuple[Hub, TestServer],
) -> None:
    hub, server = hub_server
    stuck = await stuck_client(server, "t")
    async with aiohttp.ClientSession() as session:
        good = await session.ws_connect(server.make_url("/ws?topic=t"))
        other_topic = await session.ws_connect(server.make_url("/ws?topic=u"))
        await wait_until(lambda: len(hub.clients) == 3)
        received: list[str] = []
        for i in range(200):
            hub.publish("t", f"{i}:{PAYLOAD}")
            # Each message reaches the good client while the stuck one's backlog only grows.
            msg = await asyncio.wait_for(good.receive(), 10)
            received.append(msg.data)
        assert [int(m.split(":", 1)[0]) for m in received] == list(range(200))
        assert hub.dropped["slow"] + hub.dropped["dead"] == 1
        assert len(hub.subscribers(["t"])) == 1
        # Topics are separate: the other client got nothing.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(other_topic.receive(), 0.2)
        await good.close()
        await other_topic.close()
    stuck.close()


async def test_closed_client_is_removed(hub_server: tuple[Hub, TestServer]) -> None:
    hub, server = hub_server
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url("/ws?topic=t"))
        await wait_until(lambda: len(hub.clients) == 1)
        await ws.close()
    await wait_until(lambda: not hub.clients)
    assert hub.publish("t", {"type": "x"}) == 0


async def test_publish_serialises_once_for_many_topics(
    hub_server: tuple[Hub, TestServer],
) -> None:
    hub, server = hub_server
    async with aiohttp.ClientSession() as session:
        a = await session.ws_connect(server.make_url("/ws?topic=agent:a"))
        b = await session.ws_connect(server.make_url("/ws?topic=agent:b"))
        await wait_until(lambda: len(hub.clients) == 2)
        assert hub.publish(["agent:a", "agent:b", "agent:c"], {"type": "pop", "n": 1}) == 2
        for ws in (a, b):
            msg = await asyncio.wait_for(ws.receive_json(), 5)
            assert msg == {"type": "pop", "n": 1}
        await a.close()
        await b.close()

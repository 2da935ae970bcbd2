"""The HTTP server holds against slow clients, caps connections and sends security headers.

Real sockets against the service's own ``serve()``: 100 silent and 100 slow-drip clients are
closed by the server once the header timeout has passed (the test waits for that with a bound,
it does not time it), a client past the connection limit gets a 503, and every page, API
answer and error carries the Content-Security-Policy and the other security headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.web.server import SECURITY_HEADERS, default_features, make_app, serve

HEADER_TIMEOUT = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def served(db_url: str, **settings: Any) -> AsyncIterator[tuple[Service, int]]:
    base = Settings(
        database_url=db_url,
        fastagi_enabled=False,
        http_header_timeout=HEADER_TIMEOUT,
        wallboard_requires_token=False,
    )
    service = Service(replace(base, **settings))
    await service.start(ami=False)
    port = free_port()
    runner = await serve(make_app(service, default_features()), "127.0.0.1", port)
    try:
        yield service, port
    finally:
        await runner.cleanup()
        await service.stop()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Reads until the server closes the connection (EOF or reset)."""
    try:
        while await reader.read(4096):
            pass
    except ConnectionError:
        pass
    return True


async def drip(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """Sends a request head one byte at a time, never finishing it."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
    for byte in head:
        if stop.is_set() or writer.is_closing():
            return
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(0.1)


async def healthz(port: int) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status


async def test_silent_and_slow_drip_clients_are_closed_by_the_server(db_url: str) -> None:
    async with served(db_url) as (_, port):
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
        slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
        stop = asyncio.Event()
        drips = [asyncio.create_task(drip(w, stop)) for _, w in slow]
        try:
            # The service still answers others while they hang on.
            assert await healthz(port) == 200
            everyone = [closed_by_server(r) for r, _ in silent + slow]
            # Bounded: the drip would go on for 1,000 s; the server cuts it after ~1 s.
            done = await asyncio.wait_for(asyncio.gather(*everyone), 60)
            assert all(done) and len(done) == 200
        finally:
            stop.set()
            for task in drips:
                task.cancel()
            for _, writer in silent + slow:
                writer.close()
        assert await healthz(port) == 200


async def test_connections_beyond_the_limit_get_a_503(db_url: str) -> None:
    async with served(db_url, http_max_connections=20, http_header_timeout=30.0) as (_, port):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        try:
            await asyncio.sleep(0.2)  # let the server register them
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = await asyncio.wait_for(reader.read(), 10)
            assert answer.startswith(b"HTTP/1.1 503 ")
            writer.close()
        finally:
            for _, w in held:
                w.close()
        await asyncio.sleep(0.2)
        assert await healthz(port) == 200  # room again once they are gone


@pytest.mark.parametrize(
    "path",
    [
        "/agent",
        "/agent/agent.js",
        "/wallboard",
        "/reports",
        "/healthz",
        "/metrics",
        "/api/openapi.json",
        "/api/tickets",  # 401
        "/no-such-page",  # 404
        "/pop?number=05321234567",  # 401
    ],
)
async def test_every_answer_carries_the_security_headers(db_url: str, path: str) -> None:
    async with served(db_url) as (_, port):
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                for name, value in SECURITY_HEADERS.items():
                    assert resp.headers.get(name) == value, (path, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp

"""Backpressure: screens that never read and a webhook receiver that never answers do not slow
ingestion, and what they are owed stays bounded.

The hub mechanics are tested in isolation in test_api_ws_hub.py (a stuck agent socket is dropped,
the others get everything) and test_wallboard_ws.py (a stuck page keeps at most two boards and
is closed); here the whole started service ingests a load through the AMI protocol and its
queue while an agent screen and a wallboard page are connected over real sockets and never read
again, and every call.ended webhook goes to a receiver that hangs.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import asyncpg
from aiohttp import web

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.web.agent import HUB
from callcenter.web.auth import create_token
from callcenter.web.server import default_features, make_app
from callcenter.web.wallboard import WALLBOARD
from callcenter.webhooks import generate_secret
from tests.fuzz.amigen import Load, finish, frames, start
from tests.fuzz.harness import Wire
from tests.integration.webhook_receiver import Receiver

_WAIT_S = 60.0


async def stuck_socket(port: int, path: str) -> asyncio.StreamWriter:
    """Completes a WebSocket handshake on ``path`` and then never reads again."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return writer


async def test_stuck_screens_and_a_hanging_receiver_never_hold_up_ingestion(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(secret=generate_secret(), mode="hang")
    await receiver.start()
    load = Load(calls=1_500, agents=300)
    settings = Settings(
        database_url=db_url,
        spool_dir=str(tmp_path),
        fastagi_enabled=False,
        wallboard_requires_token=False,
        db_flush_interval=0.05,
        webhooks=({"name": "backend", "url": receiver.url, "secrets": [receiver.secret]},),
        webhook_allowed_hosts=("127.0.0.1",),
    )
    service = Service(settings)
    await asyncio.wait_for(service.start(ami=False), 60)
    app = make_app(service, default_features())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stuck: list[asyncio.StreamWriter] = []
    try:
        token, _ = await create_token(
            pool, role="supervisor", name="watcher", agent=None, interface=None
        )
        # A supervisor's screen watching the busiest agent, and a wallboard page: both stuck.
        stuck.append(await stuck_socket(port, f"/ws/agent?token={token}&agent=Temsilci%200001"))
        stuck.append(await stuck_socket(port, "/ws/wallboard"))
        hub, board = app[HUB], app[WALLBOARD]
        # A socket joins its hub after the handshake's own awaits (the access log): wait for it.
        for _ in range(200):
            if len(hub.clients) == 1 and len(board.clients) == 1:
                break
            await asyncio.sleep(0.05)
        assert len(hub.clients) == 1 and len(board.clients) == 1

        wire = Wire(asyncio.get_running_loop(), service, queued=True)
        wire.protocol.data_received(b"Asterisk Call Manager/6.0.0\r\n")
        for messages in (start(load), finish(load)):
            for i, chunk in enumerate(frames(messages)):
                wire.protocol.data_received(chunk)
                if i % 8 == 7:
                    await asyncio.wait_for(service.drain(), _WAIT_S)
                # What the stuck screens are owed never exceeds their queues.
                assert all(c.queue.qsize() <= hub.queue_size for c in hub.clients)
                assert all(c.queue.qsize() <= board.queue_size for c in board.clients)
            await asyncio.wait_for(service.drain(), _WAIT_S)

        async def landed() -> None:
            while (  # noqa: ASYNC110
                await pool.fetchval("SELECT count(*) FROM calls") < load.calls
                or service.writer.pending
            ):
                await asyncio.sleep(0.05)

        # Every call is logged and its call.ended is in the outbox, the receiver still hanging.
        await asyncio.wait_for(landed(), _WAIT_S)
        assert service.tracker.calls == {}
        outbox = await pool.fetchval(
            "SELECT count(*) FROM webhook_outbox WHERE event_type = 'call.ended'"
        )
        assert outbox == load.calls

        async def receiver_hangs() -> None:
            while not receiver.requests:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        # The worker did try: its request is hanging in the receiver right now.
        await asyncio.wait_for(receiver_hangs(), _WAIT_S)
        delivered = await pool.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'"
        )
        assert delivered == 0
        # The stuck wallboard page was closed after its send timed out, or still holds at most
        # its two boards; the page reconnects and gets a fresh board.
        assert board.clients == set() or all(
            c.queue.qsize() <= board.queue_size for c in board.clients
        )
        assert service.pipeline.counters["tracker_errors"] == 0
        assert service.subscriber_errors == 0
    finally:
        for writer in stuck:
            writer.close()
        await asyncio.wait_for(runner.cleanup(), 30)
        await asyncio.wait_for(service.stop(), 60)
        await receiver.stop()

"""The wallboard shows agents' names: its WebSocket needs a supervisor's (or admin's) token."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.web import wallboard
from callcenter.web.auth import create_token
from tests.metrics_support import serving


async def test_the_wallboard_socket_checks_the_token(pool: asyncpg.Pool) -> None:
    service = Service(Settings())
    service.pool = pool
    supervisor, _ = await create_token(pool, role="supervisor", name="floor TV")
    agent, _ = await create_token(pool, role="agent", name="a", agent="Zeynep Kaya")
    async with serving(service, [wallboard.setup]) as base, aiohttp.ClientSession() as http:
        for token, status in ((None, 401), ("cc_wrong", 401), (agent, 403)):
            url = base + "/ws/wallboard" + (f"?token={token}" if token else "")
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url)
            assert refused.value.status == status
        async with http.get(base + "/ws/wallboard") as resp:
            body = await resp.json()
            assert resp.status == 401 and body["error"]["code"] == "unauthorized"
        async with http.ws_connect(f"{base}/ws/wallboard?token={supervisor}") as ws:
            board = await ws.receive_json(timeout=10)
            assert "queues" in board

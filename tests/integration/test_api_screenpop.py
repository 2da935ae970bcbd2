"""Screen-pop end to end: a recorded call drives the service, the agent's WebSocket gets the pop."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from callcenter.web.auth import create_token
from tests.integration.api_support import Trace, call_json, event, running

EARLIER = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


async def seed_history(pool: Any) -> None:
    """An earlier call from the same caller, and an open ticket of theirs."""
    await pool.execute(
        """
        INSERT INTO calls (server, linkedid, uniqueid, caller_number, caller_name, queue, agent,
                           outcome, started_at, wait_s, talk_s)
        VALUES ('pbx1', '1700000000.7', '1700000000.7', '05321234567', 'Ayşe Yılmaz', 'genel',
                'Elif Şahin', 'answered', $1, 12.0, 65.0)
        """,
        EARLIER,
    )


async def receive(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next message of a type (bounded wait)."""
    while True:
        msg = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        if msg["type"] == kind:
            return msg


async def connect(server: TestServer, session: aiohttp.ClientSession, token: str) -> Any:
    ws = await session.ws_connect(server.make_url(f"/ws/agent?token={token}"))
    hello = await receive(ws, "hello")
    assert {c["code"] for c in hello["categories"]} >= {"masa-sandalye"}
    return ws


async def test_ringing_pop_reaches_the_agent_before_pickup(pool: Any, db_url: str) -> None:
    await seed_history(pool)
    async with running(db_url) as (service, server):
        zeynep, _ = await create_token(pool, role="agent", name="z", agent="Zeynep Kaya")
        elif_, _ = await create_token(pool, role="agent", name="e", agent="Elif Şahin")
        async with aiohttp.ClientSession() as session:
            ws = await connect(server, session, zeynep)
            other = await connect(server, session, elif_)
            trace = Trace(service, "answered")
            assert trace.until(event("AgentCalled"))
            pops = [await receive(ws, "pop")]
            if pops[0]["history_pending"]:
                pops.append(await receive(ws, "pop"))  # the same pop again, with the history
            ringing = pops[-1]
            assert ringing["stage"] == "ringing" and not ringing["history_pending"]
            assert ringing["caller"]["national"] == "0532 123 45 67"
            assert ringing["caller"]["name"] == "Ayşe Yılmaz"
            assert ringing["queue"] == "genel"
            [earlier] = ringing["recent_calls"]
            assert earlier["agent"] == "Elif Şahin" and earlier["outcome"] == "answered"
            trace.rest()
            assert (await receive(ws, "pop"))["stage"] == "connected"
            ended = await receive(ws, "pop")
            assert ended["stage"] == "ended" and ended["outcome"] == "answered"
            # Elif's phone never rang for this call: her screen got nothing.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(other.receive(), 0.3)
            await ws.close()
            await other.close()


async def test_reconnecting_screen_gets_the_current_call(pool: Any, db_url: str) -> None:
    async with running(db_url) as (service, server):
        token, _ = await create_token(pool, role="agent", name="z", interface="Local/1001@agents/n")
        trace = Trace(service, "answered")
        trace.until(event("AgentCalled"))
        async with aiohttp.ClientSession() as session:
            ws = await connect(server, session, token)
            current = await receive(ws, "pop")
            assert current["stage"] == "ringing" and current["linkedid"] == "1795884362.0"
            await ws.close()


async def test_pop_page_for_softphones(pool: Any, db_url: str) -> None:
    await seed_history(pool)
    async with running(db_url) as (service, server):
        token, _ = await create_token(pool, role="agent", name="z", agent="Zeynep Kaya")
        trace = Trace(service, "answered")
        trace.until(event("AgentCalled"))
        status, body = await call_json(
            server, "GET", f"/pop?linkedid=1795884362.0&format=json&token={token}"
        )
        assert status == 200 and body["stage"] == "ringing"
        assert body["recent_calls"][0]["agent"] == "Elif Şahin"
        async with aiohttp.ClientSession() as session:
            url = server.make_url("/pop?number=05321234567")
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(url, headers=headers) as resp:
                page = await resp.text()
                assert resp.status == 200 and resp.content_type == "text/html"
            assert "Ayşe Yılmaz" in page and "0532 123 45 67" in page and 'lang="tr"' in page
            async with session.get(url.update_query(lang="en"), headers=headers) as resp:
                assert "Recent calls" in await resp.text()
        # An agent gets the same 403 for a call that does not exist as for another's call.
        status, body = await call_json(server, "GET", "/pop?linkedid=nope", token)
        assert status == 403 and body["error"]["code"] == "forbidden"
        supervisor, _ = await create_token(pool, role="supervisor", name="s")
        status, body = await call_json(server, "GET", "/pop?linkedid=nope", supervisor)
        assert status == 404 and body["error"]["code"] == "not_found"
        status, body = await call_json(server, "GET", "/pop?linkedid=1795884362.0")
        assert status == 401


async def test_call_ended_webhook_is_queued_once_even_on_replay(pool: Any, db_url: str) -> None:
    async with running(db_url) as (service, server):
        for _ in range(2):
            Trace(service, "answered").rest()
            # Written with the call row: a second write of the same call queues nothing.
            await asyncio.wait_for(service.writer.flush(), 10)
    rows = await pool.fetch(
        "SELECT msg_id, payload::text AS p FROM webhook_outbox WHERE event_type = 'call.ended'"
    )
    assert len(rows) == 1
    data = json.loads(rows[0]["p"])["data"]
    assert data["linkedid"] == "1795884362.0" and data["caller_e164"] == "+905321234567"


async def test_websocket_needs_an_agent_identity(pool: Any, db_url: str) -> None:
    async with running(db_url) as (_, server):
        sup, _ = await create_token(pool, role="supervisor", name="s")
        status, body = await call_json(server, "GET", f"/ws/agent?token={sup}")
        assert status == 400 and "agent" in body["error"]["message"]
        integ, _ = await create_token(pool, role="integration", name="crm")
        status, body = await call_json(server, "GET", f"/ws/agent?token={integ}")
        assert status == 403
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(
                server.make_url(f"/ws/agent?token={sup}&agent=Zeynep%20Kaya")
            )
            hello = await receive(ws, "hello")
            assert hello["topics"] == ["agent:Zeynep Kaya"]
            await ws.close()


async def test_unanswered_ring_is_cleared_and_only_the_answerer_may_close(
    pool: Any, db_url: str
) -> None:
    async with running(db_url) as (service, server):
        zeynep, _ = await create_token(pool, role="agent", name="z", agent="Zeynep Kaya")
        mehmet, _ = await create_token(pool, role="agent", name="m", agent="Mehmet Öztürk")
        async with aiohttp.ClientSession() as session:
            rang = await connect(server, session, zeynep)
            took = await connect(server, session, mehmet)
            trace = Trace(service, "ring_noanswer")
            trace.until(event("AgentCalled"))
            assert (await receive(rang, "pop"))["stage"] == "ringing"
            # Zeynep does not answer; the queue rings Mehmet: her screen is cleared then.
            trace.until(event("AgentCalled"))
            cancel = await receive(rang, "cancel")
            assert cancel["linkedid"] == "1795884441.0" and cancel["reason"] == "no_answer"
            trace.rest()
            stages = [(await receive(took, "pop"))["stage"]]
            while stages[-1] != "ended":
                stages.append((await receive(took, "pop"))["stage"])
            # A ringing pop may come twice: at once, then with the history.
            assert list(dict.fromkeys(stages)) == ["ringing", "connected", "ended"]
            await rang.close()
            await took.close()
        path = "/api/calls/1795884441.0/disposition"
        status, _ = await call_json(server, "POST", path, zeynep, {"kind": "info"})
        assert status == 403
        status, done = await call_json(server, "POST", path, mehmet, {"kind": "info"})
        assert status == 201 and done["agent"] == "Mehmet Öztürk"

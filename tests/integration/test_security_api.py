"""Least privilege for agents, the access log and lone surrogates (issue 15)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook
from yarl import URL

from callcenter.app import Service
from callcenter.web.access import _storable
from callcenter.web.auth import create_token
from callcenter.webhooks import generate_secret
from tests.integration.api_support import Trace, call_json, event, running
from tests.integration.test_api_tickets import post_raw, signed

SECRET = generate_secret()
LINKEDID = "1795884362.0"  # the answered trace: Zeynep Kaya answers Ayşe Yılmaz (0532 123 45 67)
AYSE = "05321234567"
Api = tuple[Service, TestServer, dict[str, str]]


async def tokens_for(pool: Any) -> dict[str, str]:
    return {
        "zeynep": (await create_token(pool, role="agent", name="z", agent="Zeynep Kaya"))[0],
        "elif": (await create_token(pool, role="agent", name="e", agent="Elif Şahin"))[0],
        "supervisor": (await create_token(pool, role="supervisor", name="sup"))[0],
    }


@pytest.fixture
async def api(pool: Any, db_url: str) -> AsyncIterator[Api]:
    async with running(db_url, webhook_inbound_secrets=(SECRET,)) as (service, server):
        yield service, server, await tokens_for(pool)


async def other_citizens_ticket(server: TestServer, supervisor: str) -> str:
    body = {"category": "masa-sandalye", "caller_number": "05559876543", "note": "TC 12345678901"}
    status, ticket = await call_json(server, "POST", "/api/tickets", supervisor, body)
    assert status == 201, ticket
    return str(ticket["reference"])


async def test_an_agent_reads_only_the_call_at_its_position_and_its_own_tickets(
    api: Api, pool: Any
) -> None:
    service, server, tokens = api
    other = await other_citizens_ticket(server, tokens["supervisor"])
    zeynep, elif_ = tokens["zeynep"], tokens["elif"]
    # Another citizen's ticket and a reference that does not exist: the same 403, no oracle.
    s1, denied = await call_json(server, "GET", f"/api/tickets/{other}", zeynep)
    s2, missing = await call_json(server, "GET", "/api/tickets/2026-999999", zeynep)
    assert (s1, s2) == (403, 403) and denied == missing
    # Nothing rings yet: no caller, by number or by linkedid.
    assert (await call_json(server, "GET", f"/pop?number={AYSE}&format=json", zeynep))[0] == 403
    trace = Trace(service, "answered")
    trace.until(event("AgentCalled"))  # Zeynep's phone rings
    status, pop = await call_json(server, "GET", f"/pop?linkedid={LINKEDID}&format=json", zeynep)
    assert status == 200 and pop["linkedid"] == LINKEDID
    assert (await call_json(server, "GET", f"/pop?number={AYSE}&format=json", zeynep))[0] == 200
    # Elif's phone is not ringing: neither the call nor the caller's history.
    for query in (f"linkedid={LINKEDID}", f"number={AYSE}", "number=+905321234567"):
        assert (await call_json(server, "GET", f"/pop?{query}&format=json", elif_))[0] == 403
    trace.rest()  # answered, talked, hung up
    body = {"kind": "request", "category": "masa-sandalye", "note": "Düğün, 20 masa"}
    path = f"/api/calls/{LINKEDID}/disposition"
    status, done = await call_json(server, "POST", path, zeynep, body)
    assert status == 201, done
    mine = done["ticket"]["reference"]
    # A call she handled a moment ago: its ticket and its caller, still; not for Elif.
    assert (await call_json(server, "GET", f"/api/tickets/{mine}", zeynep))[0] == 200
    assert (await call_json(server, "GET", f"/pop?number={AYSE}&format=json", zeynep))[0] == 200
    assert (await call_json(server, "GET", f"/api/tickets/{mine}", elif_))[0] == 403
    assert (await call_json(server, "GET", f"/api/tickets/{other}", zeynep))[0] == 403
    # Supervisors read everything, and audit every read.
    assert (await call_json(server, "GET", f"/api/tickets/{other}", tokens["supervisor"]))[0] == 200
    status, log = await call_json(server, "GET", "/api/access-log", tokens["supervisor"])
    assert status == 200
    entries = log["entries"]
    refused = {(e["principal"], e["action"], e["target"]) for e in entries if not e["allowed"]}
    assert ("z", "ticket.read", other) in refused and ("z", "ticket.read", "2026-999999") in refused
    assert ("e", "pop.read", f"linkedid={LINKEDID}") in refused
    assert ("e", "ticket.read", mine) in refused
    granted = {(e["principal"], e["action"], e["target"]) for e in entries if e["allowed"]}
    assert ("z", "ticket.read", mine) in granted and ("sup", "ticket.read", other) in granted
    assert all(e["status"] == 403 for e in entries if not e["allowed"])
    status, denied_only = await call_json(
        server, "GET", "/api/access-log?denied=1&principal=e", tokens["supervisor"]
    )
    assert denied_only["entries"] and all(not e["allowed"] for e in denied_only["entries"])
    assert (await call_json(server, "GET", "/api/access-log", zeynep))[0] == 403
    assert await pool.fetchval("SELECT count(*) FROM access_log WHERE role = 'agent'") >= 9


async def test_recent_means_the_configured_window(pool: Any, db_url: str) -> None:
    async with running(db_url, agent_recent_hours=0.0) as (service, server):
        tokens = await tokens_for(pool)
        trace = Trace(service, "answered")
        trace.until(event("AgentConnect"))
        path = f"/pop?linkedid={LINKEDID}&format=json"
        assert (await call_json(server, "GET", path, tokens["zeynep"]))[0] == 200  # connected
        trace.rest()
        # With a zero-hour window, an ended call is no longer hers to read.
        assert (await call_json(server, "GET", path, tokens["zeynep"]))[0] == 403


LONE = '"\\ud800"'  # JSON text of a lone UTF-16 surrogate


async def raw(server: TestServer, method: str, path: str, token: str, text: str) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, server.make_url(path), data=text.encode(), headers=headers
        ) as resp:
            return resp.status, await resp.json()


async def test_a_lone_surrogate_is_a_clear_400_everywhere(api: Api) -> None:
    service, server, tokens = api
    sup = tokens["supervisor"]
    ref = await other_citizens_ticket(server, sup)
    Trace(service, "answered").rest()
    cases = [
        ("/api/tickets", '{"category": "masa-sandalye", "note": ' + LONE + "}"),
        (f"/api/tickets/{ref}/status", '{"status": "resolved", "note": ' + LONE + "}"),
        (f"/api/calls/{LINKEDID}/disposition", '{"kind": "info", "note": ' + LONE + "}"),
        ("/api/tickets", '{"category": "masa-sandalye", "fields": {' + LONE + ": 1}}"),
    ]
    for path, text in cases:
        status, body = await raw(server, "POST", path, sup, text)
        assert status == 400, (path, body)
        assert body["error"]["code"] == "bad_json" and "surrogate" in body["error"]["message"]
    # A correctly signed status webhook carrying one: 400 (not a 500 the backend retries).
    text = '{"type": "ticket.status", "data": {"reference": "' + ref + '", "status": "resolved"'
    text += ', "note": ' + LONE + "}}"
    request = signed({}, msg_id="msg_lone")
    request["data"] = text
    request["headers"]["webhook-signature"] = Webhook(SECRET).sign(
        "msg_lone", datetime.fromtimestamp(int(request["headers"]["webhook-timestamp"]), UTC), text
    )
    status, body = await post_raw(server, "/api/webhooks/ticket-status", request)
    assert status == 400 and "surrogate" in body["error"]["message"]


async def test_hostile_query_strings_are_logged_without_a_500(api: Api, pool: Any) -> None:
    _, server, tokens = api
    for path in ("/pop?number=%ED%A0%80", "/pop?linkedid=%FF%FE", "/api/tickets?number=%ED%A0%80"):
        for who in ("zeynep", "supervisor"):
            headers = {"Authorization": f"Bearer {tokens[who]}"}
            async with aiohttp.ClientSession() as session:
                url = URL(f"http://{server.host}:{server.port}{path}", encoded=True)
                async with session.get(url, headers=headers) as r:
                    assert r.status < 500, (path, who, r.status, await r.text())
    assert await pool.fetchval("SELECT count(*) FROM access_log") >= 4
    assert _storable("number=\ud800\x00") == "number=?"  # what PostgreSQL could not store

"""The ticket API over HTTP: dispositions, tickets, signed status webhooks, JSON errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook

from callcenter.app import Service
from callcenter.web.auth import create_token
from callcenter.webhooks import generate_secret
from tests.integration.api_support import Trace, call_json, running

SECRET = generate_secret()
LINKEDID = "1795884362.0"  # the answered trace: Zeynep Kaya answers Ayşe Yılmaz


@pytest.fixture
async def api(pool: Any, db_url: str) -> AsyncIterator[tuple[Service, TestServer, dict[str, str]]]:
    async with running(db_url, webhook_inbound_secrets=(SECRET,)) as (service, server):
        tokens = {
            "zeynep": (await create_token(pool, role="agent", name="z", agent="Zeynep Kaya"))[0],
            "elif": (await create_token(pool, role="agent", name="e", agent="Elif Şahin"))[0],
            "supervisor": (await create_token(pool, role="supervisor", name="s"))[0],
            "admin": (await create_token(pool, role="admin", name="a"))[0],
            "crm": (await create_token(pool, role="integration", name="crm"))[0],
        }
        yield service, server, tokens


async def test_agent_closes_own_call_as_a_request(api: Any, pool: Any) -> None:
    service, server, tokens = api
    Trace(service, "answered").rest()
    path = f"/api/calls/{LINKEDID}/disposition"
    body = {"kind": "request", "category": "masa-sandalye", "note": "Düğün, 20 masa"}
    status, err = await call_json(server, "POST", path, tokens["elif"], body)
    assert status == 403 and err["error"]["code"] == "forbidden"
    status, done = await call_json(server, "POST", path, tokens["zeynep"], body)
    assert status == 201, done
    ticket = done["ticket"]
    assert ticket["caller_number"] == "+905321234567" and ticket["caller_name"] == "Ayşe Yılmaz"
    assert ticket["agent"] == "Zeynep Kaya" and ticket["channel"] == "phone"
    status, again = await call_json(server, "POST", path, tokens["zeynep"], body)
    assert status == 200 and again["duplicate"] and again["reference"] == ticket["reference"]
    status, shown = await call_json(
        server, "GET", f"/api/tickets/{ticket['reference']}", tokens["zeynep"]
    )
    assert status == 200 and shown["calls"][0]["linkedid"] == LINKEDID
    events = await pool.fetch("SELECT event_type FROM webhook_outbox ORDER BY id")
    assert "ticket.created" in [e["event_type"] for e in events]


async def test_information_given_opens_no_ticket(api: Any, pool: Any) -> None:
    service, server, tokens = api
    Trace(service, "answered").rest()
    status, done = await call_json(
        server, "POST", f"/api/calls/{LINKEDID}/disposition", tokens["zeynep"], {"kind": "info"}
    )
    assert status == 201 and done["ticket"] is None
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "request"}, "bad_category"),
        ({"kind": "request", "category": "nope"}, "bad_category"),
        ({"kind": "maybe"}, "bad_kind"),
        ({}, "missing_field"),
        ({"kind": 3}, "bad_field"),
    ],
)
async def test_bad_dispositions_get_clear_errors(api: Any, body: Any, code: str) -> None:
    service, server, tokens = api
    Trace(service, "answered").rest()
    status, err = await call_json(
        server, "POST", f"/api/calls/{LINKEDID}/disposition", tokens["zeynep"], body
    )
    assert status == 400 and err["error"]["code"] == code


async def test_unknown_call_needs_a_number_for_integrations(api: Any) -> None:
    _, server, tokens = api
    path = "/api/calls/42.1/disposition"
    status, err = await call_json(server, "POST", path, tokens["zeynep"], {"kind": "info"})
    assert status == 404
    status, err = await call_json(server, "POST", path, tokens["crm"], {"kind": "info"})
    assert status == 404 and "caller_number" in err["error"]["message"]
    body = {"kind": "request", "category": "sosyal-yardim", "caller_number": "05321234567"}
    status, done = await call_json(server, "POST", path, tokens["crm"], body)
    assert status == 201 and done["agent"] == "crm"


async def test_ticket_endpoints_and_roles(api: Any) -> None:
    _, server, tokens = api
    new = {"category": "depremzede", "caller_number": "05331112233", "note": "Konteyner"}
    status, _ = await call_json(server, "POST", "/api/tickets", tokens["zeynep"], new)
    assert status == 403
    status, ticket = await call_json(server, "POST", "/api/tickets", tokens["crm"], new)
    assert status == 201 and ticket["channel"] == "api" and not ticket["merged"]
    status, merged = await call_json(server, "POST", "/api/tickets", tokens["crm"], new)
    assert status == 200 and merged["merged"] and merged["reference"] == ticket["reference"]
    status, listed = await call_json(
        server, "GET", "/api/tickets?status=open&number=0533 111 22 33", tokens["supervisor"]
    )
    assert status == 200 and [t["reference"] for t in listed["tickets"]] == [ticket["reference"]]
    ref = ticket["reference"]
    status, moved = await call_json(
        server, "POST", f"/api/tickets/{ref}/status", tokens["supervisor"], {"status": "resolved"}
    )
    assert status == 200 and moved["survey_candidate"]
    back = {"status": "in_progress"}
    status, err = await call_json(
        server, "POST", f"/api/tickets/{ref}/status", tokens["supervisor"], back
    )
    assert status == 409 and err["error"]["code"] == "bad_transition"
    status, found = await call_json(server, "GET", "/api/surveys/candidates", tokens["crm"])
    assert [c["reference"] for c in found["candidates"]] == [ref]
    status, err = await call_json(server, "GET", "/api/tickets/2026-999999", tokens["admin"])
    assert status == 404 and err["error"]["code"] == "not_found"


def signed(body: dict[str, Any], secret: str = SECRET, msg_id: str = "msg_in_1") -> dict[str, Any]:
    text = json.dumps(body)
    signature = Webhook(secret).sign(msg_id, datetime.now(UTC), text)
    return {
        "data": text,
        "headers": {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        },
    }


async def post_raw(server: TestServer, path: str, request: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url(path), **request) as resp:
            return resp.status, await resp.json()


async def test_signed_status_webhook_moves_the_ticket_once(api: Any, pool: Any) -> None:
    _, server, tokens = api
    new = {"category": "sosyal-yardim", "caller_number": "05321234567"}
    _, ticket = await call_json(server, "POST", "/api/tickets", tokens["crm"], new)
    path = "/api/webhooks/ticket-status"
    change = {"type": "ticket.status", "data": {"reference": ticket["reference"]}}
    change["data"].update({"status": "in_progress", "external_id": "EBYS-77"})
    status, done = await post_raw(server, path, signed(change))
    assert status == 200 and done["ticket"]["status"] == "in_progress"
    assert done["ticket"]["external_id"] == "EBYS-77"
    status, again = await post_raw(server, path, signed(change))
    assert status == 200 and again["duplicate"]
    events = await pool.fetchval("SELECT count(*) FROM ticket_events WHERE kind = 'status'")
    assert events == 1
    resolved = {"data": {"reference": ticket["reference"], "status": "resolved"}}
    status, done = await post_raw(server, path, signed(resolved, msg_id="msg_in_2"))
    assert status == 200 and done["ticket"]["survey_candidate"]


async def test_bad_signatures_get_401(api: Any) -> None:
    _, server, _ = api
    path = "/api/webhooks/ticket-status"
    body = {"data": {"reference": "2026-000001", "status": "resolved"}}
    status, err = await post_raw(server, path, signed(body, secret=generate_secret()))
    assert status == 401 and err["error"]["code"] == "bad_signature"
    tampered = signed(body)
    tampered["data"] = tampered["data"].replace("resolved", "rejected")
    status, _ = await post_raw(server, path, tampered)
    assert status == 401
    status, err = await post_raw(server, path, {"json": body})
    assert status == 401 and "header" in err["error"]["message"]
    old = signed(body)
    old["headers"]["webhook-timestamp"] = "1000000000"
    status, _ = await post_raw(server, path, old)
    assert status == 401


async def test_status_webhook_for_unknown_ticket_is_404_and_can_be_retried(api: Any) -> None:
    _, server, _ = api
    body = {"data": {"reference": "2026-999999", "status": "resolved"}}
    for _ in range(2):  # the failed attempt left no trace: the retry is examined again
        status, err = await post_raw(server, "/api/webhooks/ticket-status", signed(body))
        assert status == 404 and err["error"]["code"] == "not_found"


async def test_every_api_error_is_json(api: Any) -> None:
    _, server, tokens = api
    status, err = await call_json(server, "GET", "/api/nothing-here", tokens["admin"])
    assert status == 404 and err["error"]["code"] == "not_found"
    status, err = await call_json(server, "DELETE", "/api/tickets", tokens["admin"])
    assert status == 405 and err["error"]["code"] == "method_not_allowed"
    as_json = {"content-type": "application/json"}
    status, err = await call_json(
        server, "POST", "/api/tickets", tokens["admin"], data="{", headers=as_json
    )
    assert status == 400 and err["error"]["code"] == "bad_json"
    status, err = await call_json(server, "POST", "/api/tickets", tokens["admin"], data="x")
    assert status == 415
    status, err = await call_json(server, "GET", "/api/tickets?limit=x", tokens["admin"])
    assert status == 400 and err["error"]["code"] == "bad_query"


async def test_delivery_log_and_subscriptions_need_admin(api: Any) -> None:
    _, server, tokens = api
    for path in ("/api/webhooks/deliveries", "/api/webhooks/subscriptions"):
        status, _ = await call_json(server, "GET", path, tokens["supervisor"])
        assert status == 403
    status, body = await call_json(server, "GET", "/api/webhooks/deliveries", tokens["admin"])
    assert status == 200 and body == {"deliveries": []}
    status, err = await call_json(
        server, "POST", "/api/webhooks/deliveries/123/replay", tokens["admin"]
    )
    assert status == 404
    # Ids past PostgreSQL's bigint or in non-ASCII digits are unknown ids, not a 500.
    for raw in ("9" * 40, "%D9%A1%D9%A2"):
        status, err = await call_json(
            server, "GET", f"/api/webhooks/deliveries/{raw}", tokens["admin"]
        )
        assert status == 404 and err["error"]["code"] == "not_found"
    status, err = await call_json(
        server, "POST", "/api/webhooks/subscriptions/nope/enable", tokens["admin"]
    )
    assert status == 404

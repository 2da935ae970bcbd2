"""Webhook endpoints: status changes in from the ticketing backend, the delivery log, replay.

Also runs the webhook machinery while the app runs: the call.ended outbox, call-back tickets
and the delivery worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from aiohttp import web

from callcenter.dispositions import CallbackTickets
from callcenter.tickets import TicketError, set_status
from callcenter.web.api_common import has_nul, int_query, ok, ticket_error
from callcenter.web.auth import json_error, require
from callcenter.web.server import SERVICE
from callcenter.webhooks import (
    CallEndedOutbox,
    DeliveryWorker,
    SignatureError,
    Subscription,
    enable_subscription,
    get_delivery,
    inbound_secrets,
    list_deliveries,
    list_subscriptions,
    replay_delivery,
    subscriptions_from,
    verify,
)
from callcenter.webhooks.deliveries import STATES

SUBSCRIPTIONS = web.AppKey("webhook_subscriptions", list[Subscription])
INBOUND = web.AppKey("webhook_inbound_secrets", tuple[str, ...])
WORKER = web.AppKey("webhook_worker", DeliveryWorker)
OUTBOX = web.AppKey("call_ended_outbox", CallEndedOutbox)
CALLBACKS = web.AppKey("callback_tickets", CallbackTickets)


async def ticket_status_in(request: web.Request) -> web.Response:
    """Applies a signed status change from the ticketing backend, once per webhook-id."""
    secrets = request.app[INBOUND]
    if not secrets:
        raise json_error(503, "unavailable", "no webhook_inbound_secrets are configured")
    try:
        raw = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:  # request.text() would let it escape as a 500
        raise json_error(400, "bad_json", "the body is not UTF-8 JSON") from None
    try:
        msg_id = verify(secrets, request.headers, raw, time.time())
    except SignatureError as exc:
        raise json_error(401, "bad_signature", str(exc)) from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise json_error(400, "bad_json", "the body is not valid JSON") from None
    if has_nul(body):
        raise json_error(400, "bad_json", "the body contains a NUL character")
    data = body.get("data", body) if isinstance(body, dict) else None
    if not isinstance(data, dict) or not data.get("reference") or not data.get("status"):
        raise json_error(400, "missing_field", "data.reference and data.status are required")
    async with request.app[SERVICE].pool.acquire() as conn, conn.transaction():
        fresh = await conn.fetchval(
            """
            INSERT INTO webhook_inbox (msg_id, event_type) VALUES ($1, $2)
            ON CONFLICT DO NOTHING RETURNING msg_id
            """,
            msg_id,
            str(body.get("type", "")),
        )
        if fresh is None:
            return ok({"duplicate": True, "webhook_id": msg_id})
        try:
            ticket = await set_status(
                conn,
                str(data["reference"]),
                str(data["status"]),
                source="backend",
                note=str(data.get("note") or "")[:4000],
                external_id=str(data["external_id"]) if data.get("external_id") else None,
            )
        except TicketError as exc:
            raise ticket_error(exc) from None
    return ok({"duplicate": False, "webhook_id": msg_id, "ticket": ticket.to_dict()})


async def deliveries_index(request: web.Request) -> web.Response:
    """The delivery log, newest first; filters: state, subscription, event_type, before."""
    await require(request, "admin", "integration")
    state = request.query.get("state") or None
    if state is not None and state not in STATES:
        raise json_error(400, "bad_query", f"state must be one of {', '.join(STATES)}")
    found = await list_deliveries(
        request.app[SERVICE].pool,
        state=state,
        subscription=request.query.get("subscription") or None,
        event_type=request.query.get("event_type") or None,
        before_id=int_query(request, "before", None, top=2**62),
        limit=int_query(request, "limit", 50) or 50,
    )
    return ok({"deliveries": found})


def _delivery_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    # Ids are PostgreSQL bigints: anything else (non-ASCII digits, past 2**63) cannot exist.
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= 2**63:
        raise json_error(404, "not_found", f"no delivery {raw!r}")
    return int(raw)


async def delivery_show(request: web.Request) -> web.Response:
    """One delivery with its payload and every attempt."""
    await require(request, "admin", "integration")
    found = await get_delivery(request.app[SERVICE].pool, _delivery_id(request))
    if found is None:
        raise json_error(404, "not_found", "no such delivery")
    return ok(found)


async def delivery_replay(request: web.Request) -> web.Response:
    """Sends a delivery again, under the same webhook-id, with a fresh retry window."""
    await require(request, "admin")
    delivery_id = _delivery_id(request)
    if not await replay_delivery(request.app[SERVICE].pool, delivery_id):
        raise json_error(404, "not_found", "no such delivery")
    if WORKER in request.app:
        request.app[WORKER].kick()
    found = await get_delivery(request.app[SERVICE].pool, delivery_id)
    return ok(found, 202)


async def subscriptions_index(request: web.Request) -> web.Response:
    """The configured subscriptions, their state and counts (never the secrets)."""
    await require(request, "admin")
    found = await list_subscriptions(request.app[SERVICE].pool, request.app[SUBSCRIPTIONS])
    return ok({"subscriptions": found})


async def subscription_enable(request: web.Request) -> web.Response:
    """Re-enables a subscription disabled by a 410; held deliveries resume (``resume=false``)."""
    await require(request, "admin")
    name = request.match_info["name"]
    resume = request.query.get("resume", "true").lower() not in ("0", "false", "no")
    resumed = await enable_subscription(request.app[SERVICE].pool, name, resume=resume)
    if resumed is None:
        raise json_error(404, "not_found", f"no subscription {name!r}")
    if WORKER in request.app:
        request.app[WORKER].kick()
    return ok({"name": name, "enabled": True, "resumed": resumed})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Runs the call.ended outbox, call-back tickets and the delivery worker with the app."""
    service = app[SERVICE]
    outbox, callbacks, worker = app[OUTBOX], app[CALLBACKS], app[WORKER]
    service.subscribe(outbox)
    service.subscribe(callbacks)
    outbox.start()
    callbacks.start()
    worker.start()
    yield
    await worker.stop()
    await outbox.stop()
    await callbacks.stop()


def setup(app: web.Application) -> None:
    """Adds the webhook routes; bad webhook settings stop the start with a clear message."""
    service = app[SERVICE]
    settings = service.settings
    subscriptions = subscriptions_from(settings)
    app[SUBSCRIPTIONS] = subscriptions
    app[INBOUND] = inbound_secrets(settings)
    pool = lambda: service.pool  # noqa: E731  (the pool exists only once the service started)
    app[OUTBOX] = CallEndedOutbox(pool, region=settings.phone_region)
    app[CALLBACKS] = CallbackTickets(pool, settings)
    app[WORKER] = DeliveryWorker(pool, subscriptions, allowed_hosts=settings.webhook_allowed_hosts)
    r = app.router
    r.add_post("/api/webhooks/ticket-status", ticket_status_in)
    r.add_get("/api/webhooks/deliveries", deliveries_index)
    r.add_get("/api/webhooks/deliveries/{id}", delivery_show)
    r.add_post("/api/webhooks/deliveries/{id}/replay", delivery_replay)
    r.add_get("/api/webhooks/subscriptions", subscriptions_index)
    r.add_post("/api/webhooks/subscriptions/{name}/enable", subscription_enable)
    app.cleanup_ctx.append(_lifecycle)

"""Webhooks to the ticketing backend: outbox, Standard Webhooks signing, delivery worker.

Events (``call.ended``, ``ticket.created``, ``ticket.updated``, ``survey.completed``) are written
to the outbox with ``enqueue(conn, event_type, payload)`` inside the transaction that caused
them (``call.ended`` by the store's writer, in the transaction of the call row); the
``DeliveryWorker`` delivers them signed, with retries for up to 3 days.
"""

from callcenter.webhooks.deliveries import (
    enable_subscription,
    get_delivery,
    list_deliveries,
    list_subscriptions,
    replay_delivery,
)
from callcenter.webhooks.outbox import (
    call_ended_msg_id,
    call_ended_row,
    derived_msg_id,
    enqueue,
    enqueue_call_ended,
    new_msg_id,
)
from callcenter.webhooks.signing import SignatureError, generate_secret, sign, verify
from callcenter.webhooks.subscriptions import (
    EVENTS,
    Subscription,
    inbound_secrets,
    subscriptions_from,
)
from callcenter.webhooks.worker import DeliveryWorker

__all__ = [
    "EVENTS",
    "DeliveryWorker",
    "SignatureError",
    "Subscription",
    "call_ended_msg_id",
    "call_ended_row",
    "enqueue_call_ended",
    "derived_msg_id",
    "enable_subscription",
    "enqueue",
    "generate_secret",
    "get_delivery",
    "inbound_secrets",
    "list_deliveries",
    "list_subscriptions",
    "new_msg_id",
    "replay_delivery",
    "sign",
    "subscriptions_from",
    "verify",
]

"""Webhook delivery against a real receiver: signing, retries, Retry-After, 410, restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from callcenter.config import ConfigError, Settings, load_settings
from callcenter.webhooks import (
    DeliveryWorker,
    Subscription,
    enable_subscription,
    enqueue,
    generate_secret,
    get_delivery,
    list_deliveries,
    replay_delivery,
    subscriptions_from,
)
from tests.integration.webhook_receiver import Receiver

DAY = 86400.0


class Clock:
    """A settable clock standing in for time.time."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(secret=generate_secret())
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


def make_worker(pool: Any, receiver: Receiver, clock: Any = None, **kwargs: Any) -> DeliveryWorker:
    sub = Subscription("backend", receiver.url, (receiver.secret,), ("*",))
    options: dict[str, Any] = {"allowed_hosts": ("127.0.0.1",), "rand": lambda: 1.0}
    if clock is not None:
        options["clock"] = clock
        receiver.realtime = False
    options.update(kwargs)
    return DeliveryWorker(lambda: pool, [sub], **options)


async def put(pool: Any, event_type: str = "ticket.created", **data: Any) -> str:
    async with pool.acquire() as conn, conn.transaction():
        msg_id = await enqueue(conn, event_type, {"reference": "2026-000001", **data})
    assert msg_id is not None
    return msg_id


async def only_delivery(pool: Any) -> dict[str, Any]:
    rows = await list_deliveries(pool)
    assert len(rows) == 1
    found = await get_delivery(pool, rows[0]["id"])
    assert found is not None
    return found


async def test_delivered_signed_and_verified_by_the_reference_library(
    pool: Any, receiver: Receiver
) -> None:
    worker = make_worker(pool, receiver)
    try:
        msg_id = await put(pool, note="Düğün için 20 masa")
        assert await worker.run_once() == 1
    finally:
        await worker.stop()
    [req] = receiver.requests
    assert req.verified and req.answered == 204
    assert req.msg_id == msg_id
    assert req.body["type"] == "ticket.created"
    assert req.body["data"]["note"] == "Düğün için 20 masa"
    delivery = await only_delivery(pool)
    assert delivery["state"] == "delivered"
    assert delivery["log"][0]["status"] == 204


async def test_rotation_signs_with_every_secret(pool: Any, receiver: Receiver) -> None:
    old, new = generate_secret(), receiver.secret
    sub = Subscription("backend", receiver.url, (old, new), ("*",))
    worker = DeliveryWorker(lambda: pool, [sub], allowed_hosts=("127.0.0.1",))
    try:
        await put(pool)
        await worker.run_once()
    finally:
        await worker.stop()
    [req] = receiver.requests
    # A receiver still on the old secret and one already on the new one both accept it.
    for secret in (old, new):
        assert Webhook(secret).verify(req.text, req.headers)["type"] == "ticket.created"
    assert len(req.headers["webhook-signature"].split(" ")) == 2
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(req.text, req.headers)


async def test_500_is_retried_with_backoff_under_the_same_id(pool: Any, receiver: Receiver) -> None:
    clock = Clock()
    worker = make_worker(pool, receiver, clock, base_delay=5.0)
    receiver.mode = "fail"
    try:
        await put(pool)
        assert await worker.run_once() == 1
        # Not due yet: nothing is attempted until the backoff has passed on the clock.
        assert await worker.run_once() == 0
        delivery = await only_delivery(pool)
        assert delivery["state"] == "pending" and delivery["last_status"] == 500
        clock.advance(5.0)
        receiver.mode = "ok"
        assert await worker.run_once() == 1
    finally:
        await worker.stop()
    assert [r.answered for r in receiver.requests] == [500, 204]
    assert len({r.msg_id for r in receiver.requests}) == 1
    assert all(r.verified for r in receiver.requests)
    delivery = await only_delivery(pool)
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["log"]] == [500, 204]


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    worker = DeliveryWorker(lambda: None, [], allowed_hosts=(), rand=lambda: 0.0)
    assert [worker.backoff(n) for n in (1, 2, 3, 4)] == [2.5, 5.0, 10.0, 20.0]
    worker.rand = lambda: 1.0
    assert [worker.backoff(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert worker.backoff(40) == 6 * 3600.0
    assert worker.timeout == 15.0 and worker.max_age_s == 3 * DAY


async def test_retry_after_is_honoured(pool: Any, receiver: Receiver) -> None:
    clock = Clock()
    worker = make_worker(pool, receiver, clock)
    receiver.mode, receiver.retry_after = "429", "120"
    try:
        await put(pool)
        await worker.run_once()
        clock.advance(119.0)
        assert await worker.run_once() == 0
        clock.advance(1.0)
        receiver.mode = "ok"
        assert await worker.run_once() == 1
    finally:
        await worker.stop()
    assert [r.answered for r in receiver.requests] == [429, 204]


async def test_410_disables_the_subscription_until_enabled(pool: Any, receiver: Receiver) -> None:
    clock = Clock()
    worker = make_worker(pool, receiver, clock)
    receiver.mode = "410"
    try:
        await put(pool)
        await worker.run_once()
        await put(pool, reference="2026-000002")
        clock.advance(DAY)
        assert await worker.run_once() == 0  # disabled: not attempted at all
        states = sorted(d["state"] for d in await list_deliveries(pool))
        assert states == ["disabled", "disabled"]
        receiver.mode = "ok"
        assert await enable_subscription(pool, "backend") == 2
        clock.advance(DAY)
        assert await worker.run_once() == 2
    finally:
        await worker.stop()
    assert sum(receiver.accepted.values()) == 2


@pytest.mark.parametrize("mode", ["hang", "reset"])
async def test_hanging_or_dropping_receiver_is_an_error_and_retried(
    pool: Any, receiver: Receiver, mode: str
) -> None:
    clock = Clock()
    worker = make_worker(pool, receiver, clock, timeout=0.3)
    receiver.mode = mode
    try:
        await put(pool)
        await asyncio.wait_for(worker.run_once(), 10)
        delivery = await only_delivery(pool)
        assert delivery["state"] == "pending"
        assert delivery["log"][0]["status"] is None
        assert delivery["log"][0]["error"]
        receiver.mode = "ok"
        clock.advance(3600)
        await asyncio.wait_for(worker.run_once(), 10)
    finally:
        await worker.stop()
    assert (await only_delivery(pool))["state"] == "delivered"


async def test_gives_up_after_three_days_then_replay_delivers(
    pool: Any, receiver: Receiver
) -> None:
    clock = Clock()
    start = clock.now
    worker = make_worker(pool, receiver, clock)
    receiver.mode = "fail"
    try:
        await put(pool)
        for _ in range(500):
            await worker.run_once()
            if (await only_delivery(pool))["state"] != "pending":
                break
            clock.advance(600)
        delivery = await only_delivery(pool)
        assert delivery["state"] == "failed"
        attempts = len(delivery["log"])
        assert 10 < attempts < 40  # exponential, not one per poll
        # The last try was made at the 3-day mark, not later.
        assert clock.now - start <= 3 * DAY + 600
        receiver.mode = "ok"
        assert await replay_delivery(pool, delivery["id"], clock.now)
        assert await worker.run_once() == 1
    finally:
        await worker.stop()
    delivery = await only_delivery(pool)
    assert delivery["state"] == "delivered"
    assert len({r.msg_id for r in receiver.requests}) == 1


async def test_backend_down_for_a_simulated_day_gets_every_event_once(
    pool: Any, receiver: Receiver
) -> None:
    clock = Clock()
    worker = make_worker(pool, receiver, clock)
    await receiver.stop()  # connection refused
    sent: list[str] = []
    try:
        # Events keep coming all day while the backend is down (refusing, then failing).
        for hour in range(24):
            if hour == 12:
                await receiver.start()
                receiver.mode = "fail"
            for i in range(3):
                kind = ("ticket.created", "ticket.updated", "call.ended")[i]
                sent.append(await put(pool, kind, hour=hour))
            for _ in range(6):
                await worker.run_once()
                clock.advance(600)
        receiver.mode = "ok"
        for _ in range(200):
            await worker.run_once()
            pending = await list_deliveries(pool, state="pending", limit=1)
            if not pending:
                break
            clock.advance(600)
    finally:
        await worker.stop()
    assert not await list_deliveries(pool, state="failed")
    assert set(receiver.accepted) == set(sent)
    assert set(receiver.accepted.values()) == {1}  # once per webhook-id
    assert all(r.verified for r in receiver.requests)


async def test_delivery_survives_a_restart_and_an_abandoned_lease(
    pool: Any, receiver: Receiver
) -> None:
    clock = Clock()
    first = make_worker(pool, receiver, clock)
    await put(pool)
    await first.fan_out(clock.now)
    claimed = await first._claim(clock.now)  # the process dies holding this claim
    assert len(claimed) == 1
    await first.stop()
    second = make_worker(pool, receiver, clock)
    try:
        assert await second.run_once() == 0  # still leased
        clock.advance(second.lease_s + 1)
        assert await second.run_once() == 1
    finally:
        await second.stop()
    assert sum(receiver.accepted.values()) == 1


async def test_two_workers_never_send_the_same_delivery_twice(
    pool: Any, receiver: Receiver
) -> None:
    clock = Clock()
    workers = [make_worker(pool, receiver, clock, batch=7) for _ in range(2)]
    sent = [await put(pool, n=i) for i in range(40)]
    try:
        for _ in range(10):
            await asyncio.gather(*(w.run_once() for w in workers))
    finally:
        for w in workers:
            await w.stop()
    assert set(receiver.accepted) == set(sent)
    assert len(receiver.requests) == 40


async def test_event_filter_and_allowed_hosts(pool: Any, receiver: Receiver) -> None:
    tickets_only = Subscription("tickets", receiver.url, (receiver.secret,), ("ticket.*",))
    elsewhere = Subscription("evil", "http://169.254.169.254/hook", (receiver.secret,), ("*",))
    worker = DeliveryWorker(lambda: pool, [tickets_only, elsewhere], allowed_hosts=("127.0.0.1",))
    try:
        await put(pool, "ticket.created")
        await put(pool, "call.ended")
        await worker.run_once()
    finally:
        await worker.stop()
    by_sub = {(d["subscription"], d["event_type"]): d for d in await list_deliveries(pool)}
    assert set(by_sub) == {
        ("tickets", "ticket.created"),
        ("evil", "ticket.created"),
        ("evil", "call.ended"),
    }
    assert by_sub[("evil", "call.ended")]["last_error"] == "host not in webhook_allowed_hosts"
    assert [r.body["type"] for r in receiver.requests] == ["ticket.created"]


def test_subscription_settings_are_validated() -> None:
    secret = generate_secret()
    good = {"name": "b", "url": "https://talep.example.org/hook", "secrets": [secret]}
    settings = Settings(webhooks=(good,), webhook_allowed_hosts=("talep.example.org",))
    [sub] = subscriptions_from(settings)
    assert sub.wants("call.ended") and sub.secrets == (secret,)
    with pytest.raises(ConfigError, match="webhook_allowed_hosts"):
        subscriptions_from(Settings(webhooks=(good,)))
    with pytest.raises(ConfigError, match="secret"):
        subscriptions_from(
            Settings(
                webhooks=({**good, "secrets": ["nope"]},),
                webhook_allowed_hosts=("talep.example.org",),
            )
        )
    with pytest.raises(ConfigError, match="matches none"):
        subscriptions_from(
            Settings(
                webhooks=({**good, "events": ["tickets.*"]},),
                webhook_allowed_hosts=("talep.example.org",),
            )
        )


def test_subscriptions_from_the_environment() -> None:
    secret = generate_secret()
    hook = {"name": "b", "url": "https://talep.example.org/hook", "secrets": [secret]}
    settings = load_settings(
        env={
            "CALLCENTER_WEBHOOKS": json.dumps([{**hook, "events": ["ticket.*"]}]),
            "CALLCENTER_WEBHOOK_ALLOWED_HOSTS": "talep.example.org,other.example.org",
        }
    )
    [sub] = subscriptions_from(settings)
    assert sub.wants("ticket.updated") and not sub.wants("call.ended")
    assert secret not in repr(settings)


def test_reference_library_accepts_our_secret_format() -> None:
    secret = generate_secret()
    Webhook(secret)  # raises if the library cannot read it

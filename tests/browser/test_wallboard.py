"""The wallboard in headless Chromium while a recorded call goes through the service."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from playwright.async_api import Page, expect

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.metrics import http as metrics_http
from callcenter.model import CallAnswered, Effect, MemberChanged, QueueJoined
from callcenter.web import wallboard
from callcenter.web.auth import create_token
from tests.metrics_support import LiveFeed, serving

AGENT = "Zeynep Kaya"  # who answers in the `answered` trace


@pytest.fixture
async def served() -> AsyncIterator[tuple[Service, str]]:
    """A DB-less service (wrap-up 2 s) with the wallboard and metrics, on a local port."""
    service = Service(Settings(wrapup_seconds={"*": 2.0}, wallboard_requires_token=False))
    async with serving(service, [metrics_http.setup, wallboard.setup]) as base:
        yield service, base


def _joined(_: str, effects: list[Effect]) -> bool:
    return any(isinstance(e, QueueJoined) for e in effects)


def _on_call(_: str, effects: list[Effect]) -> bool:
    return any(isinstance(e, MemberChanged) and e.member.in_call for e in effects)


async def test_wallboard_follows_a_caller_and_an_agent(
    page: Page, page_errors: list[str], served: tuple[Service, str]
) -> None:
    service, base = served
    feed = LiveFeed(service, "answered")
    assert feed.until(lambda text, _: text.startswith("Event: CallcenterResyncEnd"))

    await page.goto(base + "/wallboard")
    # Turkish first.
    await expect(page.locator("h1")).to_have_text("Çağrı Merkezi — Canlı Pano")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    genel = page.locator('[data-queue="genel"]')
    waiting = genel.locator('[data-field="waiting"] .num')
    agent = page.locator(f'tr[data-agent="{AGENT}"]')
    await expect(waiting).to_have_text("0")
    await expect(agent).to_have_attribute("data-state", "available")

    # A caller enters the queue: waiting, with an oldest wait that ticks in the page.
    assert feed.until(_joined)
    await expect(waiting).to_have_text("1")
    oldest = genel.locator('[data-field="oldest"] .num')
    await expect(oldest).to_have_text(re.compile(r"^00:0[1-9]$"))
    await expect(genel.locator('[data-field="offered"] .num')).to_have_text("1")

    # The agent answers: nobody waits, one answered today, the agent is on the call.
    assert feed.until(lambda _, effects: any(isinstance(e, CallAnswered) for e in effects))
    assert feed.until(_on_call)
    await expect(waiting).to_have_text("0")
    await expect(genel.locator('[data-field="answered"] .num')).to_have_text("1")
    await expect(agent).to_have_attribute("data-state", "on_call")
    await expect(agent.locator('[data-field="state"]')).to_have_text("Görüşmede")

    # The call ends: wrap-up, then available again, with no further event from Asterisk.
    feed.until()
    await expect(agent).to_have_attribute("data-state", re.compile("^(wrapup|available)$"))
    await expect(agent).to_have_attribute("data-state", "available", timeout=15_000)
    await expect(genel.locator('[data-field="aht"] .num')).not_to_have_text("–")

    # The English switch.
    await page.click("#lang")
    await expect(page.locator("h1")).to_have_text("Call Center — Live Wallboard")
    await expect(agent.locator('[data-field="state"]')).to_have_text("Available")
    assert page_errors == []


async def test_wallboard_asks_for_a_token_and_keeps_it_out_of_urls(
    page: Page, page_errors: list[str], pool: asyncpg.Pool
) -> None:
    service = Service(Settings())
    service.pool = pool
    supervisor, _ = await create_token(pool, role="supervisor", name="floor TV")
    agent_token, _ = await create_token(pool, role="agent", name="a", agent=AGENT)
    async with serving(service, [wallboard.setup]) as base:
        await page.goto(base + "/wallboard")
        # A clear state instead of "disconnected, retrying" forever.
        await expect(page.locator("#conn")).to_have_attribute("data-state", "noAuth")
        await expect(page.locator("#auth")).to_be_visible()
        await expect(page.locator("#auth h2")).to_have_text(
            "Bu pano için süpervizör anahtarı gerekiyor"
        )
        await expect(page.locator("#board")).to_be_hidden()
        # A wrong key, then an agent's key: each says what is wrong.
        await page.locator('#auth input[name="token"]').fill("cct_wrong")
        await page.locator("#auth button").click()
        await expect(page.locator("#auth-error")).to_have_text(
            "Bu anahtar geçersiz ya da iptal edilmiş."
        )
        await page.locator('#auth input[name="token"]').fill(agent_token)
        await page.locator("#auth button").click()
        await expect(page.locator("#auth-error")).to_contain_text("süpervizör gerekir")
        # The supervisor's key: live, and it travels as a WebSocket subprotocol, not in a URL.
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        await page.locator('#auth input[name="token"]').fill(supervisor)
        await page.locator("#auth button").click()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await expect(page.locator("#auth")).to_be_hidden()
        assert not [u for u in requests if "token=" in u]
        # A reload stays logged in (this browser keeps the key), still with no token in URLs.
        await page.reload()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        assert "token=" not in page.url
        # An old TV link with ?token= works once and leaves the address bar clean.
        await page.evaluate("localStorage.clear()")
        await page.goto(f"{base}/wallboard?token={supervisor}&lang=en")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await expect(page.locator("#conn")).to_have_text("Live")
        assert "token=" not in page.url and "lang=en" in page.url
    # The refused sockets and probes are logged by the browser itself; nothing else may be.
    expected = ("401", "403", "Authentication failed")
    assert [e for e in page_errors if not any(x in e for x in expected)] == []


async def test_a_long_wait_turns_the_tile_amber_then_red_on_the_floors_clock(
    page: Page, page_errors: list[str]
) -> None:
    # The floor's clock runs 30 times faster than the wall clock (as in the demo): the page
    # ticks waits at that pace, so thresholds of 20 and 60 s are crossed within seconds.
    t0 = time.time()
    service = Service(
        Settings(
            wallboard_requires_token=False,
            wallboard_wait_amber={"*": 20.0},
            wallboard_wait_red={"*": 60.0, "sosyal-yardim": 600.0},
        ),
        clock=lambda: t0 + (time.time() - t0) * 30,
        clock_rate=30,
    )
    async with serving(service, [wallboard.setup]) as base:
        feed = LiveFeed(service, "answered")
        assert feed.until(_joined)
        await page.goto(base + "/wallboard")
        genel = page.locator('[data-queue="genel"]')
        await expect(genel.locator('[data-field="waiting"] .num')).to_have_text("1")
        await expect(genel).to_have_attribute("data-level", "amber", timeout=5_000)
        await expect(genel).to_have_attribute("data-level", "red", timeout=5_000)
        await expect(genel.locator('[data-field="oldest"]')).to_have_attribute("data-level", "red")
        # Minutes of floor time, not wall seconds: the wait reads over a minute already.
        text = await genel.locator('[data-field="oldest"] .num').inner_text()
        assert int(text.split(":")[0]) >= 1, text
        tip = await genel.locator('[data-field="oldest"]').get_attribute("title")
        assert tip == "En uzun bekleme: sarı 20 sn, kırmızı 60 sn üstünde"
    assert page_errors == []


async def test_service_level_below_its_thresholds_colours_the_tile(
    page: Page, page_errors: list[str]
) -> None:
    # One caller answered within 20 s: 100 %, under an amber threshold of 100.5 %.
    service = Service(
        Settings(
            wallboard_requires_token=False,
            wallboard_sl_amber={"*": 100.5},
            wallboard_sl_red={"*": 100.0},
            wrapup_seconds={"*": 1.0},
        )
    )
    async with serving(service, [wallboard.setup]) as base:
        feed = LiveFeed(service, "answered")
        feed.until()
        await page.goto(base + "/wallboard")
        genel = page.locator('[data-queue="genel"]')
        sl = genel.locator('[data-field="sl"]')
        await expect(sl.locator(".num")).to_have_text("%100")
        await expect(sl).to_have_attribute("data-level", "amber")
        await expect(genel).to_have_attribute("data-level", "amber")
    assert page_errors == []


async def test_many_queues_make_a_compact_board(page: Page, page_errors: list[str]) -> None:
    service = Service(Settings(wallboard_requires_token=False, wallboard_compact_above=1))
    async with serving(service, [wallboard.setup]) as base:
        feed = LiveFeed(service, "transfer")  # two queues
        feed.until()
        await page.goto(base + "/wallboard")
        await expect(page.locator("body")).to_have_class(re.compile(r"\bcompact\b"))
        await expect(page.locator(".queue")).to_have_count(2)
        # Compact tiles keep the waiting count and the service level, drop the state chips.
        await expect(page.locator(".queue .chips").first).to_be_hidden()
        await expect(page.locator('.queue [data-field="sl"]').first).to_be_visible()
        await page.goto(base + "/wallboard?compact=0")
        await expect(page.locator("body")).not_to_have_class(re.compile(r"\bcompact\b"))
    assert page_errors == []


async def test_an_empty_floor_says_the_day_is_over_until_agents_log_in(
    page: Page, page_errors: list[str]
) -> None:
    service = Service(Settings(wallboard_requires_token=False))
    async with serving(service, [wallboard.setup]) as base:
        await page.goto(base + "/wallboard")
        closed = page.locator("#closed")
        await expect(closed).to_be_visible()
        await expect(closed).to_contain_text("Mesai sona erdi")
        await page.click("#lang")
        await expect(closed).to_contain_text("The day is over")
        # Agents log in (the trace's login snapshot) and a caller waits: the floor is open.
        feed = LiveFeed(service, "answered")
        assert feed.until(_joined)
        await expect(closed).to_be_hidden()
        await expect(page.locator(f'tr[data-agent="{AGENT}"]')).to_be_visible()
    assert page_errors == []

"""The wallboard in headless Chromium while a recorded call goes through the service."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.metrics import http as metrics_http
from callcenter.model import CallAnswered, Effect, MemberChanged, QueueJoined
from callcenter.web import wallboard
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

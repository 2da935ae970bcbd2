"""The /reports page in headless Chromium over a real PostgreSQL with recorded calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.replay import replay_file
from callcenter.store import Batch, write_batch
from callcenter.web import reports
from callcenter.web.auth import create_token
from callcenter.web.server import make_app

TRACES = Path(__file__).resolve().parents[1] / "traces"
DAY = "2026-11-28"  # the recorded scenarios ran that evening, 18:2x-18:3x Istanbul time


@pytest.fixture
async def served(pool: asyncpg.Pool, db_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The report feature on a socket over 12 recorded calls, one of them a request."""
    calls = []
    for scenario in ("concurrent", "transfer", "queue_timeout", "ivr_self_service"):
        calls += replay_file(TRACES / scenario / "ami.jsonl.gz", server=scenario)
    answered = next(c for c in calls if c.outcome == "answered")
    async with pool.acquire() as conn:
        await asyncio.wait_for(write_batch(conn, Batch(calls=calls)), 60)
        ticket = await conn.fetchval(
            "INSERT INTO tickets (reference, category, channel) "
            "VALUES ('2026-000001', 'masa-sandalye', 'phone') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO ticket_calls (ticket_id, server, linkedid, channel) "
            "VALUES ($1, $2, $3, 'phone')",
            ticket,
            answered.server,
            answered.linkedid,
        )
    service = Service(Settings(database_url=db_url, spool_dir=str(tmp_path), fastagi_port=0))
    await asyncio.wait_for(service.start(ami=False), 60)
    server = TestServer(make_app(service, [reports.setup]))
    try:
        await server.start_server()
        token, _ = await create_token(service.pool, role="supervisor", name="browser test")
        yield str(server.make_url("")).rstrip("/"), token
    finally:
        await server.close()
        await asyncio.wait_for(service.stop(), 60)


async def bars(page: Page, chart: str) -> dict[str, float]:
    """The bars (or points) of a chart: label -> value."""
    marks = page.locator(f"#{chart} [data-label]")
    out = {}
    for i in range(await marks.count()):
        mark = marks.nth(i)
        out[await mark.get_attribute("data-label") or ""] = float(
            await mark.get_attribute("data-value") or 0
        )
    return out


async def test_report_page_shows_the_period_in_turkish_then_english(
    page: Page, page_errors: list[str], served: tuple[str, str]
) -> None:
    base, token = served
    await page.goto(f"{base}/reports?token={token}&from={DAY}&to={DAY}&by=queue")
    await expect(page.locator("h1")).to_have_text("Çağrı Merkezi Raporu")
    await expect(page.locator("#status")).to_have_attribute("data-state", "ok")
    # The token moved out of the address bar (into this browser's storage).
    assert "token=" not in page.url
    # The municipality's table.
    await expect(page.locator('#summary [data-field="calls"]')).to_have_text("12")
    await expect(page.locator('#summary [data-field="requests"]')).to_have_text("1")
    await expect(page.locator('#summary [data-field="avg_talk"]')).to_have_text("0:08")
    await expect(page.locator('#summary [data-field="avg_wait"]')).to_have_text("0:07")
    # Turkish percentages, the sign first, as the wallboard writes them.
    await expect(page.locator('[data-kpi="kSl"] .value')).to_have_text("%69,2")
    # Dates as the floor writes them, not as the browser's (en-US) locale would.
    await expect(page.locator('input[name="from"]')).to_have_value("28.11.2026")

    # Calls per hour of the day: 24 bars, the calls in the evening hours.
    hours = await bars(page, "chart-hours")
    assert len(hours) == 24 and sum(hours.values()) == 12
    assert {h for h, n in hours.items() if n} <= {"18", "19"}
    # Service level per day: one point, the day's.
    assert await bars(page, "chart-sl") == {DAY: pytest.approx(0.6923)}
    # Waits of the 13 queue visits, and the one request's category, by its Turkish name.
    waits = await bars(page, "chart-wait")
    assert len(waits) == 8 and sum(waits.values()) == 13
    assert await bars(page, "chart-categories") == {"Masa-sandalye talebi": 1.0}
    # One row per queue, and the IVR-only call's row says what it is.
    rows = page.locator("#groups tbody tr")
    await expect(rows).to_have_count(3)
    await expect(
        page.locator('#groups tr[data-key="genel"] td[data-field="offered"]')
    ).to_have_text("8")
    no_queue = page.locator('#groups tr[data-key=""]')
    await expect(no_queue.locator("td").first).to_have_text("Kuyruğa girmeyen")
    assert "IVR" in (await no_queue.get_attribute("title") or "")
    # Plain headers, each explained by a tooltip (no "ACS").
    asa = page.locator('#groups th[data-field="asa_s"]')
    await expect(asa).to_have_text("Ort. cevaplama")
    assert "cevaplama süresi" in (await asa.get_attribute("title") or "")
    assert "ACS" not in await page.locator("#groups thead").inner_text()
    # No link the page built carries the token; the CSV comes through a header.
    assert await page.locator('a[href*="token="]').count() == 0
    async with page.expect_download() as download:
        await page.locator("#csv").click()
    got = await download.value
    assert got.suggested_filename == f"rapor_{DAY}_{DAY}_queue.csv"
    text = await asyncio.to_thread(Path(await got.path()).read_text, encoding="utf-8")
    assert text.startswith("queue,calls,") and "genel" in text

    await page.locator("#lang").click()
    await expect(page.locator("h1")).to_have_text("Call Center Report")
    await expect(page.locator("#summary th").first).to_have_text("Calls to the call center")
    await expect(page.locator('[data-kpi="kSl"] .value')).to_have_text("69.2%")
    assert await bars(page, "chart-categories") == {"Table and chair request": 1.0}

    # The footer's definitions are a page of the app.
    await page.locator("#definitions").click()
    await expect(page.locator("h1")).to_have_text("Rakamların tanımları")
    await expect(page.locator("#asa")).to_contain_text("Ort. cevaplama süresi")
    assert page_errors == []


async def test_report_page_asks_for_a_token(
    page: Page, page_errors: list[str], served: tuple[str, str]
) -> None:
    base, token = served
    await page.goto(f"{base}/reports?from={DAY}")
    await expect(page.locator("#auth")).to_be_visible()
    await expect(page.locator("#status")).to_have_attribute("data-state", "error")
    await page.locator('#auth input[name="token"]').fill(token)
    await page.locator("#auth button").click()
    await expect(page.locator('#summary [data-field="calls"]')).to_have_text("12")
    await expect(page.locator("#auth")).to_be_hidden()
    # The queue list is filled from the period's queues; choosing one filters the report.
    await page.locator('select[name="queue"]').select_option("sosyal-yardim")
    await page.locator("#show").click()
    await expect(page.locator('[data-kpi="kOffered"] .value')).to_have_text("5")
    assert [e for e in page_errors if "401" not in e] == []

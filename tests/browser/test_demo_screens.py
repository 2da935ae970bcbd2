"""The demo's wallboard and reports at four window sizes, in Chromium, while the demo runs.

The pages must fit: on a 1080p TV (and a 1600×1000 monitor) the agents' table is on the
screen with the queues; at 1280×720 and on a phone nothing spills sideways. Screenshots go to
``$CALLCENTER_SCREENSHOTS`` (a directory) when set, else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import socket
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from callcenter.demo import DemoOptions, run_demo
from tests.conftest import server_url

SIZES = ((1600, 1000), (1920, 1080), (1280, 720), (390, 844))
DAY = date(2026, 3, 3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def demo() -> AsyncIterator[tuple[str, str, str]]:
    """A demo running at 60x on a fresh database: (base URL, supervisor token, TV link)."""
    name = f"cc_demo_shots_{secrets.token_hex(4)}"
    port = _free_port()
    out = io.StringIO()
    stop = asyncio.Event()
    options = DemoOptions(
        speed=60, http_port=port, seed=5, database_url=server_url(), database_name=name, day=DAY
    )
    task = asyncio.create_task(run_demo(options, out, stop))
    try:
        marker = "supervisor token for more screens (the pages ask for it): "
        for _ in range(300):
            if marker in out.getvalue() or task.done():
                break
            await asyncio.sleep(0.1)
        assert marker in out.getvalue(), out.getvalue()
        token = out.getvalue().split(marker, 1)[1].split()[0]
        tv_link = out.getvalue().split("demo: wallboard  ", 1)[1].split()[0]
        await asyncio.sleep(12)  # a quarter of a simulated morning: calls, waits, requests
        yield f"http://127.0.0.1:{port}", token, tv_link
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
        conn = await asyncpg.connect(server_url())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def _shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("CALLCENTER_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


async def _no_sideways_scroll(page: Page) -> None:
    overflow = await page.evaluate(
        "document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{overflow}px wider than the window"


async def test_demo_pages_fit_four_screens(
    browser: Browser, demo: tuple[str, str, str], tmp_path: Path
) -> None:
    base, token, tv_link = demo
    shots = _shots(tmp_path)
    for width, height in SIZES:
        context = await browser.new_context(
            viewport={"width": width, "height": height}, locale="en-US"
        )
        context.set_default_timeout(15_000)
        errors: list[str] = []
        try:
            page = await context.new_page()
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            if width == 1920:
                # The TV: the demo's one-time link opens a cookie session, then the board.
                await page.goto(tv_link)
                assert page.url == f"{base}/wallboard"
            else:
                # Another screen: the page asks for the supervisor's token once.
                await page.goto(f"{base}/wallboard")
                await expect(page.locator("#auth")).to_be_visible()
                await page.locator('#auth input[name="token"]').fill(token)
                await page.locator("#auth button").click()
            await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
            await expect(page.locator("#agents tbody tr[data-agent]").first).to_be_visible()
            await page.wait_for_timeout(1500)  # a few ticks of the simulated clock
            # The simulated day's date, on the simulated clock.
            await expect(page.locator("#day")).to_contain_text("3 Mart 2026")
            if width >= 1200:
                # TV and monitors: the agents' table is on the screen, beside the queues.
                # (Read in one go: the page redraws its rows every second.)
                bottoms = await page.evaluate(
                    "[...document.querySelectorAll('#agents tbody tr[data-agent]')]"
                    ".slice(0, 4).map((r) => r.getBoundingClientRect().bottom)"
                )
                assert len(bottoms) == 4 and max(bottoms) <= height, (width, bottoms)
                scroll = await page.evaluate("document.scrollingElement.scrollHeight")
                assert scroll <= height + 1, (width, scroll)
            await _no_sideways_scroll(page)
            await page.screenshot(path=str(shots / f"wallboard_{width}x{height}.png"))

            await page.goto(f"{base}/reports?by=agent")
            await expect(page.locator("#status")).to_have_attribute("data-state", "ok")
            # "Today" is the simulated day, from the floor's clock.
            await page.locator('[data-range="today"]').click()
            await expect(page.locator('input[name="from"]')).to_have_value("03.03.2026")
            await expect(page.locator("#status")).to_have_attribute("data-state", "ok")
            await expect(page.locator("#groups tbody tr").first).to_be_visible()
            # Every agent who worked has logged-in time and occupancy, not "–".
            logged = await page.locator('#groups td[data-field="logged_in_s"]').all_inner_texts()
            assert logged and all(t != "–" for t in logged), logged
            if width > 600:
                await _no_sideways_scroll(page)  # the wide table scrolls inside its section
            await page.screenshot(path=str(shots / f"reports_{width}x{height}.png"), full_page=True)
            assert errors == []
        finally:
            await context.close()
    # The TV link was used up: opened again, it says so and asks for a token.
    context = await browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        page = await context.new_page()
        await page.goto(tv_link)
        await expect(page.locator("#auth-error")).to_contain_text("kullanılmış")
        assert "login=" not in page.url and "code=" not in page.url
    finally:
        await context.close()

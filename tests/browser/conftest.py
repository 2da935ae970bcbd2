"""Browser fixtures: headless Debian Chromium driven by Playwright (never `playwright install`).

``browser`` is a launched Chromium for one test, ``page`` a fresh 1920×1080 page in its own
context whose JavaScript errors are collected in ``page_errors``. Every test under
tests/browser is marked ``browser``; they are skipped where /usr/bin/chromium is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
_HERE = Path(__file__).resolve().parent
HAVE_CHROMIUM = CHROMIUM.exists()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the tests of this directory as browser tests."""
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for one test."""
    if not HAVE_CHROMIUM:
        pytest.skip("Debian chromium is not installed (scripts/system-deps.sh installs it)")
    async with async_playwright() as pw:
        launched = await asyncio.wait_for(
            pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
            ),
            60,
        )
        try:
            yield launched
        finally:
            await asyncio.wait_for(launched.close(), 30)


@pytest.fixture
def page_errors() -> list[str]:
    """JavaScript errors and console errors the page reported."""
    return []


@pytest.fixture
async def page(browser: Browser, page_errors: list[str]) -> AsyncIterator[Page]:
    """A fresh page (TV-sized) in a context of its own."""
    # An English browser: the pages must write Turkish numbers and dates all the same.
    context = await browser.new_context(
        viewport={"width": 1920, "height": 1080}, locale="en-US", accept_downloads=True
    )
    context.set_default_timeout(10_000)
    opened = await context.new_page()
    opened.on("pageerror", lambda exc: page_errors.append(str(exc)))
    opened.on("console", lambda msg: page_errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield opened
    finally:
        await asyncio.wait_for(context.close(), 30)

"""The pop page under the Content-Security-Policy: its one inline style applies, nothing else."""

from __future__ import annotations

from typing import Any

from playwright.async_api import ConsoleMessage, Page

from callcenter.web.auth import create_token
from tests.integration.api_support import Trace, event, running


async def test_the_pop_page_is_styled_and_reports_no_violation(
    page: Page, page_errors: list[str], pool: Any, db_url: str
) -> None:
    violations: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if "Content Security" in message.text:
            violations.append(message.text)

    page.on("console", console)
    async with running(db_url) as (service, server):
        token, _ = await create_token(pool, role="supervisor", name="s")
        Trace(service, "answered").until(event("AgentCalled"))
        response = await page.goto(
            str(server.make_url(f"/pop?linkedid=1795884362.0&token={token}"))
        )
        assert response is not None and "frame-ancestors 'none'" in (
            await response.header_value("content-security-policy") or ""
        )
        assert await page.locator("#caller").inner_text() == "Ayşe Yılmaz"
        # The hashed <style> applied: body is 16 px with the 40 rem cap.
        size = await page.evaluate("getComputedStyle(document.body).fontSize")
        width = await page.evaluate("getComputedStyle(document.body).maxWidth")
        assert (size, width) == ("16px", "640px")
        # An inline script injected the way an XSS would is refused by the policy.
        await page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.pwned = 1'; document.body.appendChild(s); }"
        )
        assert await page.evaluate("window.pwned === undefined")
    assert any("script" in v for v in violations)
    # Only the refused script, and the browser's own /favicon.ico 404.
    assert [e for e in page_errors if "Content Security" not in e and "404" not in e] == []

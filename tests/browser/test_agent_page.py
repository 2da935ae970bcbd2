"""The agent page in headless Chromium: the call rings, the pop shows the caller's history, the
agent marks a request from the keyboard alone, the ticket exists and its webhook arrives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Page, expect

from callcenter.web.auth import create_token
from callcenter.webhooks import generate_secret
from tests.integration.api_support import Trace, event, running, wait_for
from tests.integration.webhook_receiver import Receiver


async def seed_earlier_call(pool: Any) -> None:
    await pool.execute(
        """
        INSERT INTO calls (server, linkedid, uniqueid, caller_number, caller_name, queue, agent,
                           outcome, started_at, wait_s, talk_s)
        VALUES ('pbx1', '1700000000.7', '1700000000.7', '05321234567', 'Ayşe Yılmaz', 'genel',
                'Elif Şahin', 'answered', $1, 12.0, 65.0)
        """,
        datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    )


async def test_ring_pop_request_ticket_webhook(
    page: Page, page_errors: list[str], pool: Any, db_url: str
) -> None:
    await seed_earlier_call(pool)
    receiver = Receiver(secret=generate_secret())
    await receiver.start()
    hook = {"name": "backend", "url": receiver.url, "secrets": [receiver.secret]}
    try:
        async with running(db_url, webhooks=(hook,), webhook_allowed_hosts=("127.0.0.1",)) as (
            service,
            server,
        ):
            token, _ = await create_token(pool, role="agent", name="z", agent="Zeynep Kaya")
            await page.goto(str(server.make_url(f"/agent?token={token}")))
            await expect(page.locator("#link")).to_have_attribute("data-state", "on")
            await expect(page.locator("h1")).to_have_text("Temsilci masası")
            assert "token=" not in page.url  # the token does not linger in the address bar

            # The call rings: the pop is on screen before the agent picks up.
            trace = Trace(service, "answered")
            assert trace.until(event("AgentCalled"))
            await expect(page.locator("#pop")).to_have_attribute("data-stage", "ringing")
            await expect(page.locator("#caller-name")).to_have_text("Ayşe Yılmaz")
            await expect(page.locator("#caller-national")).to_have_text("0532 123 45 67")
            await expect(page.locator("#recent tbody")).to_contain_text("Elif Şahin")
            await expect(page.locator("#queue")).to_have_text("genel")

            # Answered, talked, hung up: the disposition form takes the focus.
            trace.rest()
            await expect(page.locator("#pop")).to_have_attribute("data-stage", "ended")
            await expect(page.locator("#kind-info")).to_be_focused()

            # Keyboard only: "Talep", a category, a note, save.
            await page.keyboard.press("ArrowDown")
            await expect(page.locator("#kind-request")).to_be_checked()
            await page.keyboard.press("Tab")
            await expect(page.locator("#category")).to_be_focused()
            await page.keyboard.type("Masa")
            await expect(page.locator("#category")).to_have_value("masa-sandalye")
            await page.keyboard.press("Tab")
            await page.keyboard.type("Düğün için 20 masa")
            await page.keyboard.press("Tab")
            await expect(page.locator("#save")).to_be_focused()
            await page.keyboard.press("Enter")
            result = page.locator("#result")
            await expect(result).to_contain_text("Talep açıldı: ")
            reference = (await result.inner_text()).rsplit(" ", 1)[-1]

            row = await pool.fetchrow(
                "SELECT category, note, caller_number, agent FROM tickets WHERE reference = $1",
                reference,
            )
            assert dict(row) == {
                "category": "masa-sandalye",
                "note": "Düğün için 20 masa",
                "caller_number": "+905321234567",
                "agent": "Zeynep Kaya",
            }

            def arrived() -> bool:
                return any(
                    r.body["type"] == "ticket.created"
                    and r.body["data"]["ticket"]["reference"] == reference
                    for r in receiver.requests
                )

            await wait_for(arrived, 20)
            assert all(r.verified for r in receiver.requests)

            # The English switch, from the keyboard too.
            await page.locator("#lang").focus()
            await page.keyboard.press("Enter")
            await expect(page.locator("h1")).to_have_text("Agent desk")
            await expect(page.locator("html")).to_have_attribute("lang", "en")
    finally:
        await receiver.stop()
    assert page_errors == []

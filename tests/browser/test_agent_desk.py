"""The agent's desk in headless Chromium against the simulator over real AMI: a one-time link
logs in, each control is used from the keyboard alone and its AMI action is checked on the
simulator's side; the layout is checked (and photographed) at four window sizes.

Screenshots go to ``$SCREENSHOT_DIR`` (default ``var/screenshots``) as ``agent-WxH.png``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from callcenter.web.auth import create_login_link, create_token
from tests.integration.desk_support import AGENT, IFACE, Desk, desk_running, seed_abandoned

SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "var/screenshots"))
SIZES = ((1600, 1000), (1920, 1080), (1280, 720), (390, 844))
CALLER = "05321234567"


async def seed(pool: Any) -> None:
    """An earlier answered call and an open ticket of the caller; three callers who hung up."""
    await seed_abandoned(pool, "old.1", CALLER, "Ayşe Yılmaz", 0.9, outcome="answered")
    await pool.execute(
        """
        INSERT INTO tickets (reference, category, channel, caller_number, caller_name)
        VALUES ('2026-000412', 'masa-sandalye', 'phone', '+905321234567', 'Ayşe Yılmaz')
        """
    )
    await seed_abandoned(pool, "ab.1", "05447778899", "Emine Koç", 0.5)
    await seed_abandoned(pool, "ab.2", "02165550123", "Hüseyin Aydın", 0.4, outcome="timeout")
    await seed_abandoned(pool, "ab.3", "05051234567", "Şükrü Çetin", 0.3)


async def login(page: Page, desk: Desk, pool: Any) -> None:
    """Opens the desk through a one-time login link, as the demo prints it."""
    _, principal = await create_token(pool, role="agent", name="z", agent=AGENT, interface=IFACE)
    code = await create_login_link(pool, principal.token_id, 60)
    await page.goto(str(desk.server.make_url(f"/agent/login?code={code}")))
    await expect(page.locator("#link")).to_have_attribute("data-state", "on")
    assert page.url.endswith("/agent")  # no code, no token in the address bar


async def test_each_control_from_the_keyboard(
    page: Page, page_errors: list[str], pool: Any, db_url: str
) -> None:
    await seed(pool)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    async with desk_running(db_url, agent_wrapup_seconds=300.0) as desk:
        await login(page, desk, pool)
        state = page.locator("#state")
        await expect(state).to_have_text("Müsait")
        await expect(page.locator("#whoami")).to_have_text(AGENT)

        # Pause with a reason: choose it, Tab to the button, Enter.
        await page.locator("#reason").focus()
        await page.keyboard.type("Yemek")
        await expect(page.locator("#reason")).to_have_value("yemek")
        await page.keyboard.press("Tab")
        await expect(page.locator("#pause")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(state).to_have_text("Molada")
        await expect(page.locator("#state-reason")).to_have_text("(Yemek arası)")
        assert desk.received("QueuePause")[-1]["Reason"] == "yemek"
        assert all(m.paused and m.reason == "yemek" for m in desk.sim_members().values())

        # Unpause: the "Hazırım" button takes the pause box's place, and the focus.
        await expect(page.locator("#unpause")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.locator("#pause")).to_be_focused()
        await expect(state).to_have_text("Müsait")
        assert desk.received("QueuePause")[-1]["Paused"] == "false"
        assert not any(m.paused for m in desk.sim_members().values())

        # Leave and re-join a queue with the space bar.
        box = page.locator("#queue-sosyal-yardim")
        await expect(box).to_be_checked()
        await box.focus()
        await page.keyboard.press("Space")
        await expect(box).not_to_be_checked()
        await expect(box).to_be_enabled()
        assert desk.received("QueueRemove")[-1]["Queue"] == "sosyal-yardim"
        assert set(desk.sim_members()) == {"genel"}
        await page.locator("#queue-sosyal-yardim").focus()
        await page.keyboard.press("Space")
        await expect(page.locator("#queue-sosyal-yardim")).to_be_checked()
        assert desk.received("QueueAdd")[-1]["MemberName"] == AGENT
        assert set(desk.sim_members()) == {"genel", "sosyal-yardim"}

        # A call rings: the pop has the caller's earlier call and open ticket.
        desk.sim.pbx.globals["RD_DEFAULT"] = "8"  # the phone rings 8 s before pick-up
        desk.ring(CALLER, talk=5.0)
        for _ in range(6):
            desk.advance(0.5)
        await expect(page.locator("#pop")).to_have_attribute("data-stage", "ringing")
        await expect(page.locator("#caller-name")).to_have_text("Ayşe Yılmaz")
        await expect(page.locator("#recent tbody tr")).to_have_count(1)
        await expect(page.locator("#recent tbody")).to_contain_text("Elif Şahin")
        await expect(page.locator("#recent tbody")).to_contain_text("Cevaplandı")
        await expect(page.locator("#tickets")).to_contain_text("2026-000412")
        await expect(page.locator("#tickets")).to_contain_text("Masa-sandalye talebi")
        for _ in range(20):
            desk.advance(1.0)

        # The call ended: after-call work starts, counts down, and ends from the keyboard.
        await expect(page.locator("#pop")).to_have_attribute("data-stage", "ended")
        await expect(state).to_have_text("Görüşme sonrası")
        await expect(page.locator("#wrapup")).to_be_visible()
        await expect(page.locator("#wrapup-left")).to_contain_text("sn")
        assert desk.received("QueuePause")[-1]["Reason"] == "wrapup"
        await expect(page.locator("#kind-info")).to_be_focused()
        await shots(page, desk)
        await page.locator("#wrapup-end").focus()
        await page.keyboard.press("Enter")
        await expect(state).to_have_text("Müsait")
        assert desk.received("QueuePause")[-1]["Paused"] == "false"
        assert not any(m.paused for m in desk.sim_members().values())

        # Call back: the first caller on the list, one key.
        first = page.locator("#callbacks li").first
        await expect(page.locator("#callbacks li")).to_have_count(3)
        await expect(first).to_contain_text("0505 123 45 67")
        await first.locator("button").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#control-result")).to_contain_text("Telefonunuz çalıyor")
        sent = desk.sim.pbx.agent_originates[-1]
        assert (sent["Channel"], sent["Context"], sent["Exten"]) == (
            IFACE,
            "agent-phones",
            "05051234567",
        )
        # Called back: it moves to the end of the list, marked.
        await expect(page.locator("#callbacks li").last).to_contain_text("Geri arandı")
        row = await pool.fetchrow("SELECT agent, linkedid FROM agent_callbacks")
        assert (row["agent"], row["linkedid"]) == (AGENT, "ab.3")

        # English.
        await page.locator("#lang").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("h1")).to_have_text("Agent desk")
        await expect(state).to_have_text("Available")
        assert page_errors == []  # (checked before the server goes and the page reconnects)
    assert not [u for u in urls if "token=" in u]  # no token in any URL the page built


async def shots(page: Page, desk: Desk) -> None:
    """At each size: Kaydet above the fold, nothing wider than the window; a screenshot."""
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    for width, height in SIZES:
        await page.set_viewport_size({"width": width, "height": height})
        if width >= 1280:
            box = await page.locator("#save").bounding_box()
            assert box is not None and box["y"] + box["height"] <= height, (width, box)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (width, overflow)
        table = await page.evaluate(
            "(() => { const t = document.getElementById('recent');"
            " return t.scrollWidth - t.parentElement.clientWidth; })()"
        )
        assert table <= 0, (width, table)
        # Numbers stay on one line: one client rect each.
        lines = await page.evaluate(
            "[...document.querySelectorAll('.num')].filter(e => e.offsetParent)"
            ".map(e => e.getClientRects().length)"
        )
        assert lines and max(lines) == 1, (width, lines)
        await page.screenshot(path=str(SHOTS / f"agent-{width}x{height}.png"), full_page=False)
    await page.set_viewport_size({"width": 1920, "height": 1080})


async def test_login_form_says_where_to_get_a_key_and_what_went_wrong(
    browser: Browser, pool: Any, db_url: str
) -> None:
    async with desk_running(db_url) as desk:
        context = await browser.new_context(viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        try:
            await page.goto(str(desk.server.make_url("/agent")))
            await expect(page.locator("#login")).to_be_visible()
            await expect(page.locator("#token")).to_be_focused()
            await expect(page.locator("#login-help")).to_contain_text("süpervizörünüzden")
            await expect(page.locator("#login-help")).to_contain_text("--link")
            await expect(page.locator("#login-error")).to_be_hidden()
            await page.keyboard.type("cct_yanlis")
            await page.keyboard.press("Enter")
            await expect(page.locator("#login-error")).to_contain_text("tanınmadı")
            await expect(page.locator("#desk")).to_be_hidden()
            await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
            for width, height in ((1280, 720), (390, 844)):
                await page.set_viewport_size({"width": width, "height": height})
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, (width, overflow)
                await page.screenshot(path=str(SHOTS / f"agent-login-{width}x{height}.png"))
            await page.set_viewport_size({"width": 1280, "height": 720})

            # The right key logs in (a session cookie, not a stored token).
            token, _ = await create_token(
                pool, role="agent", name="z", agent=AGENT, interface=IFACE
            )
            await page.locator("#token").fill(token)
            await page.keyboard.press("Enter")
            await expect(page.locator("#state")).to_have_text("Müsait")
            cookies = await context.cookies()
            session = next(c for c in cookies if c["name"] == "cc_session")
            assert session["httpOnly"] and session["sameSite"] == "Strict"
            stored = await page.evaluate("JSON.stringify({...sessionStorage, ...localStorage})")
            assert token not in stored

            # A used link: the page says so.
            await page.locator("#logout").focus()
            await page.keyboard.press("Enter")
            await expect(page.locator("#login")).to_be_visible()
            await page.goto(str(desk.server.make_url("/agent/login?code=ccl_used")))
            await expect(page.locator("#login-error")).to_contain_text("kullanılmış")
            assert "login=" not in page.url
        finally:
            await context.close()

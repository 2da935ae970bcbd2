"""The agent page in headless Chromium shows a withheld caller as "Gizli numara" / "Withheld"
and the IVR route in the menu's words, in the page's language (issue 11, item 7).

The recorded ``answered`` trace is fed with its caller ID withheld (``anonymous``, as a trunk
sends it) and with the VarSet events the IVR's variables raise before the caller queues.
"""

from __future__ import annotations

import gzip
from typing import Any

from playwright.async_api import Page, expect

from callcenter import events
from callcenter.replay import iter_trace, trace_t0
from callcenter.web.auth import create_token
from tests.integration.api_support import TRACES, running

IVR = {"CC_IVR_PATH": "main>sosyal", "CC_IVR_CHOICE": "Gıda yardımı", "CC_IVR_END": "queue"}


def withheld_trace() -> list[tuple[float, str]]:
    """The answered trace as if the caller withheld the number, with the IVR's trail."""
    path = TRACES / "answered" / "ami.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        messages = list(iter_trace(fh, trace_t0(path) or 0.0))
    out: list[tuple[float, str]] = []
    for ts, text in messages:
        h = events.parse_message(text)
        for key in ("CallerIDNum", "ConnectedLineNum"):
            if h.get(key) == "05321234567":
                text = text.replace(f"{key}: 05321234567", f"{key}: anonymous")
        text = text.replace("Ayşe Yılmaz", "Anonymous")
        if h.get("Event") == "QueueCallerJoin":
            for name, value in IVR.items():
                out.append((ts, f"Event: VarSet\r\nChannel: {h['Channel']}\r\n"
                                f"Uniqueid: {h['Uniqueid']}\r\nLinkedid: {h['Linkedid']}\r\n"
                                f"Variable: {name}\r\nValue: {value}"))  # fmt: skip
        out.append((ts, text))
    return out


async def test_withheld_caller_and_the_ivr_route_in_words(
    page: Page, page_errors: list[str], pool: Any, db_url: str
) -> None:
    async with running(db_url) as (service, server):
        token, _ = await create_token(pool, role="agent", name="z", agent="Zeynep Kaya")
        await page.goto(str(server.make_url(f"/agent?token={token}")))
        await expect(page.locator("#link")).to_have_attribute("data-state", "on")
        for ts, text in withheld_trace():
            service.dispatch(service.pipeline.feed_text("pbx1", text, ts))
            if text.startswith("Event: AgentCalled"):
                break
        await expect(page.locator("#pop")).to_have_attribute("data-stage", "ringing")
        await expect(page.locator("#caller-national")).to_have_text("Gizli numara")
        await expect(page.locator("#ivr-path")).to_have_text(
            "Ana menü › Sosyal yardım › Gıda yardımı"
        )
        await page.locator("#lang").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await expect(page.locator("#caller-national")).to_have_text("Withheld")
        await expect(page.locator("#ivr-path")).to_have_text("Main menu › Social aid › Food aid")
    assert page_errors == []

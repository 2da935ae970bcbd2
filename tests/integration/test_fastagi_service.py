"""Starting the IVR from the service's settings, refusing a bad menu, and the call-back dialer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callcenter import tickets
from callcenter.config import Settings
from callcenter.ivr.client import agi_environment, run_agi_session, variables_set
from callcenter.ivr.dialer import dial_due, run_callback_dialer
from callcenter.ivr.menu import DEFAULT_MENU, CallbackConfig, MenuError
from callcenter.ivr.service import local_zone, start_ivr


@dataclass
class FakeAmi:
    """An AMI client that records the actions it is asked to send."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    async def action(self, fields: Mapping[str, Any]) -> dict[str, str]:
        self.sent.append(dict(fields))
        return {"Response": "Success"}


@dataclass
class FakeService:
    """What start_ivr needs from callcenter.app.Service."""

    settings: Settings
    pool: Any
    clients: dict[str, FakeAmi] = field(default_factory=dict)


async def test_the_ivr_starts_from_the_settings_and_serves(pool: asyncpg.Pool) -> None:
    service = FakeService(Settings(fastagi_port=0), pool)
    runtime = await start_ivr(service)
    try:
        assert runtime.dialer is None  # no AMI client: no call-backs
        env = agi_environment("ivr", ["1795884499.0"])
        commands = await run_agi_session("127.0.0.1", runtime.server.port, env, ["4"])
        assert variables_set(commands)["CC_QUEUE"] == "depremzede"
        assert runtime.stats.endings[("ivr", "queue")] == 1
    finally:
        await runtime.close()


async def test_a_bad_menu_file_stops_the_start_with_its_line(tmp_path: Path) -> None:
    text = DEFAULT_MENU.read_text(encoding="utf-8")
    bad = text.replace('4 = { queue = "depremzede"', '4 = { queue = "deprem"')
    path = tmp_path / "menu.toml"
    path.write_text(bad, encoding="utf-8")
    line = 1 + bad[: bad.index('queue = "deprem"')].count("\n")
    with pytest.raises(MenuError) as caught:
        await start_ivr(FakeService(Settings(fastagi_port=0, ivr_menu=str(path)), None))
    assert f"{path}:{line}: " in str(caught.value) and "unknown queue 'deprem'" in str(caught.value)


async def test_the_dialer_originates_due_call_backs(pool: asyncpg.Pool) -> None:
    ticket = await tickets.open_ticket(
        pool, category="masa-sandalye", caller_number="05321234567", channel="ivr"
    )
    await tickets.set_status(pool, ticket.reference, "resolved", source="backend")
    ami = FakeAmi()
    config = CallbackConfig(enabled=True, caller_id='"Sancaktepe" <4441000>')
    now = datetime.now(tickets.REFERENCE_TZ) + timedelta(seconds=1)
    assert await dial_due(pool, ami.action, config, now) == 1
    [action] = ami.sent
    assert action["Channel"] == "PJSIP/05321234567@trunk"
    assert action["Variable"] == [f"CC_CALLBACK_ID={ticket.id}", f"CC_TICKET={ticket.reference}"]
    assert await dial_due(pool, ami.action, config, now) == 0  # leased, not dialled twice


async def test_the_dialer_loop_stops_when_asked(pool: asyncpg.Pool) -> None:
    stop = asyncio.Event()
    stop.set()
    async with asyncio.timeout(5):
        await run_callback_dialer(pool, FakeAmi().action, CallbackConfig(), local_zone("x/y"), stop)


async def test_the_dialer_starts_with_an_ami_client(pool: asyncpg.Pool) -> None:
    service = FakeService(Settings(fastagi_port=0), pool, {"pbx1": FakeAmi()})
    runtime = await start_ivr(service)
    try:
        assert runtime.dialer is not None and not runtime.dialer.done()
    finally:
        await runtime.close()
    assert runtime.dialer.done()

"""Issue 8, item 3: the service killed with SIGKILL under load and started again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

import callcenter.app
from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from tests.amiserver import FakeAmiServer, event
from tests.faults.harness import wait_until
from tests.faults.scenarios import sigkill


async def test_sigkill_under_load_loses_nothing_and_the_outbox_resumes(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    report = await asyncio.wait_for(sigkill(db_url, tmp_path, kills=1), 300)
    print(report.row(), report.notes)  # the figures, for whoever runs with -s
    assert report.problems() == [], report.notes.get("log_tail")
    assert report.lost == report.duplicates == 0
    assert report.notes["exit_status"] == 0  # and it still shuts down cleanly afterwards
    v = report.verdict
    assert v is not None and v.calls > 50 and v.logged == v.calls - report.invisible
    # Calls in flight at the kill were resumed (or closed) through the resync, flagged.
    assert v.touched >= report.in_flight[0] > 0
    # A webhook is sent again only when the dead worker held it, and under the same id.
    assert report.notes["resent_same_id"] <= sum(report.notes["leased_at_kill"])
    assert "webhooks_delivered_s" in report.notes


async def test_a_new_call_is_written_before_the_next_snapshot_tick(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: a new call waited for the next 1 s snapshot tick, so one that began just
    # before a SIGKILL and ended while the service was down left no trace at all.
    monkeypatch.setattr(callcenter.app, "_TICK_S", 3600.0)
    async with FakeAmiServer(secret="s3cret") as ami:
        server = AsteriskServer(name="pbx-new", host=ami.host, port=ami.port, secret="s3cret")
        settings = Settings(
            database_url=db_url,
            asterisk=(server,),
            spool_dir=str(tmp_path),
            fastagi_enabled=False,
        )
        service = Service(settings)
        await asyncio.wait_for(service.start(), 30)
        try:
            await ami.push(
                event(
                    "Newchannel",
                    Channel="Local/cust@callers-00000001;1",
                    ChannelState="4",
                    CallerIDNum="05321234567",
                    Exten="4441000",
                    Uniqueid="1800000000.1",
                    Linkedid="1800000000.1",
                )
            )

            async def snapshotted() -> bool:
                return bool(
                    await pool.fetchval(
                        "SELECT count(*) FROM open_calls WHERE linkedid = '1800000000.1'"
                    )
                )

            await wait_until(snapshotted, 20, "the new call's snapshot")
        finally:
            await asyncio.wait_for(service.stop(), 30)

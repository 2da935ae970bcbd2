"""A short demo end to end: simulator -> service -> PostgreSQL.

Its closing summary counts as ``callcenter report`` does for the same run (every call, IVR-only
ones included), its pages run on the simulated clock, and each run gets a fresh database.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import socket
import subprocess
import sys
from datetime import date

import aiohttp
import asyncpg

from callcenter.demo import DEMO_SERVER, DemoOptions, run_demo
from tests.conftest import server_url, with_database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _report(url: str, day: str) -> dict[str, object]:
    """``callcenter report`` for the demo's day, as a user runs it afterwards."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "callcenter",
            "report",
            "--from",
            day,
            "--to",
            day,
            "--format",
            "json",
        ],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout))


async def test_the_demo_summary_counts_calls_as_the_report_does() -> None:
    name = f"cc_demo_test_{secrets.token_hex(4)}"
    server = server_url()
    url = with_database(server, name)
    out = io.StringIO()
    port = _free_port()
    day = date(2026, 3, 3)  # a Tuesday, wholly in the past
    options = DemoOptions(
        duration=8,
        speed=60,
        http_port=port,
        seed=3,
        database_url=server,
        database_name=name,
        day=day,
    )
    stop = asyncio.Event()
    boards: list[dict[str, object]] = []

    async def watch() -> None:
        # The wallboard's clock is the simulator's: its time is on the simulated day and
        # it runs at the demo's speed.
        marker = "supervisor token for more screens (the pages ask for it): "
        for _ in range(100):
            await asyncio.sleep(0.2)
            text = out.getvalue()
            if marker in text:
                break
        token = text.split(marker, 1)[1].split()[0]
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(
                f"http://127.0.0.1:{port}/ws/wallboard",
                headers={"Authorization": f"Bearer {token}"},
            ) as ws:
                boards.append(json.loads((await ws.receive()).data))

    try:
        watcher = asyncio.create_task(watch())
        summary = await asyncio.wait_for(run_demo(options, out, stop), 120)
        await asyncio.wait_for(watcher, 10)
        assert summary["calls"] > 0, out.getvalue()
        assert summary["from"] == day.isoformat()
        report = await asyncio.to_thread(_report, url, day.isoformat())
        for key in ("calls", "requests", "avg_talk_s", "avg_wait_s", "answered", "abandoned"):
            assert summary[key] == report[key], (key, summary, report)
        # Every call, as the municipality counts them: more than the calls that queued.
        conn = await asyncpg.connect(url)
        try:
            every = await conn.fetchval("SELECT count(*) FROM calls WHERE server = $1", DEMO_SERVER)
            tickets = await conn.fetchval("SELECT count(*) FROM tickets")
            open_sessions = await conn.fetchval(
                "SELECT count(*) FROM agent_sessions WHERE ended_at IS NULL"
            )
            sessions = await conn.fetchval("SELECT count(*) FROM agent_sessions")
        finally:
            await conn.close()
        assert summary["calls"] == every
        assert summary["tickets"] == tickets
        # The agents' sessions are in the database (the by-agent report's logged-in time),
        # and the demo's agents go home when it ends.
        assert sessions > 0 and open_sessions == 0
        board = boards[0]
        assert board["day"] == day.isoformat()
        assert board["clock_rate"] == 60
        assert "database" in out.getvalue() and "report --from 2026-03-03" in out.getvalue()
        # The supervisor's pages open by one-time links; no printed link carries a token.
        assert "/wallboard/login?code=" in out.getvalue()
        assert "?token=" not in out.getvalue()

        # A second demo on the same name starts from an empty database.
        again = DemoOptions(
            duration=1,
            speed=1,
            http_port=_free_port(),
            seed=4,
            database_url=server,
            database_name=name,
            day=day,
        )
        second = await asyncio.wait_for(run_demo(again, io.StringIO()), 120)
        assert second["calls"] < summary["calls"]
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

"""A short demo end to end: simulator -> service -> PostgreSQL; its summary agrees with the rows."""

from __future__ import annotations

import asyncio
import io
import socket

import asyncpg

from callcenter.demo import DEMO_SERVER, DemoOptions, run_demo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_short_demo_reports_what_postgres_holds(pool: asyncpg.Pool, db_url: str) -> None:
    out = io.StringIO()
    options = DemoOptions(duration=6, speed=60, http_port=_free_port(), seed=3, database_url=db_url)
    summary = await asyncio.wait_for(run_demo(options, out), 120)
    assert summary["calls"] > 0, out.getvalue()
    row = await pool.fetchrow(
        """
        SELECT count(*) AS calls,
               count(*) FILTER (WHERE outcome = 'answered') AS answered,
               count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
               avg(wait_s) AS wait, avg(talk_s) FILTER (WHERE outcome = 'answered') AS talk
        FROM calls c WHERE server = $1
          AND EXISTS (SELECT 1 FROM queue_visits v
                      WHERE v.server = c.server AND v.linkedid = c.linkedid)
        """,
        DEMO_SERVER,
    )
    assert summary["calls"] == row["calls"]
    assert summary["answered"] == row["answered"]
    assert summary["abandoned"] == row["abandoned"]
    assert abs(summary["avg_wait_s"] - round(row["wait"], 1)) < 0.11
    assert abs(summary["avg_talk_s"] - round(row["talk"], 1)) < 0.11
    tickets = await pool.fetchval("SELECT count(*) FROM tickets")
    assert summary["tickets"] == tickets
    dispositions = await pool.fetchval("SELECT count(*) FROM call_dispositions")
    # Simulated agents close their calls through the HTTP API (the last may still be on its way).
    assert 0 < dispositions <= summary["answered"]
    assert "wallboard" in out.getvalue() and "answered" in out.getvalue()

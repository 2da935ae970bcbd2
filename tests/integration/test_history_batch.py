"""Callers' histories fetched in batches agree with the one-caller query, caller by caller."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from callcenter.history import HistoryLoader
from callcenter.screenpop import caller_history

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def _seed(pool: asyncpg.Pool, callers: int) -> list[str]:
    """Caller i has i % 4 earlier calls (stored as national numbers) and, for odd i, a ticket."""
    numbers = [f"0532{i:07d}" for i in range(callers)]
    rows = [
        (f"1700000000.{i}.{k}", n, START + timedelta(minutes=i * 10 + k))
        for i, n in enumerate(numbers)
        for k in range(i % 4)
    ]
    await pool.executemany(
        """
        INSERT INTO calls (server, linkedid, uniqueid, caller_number, caller_name, queue,
                           outcome, started_at, wait_s, talk_s)
        VALUES ('pbx1', $1, $1, $2, 'Arayan', 'genel', 'answered', $3, 10.0, 60.0)
        """,
        rows,
    )
    await pool.executemany(
        """
        INSERT INTO tickets (reference, category, channel, caller_number, status)
        VALUES ($1, 'masa-sandalye', 'phone', $2, 'open')
        """,
        [(f"2026-9{i:05d}", f"+90532{i:07d}") for i in range(1, callers, 2)],
    )
    return numbers


async def test_a_burst_of_callers_costs_a_few_queries_and_gets_each_callers_history(
    pool: asyncpg.Pool,
) -> None:
    numbers = await _seed(pool, 60)
    loader = HistoryLoader(lambda: pool, "TR", concurrency=2)
    # Callers ring in the international spelling; the log holds the national one.
    asked = [("+9" + n) for n in numbers] + ["", "not a number"]
    futures = [loader.get(n) for n in asked]
    results = await asyncio.wait_for(asyncio.gather(*futures), 30)
    assert loader.callers == 60  # numberless callers are answered at once, without a query
    assert loader.queries <= 4, loader.queries
    for number, got in zip(asked, results, strict=True):
        assert got == await caller_history(pool, number, "TR"), number
    recent, tickets = results[3]
    assert len(recent) == 3 and len(tickets) == 1 and tickets[0]["reference"] == "2026-900003"
    assert results[4] == ([], [])  # no earlier call, no ticket
    assert results[60] == ([], [])


async def test_a_cancelled_pop_is_left_out_and_a_failure_reaches_every_waiter(
    pool: asyncpg.Pool,
) -> None:
    numbers = await _seed(pool, 4)
    loader = HistoryLoader(lambda: pool, "TR", concurrency=1)
    first, second = loader.get(numbers[1]), loader.get(numbers[2])
    second.cancel()
    assert (await asyncio.wait_for(first, 10))[0][0]["caller_name"] == "Arayan"

    class Broken:
        async def fetch(self, *args: object) -> list[object]:
            raise asyncpg.PostgresConnectionError("database away")

    broken = HistoryLoader(lambda: Broken(), "TR")
    waiting = [broken.get(n) for n in numbers]
    done = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 10)
    assert all(isinstance(d, asyncpg.PostgresConnectionError) for d in done)

"""Callers' histories for screen-pops, fetched in batches: one query for many callers.

When a thousand calls ring within a second, one query per caller queues a thousand round
trips behind the pool and the last pops wait a second for their history. The loader collects
the numbers asked for while its queries run and fetches each collected batch with one query,
so the number of round trips follows the database's pace, not the callers'.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import structlog

from callcenter.popup import normalize_number, number_variants

log = structlog.get_logger(__name__)

History = tuple[list[dict[str, Any]], list[dict[str, Any]]]

# The same figures as screenpop._HISTORY, for many callers: ($1, $2) the spellings of each
# caller's number by caller index, ($3, $4) each caller's normalised number, $5 the limit.
_BATCH = """
SELECT n.i,
  (SELECT json_agg(c ORDER BY c.sort DESC) FROM (
     SELECT c.server, c.linkedid, c.caller_name, c.outcome, c.agent, c.queue, c.wait_s,
            c.talk_s, c.started_at AS sort,
            to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
              AS started_at,
            (SELECT d.kind FROM call_dispositions d
             WHERE d.server = c.server AND d.linkedid = c.linkedid
             ORDER BY d.created_at LIMIT 1) AS disposition
     FROM calls c
     WHERE c.caller_number = ANY(ARRAY(SELECT v.number FROM v WHERE v.i = n.i))
     ORDER BY c.started_at DESC LIMIT $5) c) AS calls,
  (SELECT json_agg(t ORDER BY t.sort DESC) FROM (
     SELECT reference, category, status, channel, note, caller_name, created_at AS sort,
            to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
              AS created_at
     FROM tickets WHERE caller_number = n.normalized AND status IN ('open', 'in_progress')
     ORDER BY created_at DESC LIMIT 10) t) AS tickets
FROM unnest($3::int[], $4::text[]) AS n(i, normalized)
"""
_WITH = "WITH v AS (SELECT * FROM unnest($1::int[], $2::text[]) AS v(i, number))\n"


class HistoryLoader:
    """Hands out futures of callers' histories and fills them batch by batch."""

    def __init__(
        self,
        pool: Callable[[], Any],
        region: str = "TR",
        limit: int = 5,
        max_batch: int = 50,
        concurrency: int = 4,
    ) -> None:
        self._pool = pool
        self.region = region
        self.limit = limit
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._waiting: list[tuple[str, asyncio.Future[History]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self.queries = 0
        self.callers = 0

    @property
    def pending(self) -> int:
        """Callers waiting for a batch, plus the batches in flight (for back-pressure)."""
        return len(self._waiting) + len(self._running)

    def get(self, number: str) -> asyncio.Future[History]:
        """A future of the caller's latest calls and open tickets (cancel it if unneeded)."""
        future: asyncio.Future[History] = asyncio.get_running_loop().create_future()
        if not number_variants(number, self.region):
            future.set_result(([], []))
            return future
        self._waiting.append((number, future))
        self._kick()
        return future

    def _kick(self) -> None:
        while self._waiting and len(self._running) < self.concurrency:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._kick()  # what arrived meanwhile goes out as the next batch

    async def _run(self, batch: list[tuple[str, asyncio.Future[History]]]) -> None:
        wanted = [(n, f) for n, f in batch if not f.done()]  # a cancelled pop needs none
        if not wanted:
            return
        idx: list[int] = []
        spellings: list[str] = []
        normal: list[str | None] = []
        for i, (number, _) in enumerate(wanted):
            for variant in number_variants(number, self.region):
                idx.append(i)
                spellings.append(variant)
            normal.append(normalize_number(number, self.region))
        try:
            rows = await self._pool().fetch(
                _WITH + _BATCH, idx, spellings, list(range(len(wanted))), normal, self.limit + 1
            )
        except Exception as exc:  # the pops go out without history; the error is logged
            for _, future in wanted:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: no "never retrieved" warning
            log.warning("caller_history_failed", error=repr(exc), callers=len(wanted))
            return
        self.queries += 1
        self.callers += len(wanted)
        for row in rows:
            future = wanted[row["i"]][1]
            if not future.done():
                recent = json.loads(row["calls"]) if row["calls"] else []
                tickets = json.loads(row["tickets"]) if row["tickets"] else []
                future.set_result((recent, tickets))

    async def close(self) -> None:
        """Cancels what is waiting and running."""
        for _, future in self._waiting:
            future.cancel()
        self._waiting.clear()
        for task in list(self._running):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

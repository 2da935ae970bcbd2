"""``callcenter report --from DATE --to DATE``: the period's table and KPIs from PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from datetime import date, timedelta
from typing import TextIO

from callcenter.config import load_settings
from callcenter.kpis import GROUPINGS, Thresholds

# Progress appears only when the report takes longer than this (a day's report never does).
_QUIET_S = 0.5
_SPIN = "|/-\\"


def _date(text: str) -> date:
    """A local date: YYYY-MM-DD, ``today`` or ``yesterday``."""
    word = text.strip().lower()
    if word == "today":
        return date.today()
    if word == "yesterday":
        return date.today() - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument("--from", dest="start", type=_date, required=True, help="first day")
    parser.add_argument("--to", dest="end", type=_date, help="last day, included (default: --from)")
    parser.add_argument("--queue", help="one queue only")
    parser.add_argument("--by", choices=GROUPINGS, help="one row per day, hour, month, queue…")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--tz", help="time zone of the dates (default: the settings' timezone)")
    parser.add_argument("--top", type=int, default=10, help="request categories listed (json)")
    parser.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL)")


class Ticker:
    """Shows the report's progress on stderr once it has taken more than a moment."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.began = time.monotonic()
        self.step, self.done, self.total = "connecting", 0, 1
        self.shown = False
        self._last_line = ""

    def __call__(self, step: str, done: int, total: int) -> None:
        self.step, self.done, self.total = step, done, total

    def render(self, final: bool = False) -> None:
        """Draws the bar (a terminal) or prints each new step once (a log or a pipe)."""
        if not final and time.monotonic() - self.began < _QUIET_S:
            return
        elapsed = time.monotonic() - self.began
        width = 20
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (width - filled)
        if self.out.isatty():
            spin = _SPIN[int(elapsed * 8) % len(_SPIN)] if not final else " "
            self.out.write(f"\rreport [{bar}] {spin} {self.step:<40.40} {elapsed:5.1f} s")
            if final:
                self.out.write("\n")
        else:
            line = f"report: {self.done}/{self.total} {self.step} ({elapsed:.1f} s)"
            if line.split(" (")[0] != self._last_line:
                self.out.write(line + "\n")
                self._last_line = line.split(" (")[0]
        self.out.flush()
        self.shown = True

    async def run(self) -> None:
        """Redraws until cancelled."""
        while True:
            await asyncio.sleep(0.1)
            self.render()


async def _report(args: argparse.Namespace, url: str, th: Thresholds, tz: str) -> str:
    from callcenter.report_format import to_csv, to_dict, to_table
    from callcenter.reports import ReportQuery, build_report
    from callcenter.store.db import create_pool

    query = ReportQuery(args.start, args.end or args.start, args.queue, args.by, tz, args.top)
    ticker = Ticker(sys.stderr)
    task = asyncio.create_task(ticker.run())
    try:
        pool = await asyncio.wait_for(create_pool(url, min_size=1, max_size=2), 30)
        try:
            if args.queue:
                await _check_queue(pool, args.queue, th)
            report = await build_report(pool, query, th, ticker)
        finally:
            await asyncio.wait_for(pool.close(), 30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if ticker.shown:
            ticker.render(final=True)
    if args.format == "json":
        return json.dumps(to_dict(report), ensure_ascii=False, indent=2) + "\n"
    if args.format == "csv":
        return to_csv(report)
    return to_table(report)


# Distinct queues by skipping through the (queue, entered_at) indexes: a few index probes
# per queue, not a scan of every visit.
_KNOWN_QUEUES = """
WITH RECURSIVE v(queue) AS (
    SELECT min(queue) FROM queue_visits
    UNION ALL
    SELECT (SELECT min(queue) FROM queue_visits WHERE queue > v.queue) FROM v
    WHERE v.queue IS NOT NULL
), c(queue) AS (
    SELECT min(queue) FROM calls
    UNION ALL
    SELECT (SELECT min(queue) FROM calls WHERE queue > c.queue) FROM c WHERE c.queue IS NOT NULL
)
SELECT queue FROM v WHERE queue IS NOT NULL UNION SELECT queue FROM c WHERE queue IS NOT NULL
"""


async def _check_queue(pool: object, queue: str, th: Thresholds) -> None:
    """Refuses a queue no call ever visited and no setting names, listing the known ones."""
    from callcenter.reports import ReportError

    rows = await pool.fetch(_KNOWN_QUEUES)  # type: ignore[attr-defined]
    known = {r["queue"] for r in rows} | {
        q for table in (th.service_level_s, th.wrapup_s) for q in table if q != "*"
    }
    if queue not in known:
        listed = ", ".join(sorted(known)) or "none yet (no calls recorded)"
        raise ReportError(f"unknown queue {queue!r}; known queues: {listed}")


def main(args: argparse.Namespace) -> int:
    """Prints the report; 2 for a bad request, 1 when the database cannot answer."""
    import asyncpg

    from callcenter.reports import ReportError

    settings = load_settings(args.config)  # a ConfigError exits 2 in __main__
    url = args.database_url or settings.database_url
    try:
        text = asyncio.run(
            _report(args, url, Thresholds.from_settings(settings), args.tz or settings.timezone)
        )
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    except asyncpg.UndefinedTableError as exc:
        print(
            f"report: the database is not migrated ({exc}); run `callcenter migrate`",
            file=sys.stderr,
        )
        return 1
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        print(f"report: cannot read {url.split('@')[-1]}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0

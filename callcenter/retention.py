"""KVKK retention: personal data of calls older than ``retention_days`` is anonymised or deleted.

``retention_mode = "anonymise"`` (the default) keeps every row and every figure the reports are
made of, and clears what identifies the caller:

* ``calls``: ``caller_number``, ``caller_name`` and ``ivr_digits`` (the keys pressed may spell an
  ID number); queue, agent, outcome, times, waits and talk stay, so do the report rollups;
* ``open_calls``: the same fields inside the snapshot of a call that never finished;
* ``tickets`` whose last activity is older: ``caller_number`` and ``caller_name`` (the
  reference, category, status and history stay);
* ``ivr_surveys``: ``caller_number`` (the scores stay); ``survey_callbacks`` that are done;
* ``webhook_outbox``: the number, name and keys inside old event payloads;
* ``agent_callbacks`` (agents' call-backs of abandoned callers): deleted, in both modes.

``retention_mode = "delete"`` does the same for tickets, surveys and webhooks, and deletes old
calls instead (their queue visits and dispositions with them, and open-call snapshots). The
report rollups follow the calls table (triggers keep them equal), so deleted calls leave the
reports too: choose anonymise to keep historic figures.

A call's age is its end (``ended_at``); ``retention_days = 0`` turns the job off. Work goes in
short statements over one-day windows of an indexed time column, so no lock is held long; a
run is idempotent, and an advisory lock lets one instance of several run it at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MODES = ("anonymise", "delete")
# pg_try_advisory_lock key: "KVKK" in ASCII.
_LOCK = 0x4B564B4B
_DAY = timedelta(days=1)
_ID_WINDOW = 10_000
# The service runs the job this long after start-up (not during the start-up rush), then daily.
FIRST_RUN_DELAY_S = 300.0
INTERVAL_S = 86_400.0

_CALLS_PERSONAL = "(caller_number IS NOT NULL OR caller_name IS NOT NULL OR ivr_digits <> '')"
_SNAPSHOT_PERSONAL = (
    "(state->>'caller_number' IS NOT NULL OR state->>'caller_name' IS NOT NULL"
    " OR coalesce(state->>'ivr_digits', '') <> '')"
)
_PAYLOAD_PERSONAL = (
    "(payload->'data' ?| array['caller_number', 'caller_name', 'caller_e164', 'ivr_digits']"
    " OR payload->'data'->'ticket' ?| array['caller_number', 'caller_name'])"
)
_PAYLOAD_CLEARED = (
    "payload #- '{data,caller_number}' #- '{data,caller_name}' #- '{data,caller_e164}'"
    " #- '{data,ivr_digits}' #- '{data,ticket,caller_number}' #- '{data,ticket,caller_name}'"
)


@dataclass(frozen=True, slots=True)
class _Step:
    """One statement of the job: ``action`` is ``SET …`` (an update) or ``DELETE``.

    ``column`` is the indexed column the windows walk (``$1 <= column < $2``, the cutoff is
    ``$3``); without one the statement runs once over the whole table (the cutoff is ``$1``).
    """

    name: str
    table: str
    action: str
    where: str
    column: str | None = None
    by_id: bool = False


_ANONYMISE_CALLS = (
    _Step(
        "calls.anonymised",
        "calls",
        "SET caller_number = NULL, caller_name = NULL, ivr_digits = ''",
        f"ended_at < $3 AND {_CALLS_PERSONAL}",
        column="ended_at",
    ),
    _Step(
        "open_calls.anonymised",
        "open_calls",
        "SET state = state || jsonb_build_object("
        "'caller_number', NULL, 'caller_name', NULL, 'ivr_digits', '')",
        f"updated_at < $1 AND {_SNAPSHOT_PERSONAL}",
    ),
)
_DELETE_CALLS = (
    _Step("calls.deleted", "calls", "DELETE", "ended_at < $3", column="ended_at"),
    _Step(
        "call_dispositions.deleted",
        "call_dispositions",
        "DELETE",
        "created_at < $3",
        column="created_at",
    ),
    _Step("open_calls.deleted", "open_calls", "DELETE", "updated_at < $1"),
)
_ALWAYS = (
    _Step(
        "tickets.anonymised",
        "tickets",
        "SET caller_number = NULL, caller_name = NULL",
        "coalesce(closed_at, updated_at) < $3"
        " AND (caller_number IS NOT NULL OR caller_name IS NOT NULL)",
        column="created_at",
    ),
    _Step(
        "ivr_surveys.anonymised",
        "ivr_surveys",
        "SET caller_number = NULL",
        "answered_at < $3 AND caller_number IS NOT NULL",
        column="answered_at",
    ),
    _Step(
        "survey_callbacks.deleted",
        "survey_callbacks",
        "DELETE",
        "updated_at < $1 AND state NOT IN ('pending', 'dialing')",
    ),
    _Step(
        "agent_callbacks.deleted",
        "agent_callbacks",
        "DELETE",
        "created_at < $3",
        column="created_at",
    ),
    _Step(
        "webhook_outbox.anonymised",
        "webhook_outbox",
        f"SET payload = {_PAYLOAD_CLEARED}",
        f"created_at < $3 AND {_PAYLOAD_PERSONAL}",
        column="id",
        by_id=True,
    ),
)


@dataclass
class RetentionReport:
    """What one run did (or, dry, would do): rows per step."""

    mode: str
    days: int
    cutoff: datetime
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)
    skipped: str = ""  # why nothing ran (another instance holds the lock)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "mode": self.mode,
            "days": self.days,
            "cutoff": self.cutoff.isoformat(timespec="seconds"),
            "dry_run": self.dry_run,
            "rows": dict(self.rows),
            "skipped": self.skipped,
        }


def check(days: int, mode: str) -> None:
    """Refuses a retention setting that makes no sense (ValueError names it)."""
    if days < 0:
        raise ValueError(f"retention_days must be 0 (off) or more, got {days}")
    if mode not in MODES:
        raise ValueError(f"retention_mode must be one of {', '.join(MODES)}, got {mode!r}")


def steps(mode: str) -> tuple[_Step, ...]:
    """The statements of a run in ``mode``, in order."""
    return (_ANONYMISE_CALLS if mode == "anonymise" else _DELETE_CALLS) + _ALWAYS


async def run_retention(
    pool: Any,
    *,
    days: int,
    mode: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionReport:
    """Anonymises or deletes what is older than ``days`` (counts only, with ``dry_run``)."""
    check(days, mode)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    report = RetentionReport(mode, days, cutoff, dry_run)
    if days == 0:
        report.skipped = "retention_days is 0: retention is off"
        return report
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
            report.skipped = "another instance is running retention"
            return report
        try:
            for step in steps(mode):
                report.rows[step.name] = await _run_step(conn, step, cutoff, dry_run)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
    log.info("retention_done", **report.to_dict())
    return report


async def _run_step(conn: Any, step: _Step, cutoff: datetime, dry_run: bool) -> int:
    """Runs one step window by window; returns the rows it changed (or would change)."""
    if step.column is None:
        return await _statement(conn, step, dry_run, step.where, (cutoff,))
    window = f"{step.column} >= $1 AND {step.column} < $2 AND {step.where}"
    total = 0
    if step.by_id:
        # Ids grow with time: walk id windows while their first row is older than the cutoff.
        lo = await conn.fetchval(f"SELECT min(id) FROM {step.table}")
        while lo is not None:
            oldest = await conn.fetchval(
                f"SELECT created_at FROM {step.table} WHERE id >= $1 ORDER BY id LIMIT 1", lo
            )
            if oldest is None or oldest >= cutoff:
                break
            total += await _statement(conn, step, dry_run, window, (lo, lo + _ID_WINDOW, cutoff))
            lo += _ID_WINDOW
        return total
    lo = await conn.fetchval(
        f"SELECT min({step.column}) FROM {step.table} WHERE {step.column} < $1", cutoff
    )
    while lo is not None and lo < cutoff:
        hi = min(lo + _DAY, cutoff)
        total += await _statement(conn, step, dry_run, window, (lo, hi, cutoff))
        lo = hi
    return total


async def _statement(
    conn: Any, step: _Step, dry_run: bool, where: str, args: tuple[Any, ...]
) -> int:
    """One statement (a short transaction of its own); returns its row count."""
    if dry_run:
        return int(await conn.fetchval(f"SELECT count(*) FROM {step.table} WHERE {where}", *args))
    if step.action == "DELETE":
        status = await conn.execute(f"DELETE FROM {step.table} WHERE {where}", *args)
    else:
        status = await conn.execute(f"UPDATE {step.table} {step.action} WHERE {where}", *args)
    return int(str(status).rsplit(" ", 1)[-1])


async def retention_loop(
    pool: Callable[[], Any],
    days: int,
    mode: str,
    *,
    first_delay: float | None = None,
    interval: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Runs the job after ``first_delay`` seconds and then every ``interval``; never raises."""
    await sleep(FIRST_RUN_DELAY_S if first_delay is None else first_delay)
    while True:
        try:
            await run_retention(pool(), days=days, mode=mode)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: try again at the next interval
            log.error("retention_failed", error=repr(exc))
        await sleep(INTERVAL_S if interval is None else interval)

"""KVKK retention: personal data of calls older than ``retention_days`` is anonymised or deleted.

``retention_mode = "anonymise"`` (the default) keeps every row and every figure the reports are
made of, and clears every copy of what identifies the caller or what they said:

* ``calls``: ``caller_number``, ``caller_name``, ``dialled`` (a call-back dials the citizen),
  ``ivr_digits`` (the keys pressed may spell an ID number) and ``ivr_vars``; queue, agent,
  outcome, times, waits and talk stay, so do the report rollups;
* ``open_calls``: the same fields inside the snapshot of a call that never finished;
* ``call_dispositions``: the agent's free-text ``note``;
* ``tickets`` whose last activity is older: ``caller_number``, ``caller_name``, ``note`` and the
  structured ``fields`` (ID number, address…); the reference, category and status stay;
* ``ticket_events``: their ``note`` (the history's who, when and which status stay);
* ``ivr_surveys``: ``caller_number`` (the scores stay); ``survey_callbacks`` that are done;
* ``webhook_outbox``: the whole ``data`` of old event payloads (type and time stay), and in the
  delivery log the answers' first bytes and error texts (``webhook_attempts``,
  ``webhook_deliveries``), which may echo them;
* ``agent_callbacks`` (agents' call-backs of abandoned callers): deleted, in both modes;
* ``access_log``: old lines are deleted;
* files in ``spool_dir``: in the reject file (``*.rejected.jsonl``) and the spill file, the
  personal fields of old records are overwritten in place with ``*`` (same length, so the
  writer's offsets into the spill file stay valid).

``retention_mode = "delete"`` does the same for tickets, surveys, webhooks, the access log and
the files, and deletes old calls instead (their queue visits and dispositions with them, and
open-call snapshots). The report rollups follow the calls table (triggers keep them equal), so
deleted calls leave the reports too: choose anonymise to keep historic figures.

A call's age is its end (``ended_at``); ``retention_days = 0`` turns the job off. Work goes in
short statements over one-day windows of an indexed time column, so no lock is held long; a
run is idempotent, and an advisory lock lets one instance of several run it at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
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

_CALLS_PERSONAL = (
    "(caller_number IS NOT NULL OR caller_name IS NOT NULL OR ivr_digits <> ''"
    " OR dialled IS NOT NULL OR ivr_vars <> '{}'::jsonb)"
)
_SNAPSHOT_PERSONAL = (
    "(state->>'caller_number' IS NOT NULL OR state->>'caller_name' IS NOT NULL"
    " OR coalesce(state->>'ivr_digits', '') <> '' OR state->>'dialled' IS NOT NULL"
    " OR coalesce(state->'ivr_vars', '{}'::jsonb) <> '{}'::jsonb)"
)
_REDACTED = """'{"redacted": true}'::jsonb"""
_PAYLOAD_PERSONAL = f"(payload->'data' IS DISTINCT FROM {_REDACTED})"
_PAYLOAD_CLEARED = f"jsonb_set(payload, '{{data}}', {_REDACTED})"


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
    time_column: str = "created_at"  # with ``by_id``: the time that grows with the id


_ANONYMISE_CALLS = (
    _Step(
        "calls.anonymised",
        "calls",
        "SET caller_number = NULL, caller_name = NULL, ivr_digits = '', dialled = NULL,"
        " ivr_vars = '{}'",
        f"ended_at < $3 AND {_CALLS_PERSONAL}",
        column="ended_at",
    ),
    _Step(
        "open_calls.anonymised",
        "open_calls",
        "SET state = state || jsonb_build_object('caller_number', NULL, 'caller_name', NULL,"
        " 'ivr_digits', '', 'dialled', NULL, 'ivr_vars', '{}'::jsonb)",
        f"updated_at < $1 AND {_SNAPSHOT_PERSONAL}",
    ),
    _Step(
        "call_dispositions.notes_cleared",
        "call_dispositions",
        "SET note = ''",
        "created_at < $3 AND note <> ''",
        column="created_at",
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
        "SET caller_number = NULL, caller_name = NULL, note = '', fields = '{}'",
        "coalesce(closed_at, updated_at) < $3"
        " AND (caller_number IS NOT NULL OR caller_name IS NOT NULL OR note <> ''"
        " OR fields <> '{}'::jsonb)",
        column="created_at",
    ),
    _Step(
        "ticket_events.notes_cleared",
        "ticket_events",
        "SET note = ''",
        "at < $3 AND note <> ''",
        column="id",
        by_id=True,
        time_column="at",
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
    _Step(
        "webhook_attempts.answers_cleared",
        "webhook_attempts",
        "SET response = '', error = NULL",
        "at < $3 AND (response <> '' OR error IS NOT NULL)",
        column="id",
        by_id=True,
        time_column="at",
    ),
    _Step(
        "webhook_deliveries.errors_cleared",
        "webhook_deliveries",
        "SET last_error = NULL",
        "last_error IS NOT NULL"
        " AND coalesce(last_attempt_at, first_attempt_at, next_attempt_at) < $1",
    ),
    _Step("access_log.deleted", "access_log", "DELETE", "at < $3", column="at"),
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
    spool_dir: str | os.PathLike[str] | None = None,
) -> RetentionReport:
    """Anonymises or deletes what is older than ``days`` (counts only, with ``dry_run``).

    With ``spool_dir``, old records in its spill and reject files are scrubbed too.
    """
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
            if spool_dir:
                for path, count in scrub_spool(Path(spool_dir), cutoff, dry_run).items():
                    report.rows[f"file:{path.name}"] = count
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
                f"SELECT {step.time_column} FROM {step.table} WHERE id >= $1 ORDER BY id LIMIT 1",
                lo,
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


# ---- spill and reject files ---------------------------------------------------------------

# Fields of a spilled or rejected call record that identify the caller or carry what they said.
_RECORD_PERSONAL = ("caller_number", "caller_name", "dialled", "ivr_digits", "ivr_vars")
_LINE_PERSONAL = ("repr", "error")  # free text about a record: may quote any of it


def _stars(value: Any, ascii: bool = False) -> Any:
    """The value with every string replaced by ``*`` of the same encoded JSON length."""
    if isinstance(value, str):
        encoded = json.dumps(value, ensure_ascii=ascii).encode("utf-8")
        return "*" * (len(encoded) - 2)
    if isinstance(value, dict):
        return {k: _stars(v, ascii) for k, v in value.items()}
    if isinstance(value, list):
        return [_stars(v, ascii) for v in value]
    return value


def _line_time(line: dict[str, Any]) -> float | None:
    data = line.get("data")
    if isinstance(data, dict):
        for key in ("ended_at", "started_at"):
            if isinstance(data.get(key), int | float):
                return float(data[key])
    return None


def _scrubbed(line: dict[str, Any], ascii: bool) -> dict[str, Any] | None:
    """The line with its personal fields starred, or None if it holds none."""
    out = dict(line)
    changed = False
    data = line.get("data")
    if isinstance(data, dict) and line.get("kind") in ("call", "open"):
        new = dict(data)
        for key in _RECORD_PERSONAL:
            starred = _stars(new.get(key), ascii)
            if new.get(key) not in (None, "", {}, []) and starred != new[key]:
                new[key] = starred
                changed = True
        out["data"] = new
    for key in _LINE_PERSONAL:
        if isinstance(out.get(key), str) and _stars(out[key], ascii) != out[key]:
            out[key] = _stars(out[key], ascii)
            changed = True
    return out if changed else None


def _same_length(line: dict[str, Any], raw: bytes) -> bytes | None:
    """The scrubbed line in the encoding that gives ``raw``'s length (the writer's, or ASCII)."""
    for ascii in (False, True):
        new = _scrubbed(line, ascii)
        if new is None:
            return b""
        text = (json.dumps(new, ensure_ascii=ascii, allow_nan=False) + "\n").encode("utf-8")
        if len(text) == len(raw):
            return text
    return None


def scrub_spool(directory: Path, cutoff: datetime, dry_run: bool = False) -> dict[Path, int]:
    """Stars the personal fields of old records in the spool's JSON-lines files, in place.

    Every line keeps its exact length, so a writer appending meanwhile, or holding an offset
    into the spill file, is not disturbed. A line without a time is judged by the file's age.
    Returns the lines changed (or that would change) per file.
    """
    changed: dict[Path, int] = {}
    if not directory.is_dir():
        return changed
    limit = cutoff.timestamp()
    for path in sorted(directory.glob("*.jsonl")):
        try:
            changed[path] = _scrub_file(path, limit, dry_run)
        except OSError as exc:
            log.error("retention_file_failed", path=str(path), error=repr(exc))
    return changed


def _scrub_file(path: Path, limit: float, dry_run: bool) -> int:
    count = 0
    file_old = path.stat().st_mtime < limit
    with path.open("rb" if dry_run else "r+b") as fh:
        offset = 0
        for raw in iter(fh.readline, b""):
            start, offset = offset, offset + len(raw)
            if not raw.endswith(b"\n"):
                break  # a line being appended right now
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            when = _line_time(line)
            if (when is None and not file_old) or (when is not None and when >= limit):
                continue
            text = _same_length(line, raw)
            if text == b"":
                continue  # nothing personal left in it
            if text is None:
                log.warning("retention_line_not_scrubbed", path=str(path), offset=start)
                continue
            count += 1
            if not dry_run:
                fh.seek(start)
                fh.write(text)
                fh.flush()
                fh.seek(offset)
    return count


async def retention_loop(
    pool: Callable[[], Any],
    days: int,
    mode: str,
    *,
    first_delay: float | None = None,
    interval: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    spool_dir: str | None = None,
) -> None:
    """Runs the job after ``first_delay`` seconds and then every ``interval``; never raises."""
    await sleep(FIRST_RUN_DELAY_S if first_delay is None else first_delay)
    while True:
        try:
            await run_retention(pool(), days=days, mode=mode, spool_dir=spool_dir)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: try again at the next interval
            log.error("retention_failed", error=repr(exc))
        await sleep(INTERVAL_S if interval is None else interval)

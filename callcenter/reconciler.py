"""Reads Asterisk's records (files or PostgreSQL) and reconciles the service's AMI gaps with them.

The pure part is ``callcenter.reconcile``; this is the adapter. In the service, the
``Reconciler`` sits in front of the effect subscribers: the final effects (``VisitEnded``,
``CallEnded``) of a call flagged ``reconstructed`` are held until Asterisk's records of that
call are complete (or ``reconcile_hold_seconds`` have passed), corrected, and only then
handed on, once. So the call row is written once, ``call.ended`` goes out once with the
corrected call, and the counters count the corrected outcome once. After every AMI
(re)login's resync, and for the first login after a start, the calls Asterisk recorded inside
the gap that the service never saw are rebuilt and handed on the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import structlog

from callcenter.model import Call, CallEnded, Effect, VisitEnded
from callcenter.reconcile import AsteriskRecords, apply_records, call_from_records
from callcenter.records import (
    CelEvent,
    QueueLogEntry,
    cel_from_row,
    parse_cel_csv,
    parse_queue_log,
    queue_log_from_row,
)

log = structlog.get_logger(__name__)

# Event times of the PBX and our clock may differ a little; windows are widened by this much
# (a call found twice is impossible anyway: calls already logged are looked up first).
_MARGIN_S = 60.0
# After a resync, Asterisk's back-ends get this long to write the last records of the gap.
_SETTLE_S = 2.0
_PASS_S = 1.0


def _open_text(path: Path) -> IO[str]:
    """Opens a records file, gzip or plain, as UTF-8 text."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_queue_log_file(path: str | Path) -> list[QueueLogEntry]:
    """Reads a queue_log file; unreadable lines are counted in the log and skipped."""
    with _open_text(Path(path)) as fh:
        entries, bad = parse_queue_log(fh)
    if bad:
        log.warning("queue_log_lines_skipped", path=str(path), lines=bad)
    return entries


def read_cel_file(path: str | Path) -> list[CelEvent]:
    """Reads cel_custom's CSV file; unreadable records are counted in the log and skipped."""
    with _open_text(Path(path)) as fh:
        events, bad = parse_cel_csv(fh)
    if bad:
        log.warning("cel_records_skipped", path=str(path), records=bad)
    return events


def records_from_files(
    queue_log: str | Path | None = None, cel: str | Path | None = None
) -> AsteriskRecords:
    """Asterisk's records from its files (either may be None)."""
    entries = read_queue_log_file(queue_log) if queue_log else []
    events = read_cel_file(cel) if cel else []
    return AsteriskRecords.build(
        entries, events, with_queue_log=queue_log is not None, with_cel=cel is not None
    )


def _records_from_existing_files(queue_log: str, cel: str) -> AsteriskRecords:
    """Records from the files that exist (run in a thread: file reading blocks)."""
    return records_from_files(
        queue_log if Path(queue_log).exists() else None, cel if Path(cel).exists() else None
    )


def _ident(name: str) -> str:
    """A table name quoted for SQL (names are validated by the settings)."""
    return '"' + name.replace('"', '""') + '"'


def _naive_utc(epoch: float) -> datetime:
    """Epoch seconds as the zone-less UTC timestamp Asterisk writes."""
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


async def records_from_db(
    conn: Any,
    since: float,
    until: float,
    *,
    queue_log_table: str = "queue_log",
    cel_table: str = "cel",
    linkedids: Iterable[str] = (),
) -> AsteriskRecords:
    """Asterisk's records of the calls active in [since, until] (and of ``linkedids``)."""
    ids = sorted(set(linkedids))
    lo, hi = _naive_utc(since), _naive_utc(until)
    cel_rows = await conn.fetch(
        f"""
        SELECT eventtype, eventtime, cid_name, cid_num, exten, context, channame, appname,
               appdata, uniqueid, linkedid, extra
        FROM {_ident(cel_table)}
        WHERE linkedid IN (
            SELECT linkedid FROM {_ident(cel_table)} WHERE eventtime BETWEEN $1 AND $2
            UNION SELECT unnest($3::text[]))
        ORDER BY id
        """,
        lo,
        hi,
        ids,
    )
    events = [cel_from_row(dict(r)) for r in cel_rows]
    callids = sorted({e.uniqueid for e in events} | set(ids))
    ql_rows = await conn.fetch(
        f"""
        SELECT time, callid, queuename, agent, event, data1, data2, data3, data4, data5
        FROM {_ident(queue_log_table)}
        WHERE time BETWEEN $1 AND $2 OR callid = ANY($3::text[])
        ORDER BY id
        """,
        lo,
        hi,
        callids,
    )
    entries = [queue_log_from_row(dict(r)) for r in ql_rows]
    return AsteriskRecords.build(entries, events, with_queue_log=True, with_cel=True)


@dataclass
class _Held:
    """The held final effects of one reconstructed call."""

    call: Call
    since: float  # our monotonic clock
    ended: bool = False


@dataclass
class _Gap:
    """A stretch the service could not see, waiting to be scanned for calls it never saw."""

    server: str
    since: float  # PBX epoch
    until: float
    due: float  # our monotonic clock


@dataclass
class ReconcileStats:
    """What the reconciler did since start (exported as counters)."""

    corrected: int = 0
    confirmed: int = 0
    found: int = 0
    unmatched: int = 0  # released without records (none came in time)
    errors: int = 0


class Reconciler:
    """Holds the final effects of reconstructed calls until Asterisk's records correct them."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.settings = service.settings
        self.stats = ReconcileStats()
        self._held: dict[tuple[str, str], _Held] = {}
        self._gaps: list[_Gap] = []
        self._down_at: dict[str, float] = {}
        self._start_since: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ---- in the stream (synchronous, never raises) ------------------------------------------

    def note(self, server: str, headers: Any, received_at: float) -> None:
        """Watches the adapter's link events: where a gap begins, and where its resync ends."""
        name = headers.get("Event")
        if name == "CallcenterLinkDown":
            self._down_at.setdefault(server, received_at)
        elif name == "CallcenterResyncEnd":
            since = self._down_at.pop(server, None)
            if since is None:
                since = self._start_since.pop(server, None)
            if since is not None:
                self._gaps.append(_Gap(server, since, received_at, time.monotonic() + _SETTLE_S))
                self._wake.set()

    def hold(self, effects: list[Effect]) -> list[Effect]:
        """Takes out the final effects of calls that must be reconciled first."""
        kept: list[Effect] = []
        for effect in effects:
            if isinstance(effect, VisitEnded | CallEnded):
                call = effect.call
                if call.reconstructed and not call.reconciled:
                    key = (call.server, call.linkedid)
                    held = self._held.get(key)
                    if held is None:
                        held = self._held[key] = _Held(call, time.monotonic())
                    if isinstance(effect, CallEnded):
                        held.ended, held.since = True, time.monotonic()
                        self._wake.set()
                    continue
            kept.append(effect)
        return kept

    @property
    def pending(self) -> int:
        """Calls held for reconciliation."""
        return sum(1 for h in self._held.values() if h.ended)

    # ---- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Notes where each server's first gap begins (the last thing logged) and starts."""
        lookback = time.time() - self.settings.reconcile_lookback_seconds
        for server in self.settings.asterisk:
            since = lookback
            with contextlib.suppress(Exception):
                last = await self.service.pool.fetchval(
                    """
                    SELECT greatest(
                        (SELECT max(ended_at) FROM calls WHERE server = $1),
                        (SELECT max(updated_at) FROM open_calls WHERE server = $1))
                    """,
                    server.name,
                )
                if last is not None:
                    since = max(lookback, last.timestamp())
            self._start_since[server.name] = since
        self._task = asyncio.create_task(self._run(), name="reconciler")

    async def stop(self, grace: float = 3.0) -> None:
        """Reconciles what it can within ``grace`` seconds, then hands on everything held."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(grace):
                await self.run_once(force=True)
        # Nothing is lost: whatever could not be reconciled goes on as the service saw it.
        for key in [k for k, h in self._held.items() if h.ended]:
            self._release(self._held.pop(key).call)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_PASS_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # records unreachable: try again at the next pass
                self.stats.errors += 1
                log.warning("reconcile_failed", error=repr(exc))

    # ---- one pass ---------------------------------------------------------------------------

    async def run_once(self, *, force: bool = False) -> None:
        """Reconciles the held calls whose records are complete, and scans the gaps that are due."""
        now = time.monotonic()
        hold_s = self.settings.reconcile_hold_seconds
        ended = {k: h for k, h in self._held.items() if h.ended}
        gaps = [g for g in self._gaps if force or g.due <= now]
        if not ended and not gaps:
            return
        for server in {k[0] for k in ended} | {g.server for g in gaps}:
            calls = [h.call for k, h in ended.items() if k[0] == server]
            server_gaps = [g for g in gaps if g.server == server]
            starts = [c.started_at for c in calls] + [g.since for g in server_gaps]
            ends = [c.ended_at or c.started_at for c in calls] + [g.until for g in server_gaps]
            records = await self._records(
                server, min(starts) - _MARGIN_S, max(ends) + _MARGIN_S, [c.linkedid for c in calls]
            )
            for call in calls:
                key = (call.server, call.linkedid)
                truth = records.calls.get(call.linkedid)
                if truth is not None and truth.complete:
                    if apply_records(call, truth, with_queue_log=records.has_queue_log):
                        self.stats.corrected += 1
                    else:
                        self.stats.confirmed += 1
                elif not force and now - self._held[key].since < hold_s:
                    continue  # Asterisk has not written it all yet
                else:
                    self.stats.unmatched += 1
                    log.warning("reconcile_no_records", server=server, linkedid=call.linkedid)
                del self._held[key]
                self._release(call)
            for gap in server_gaps:
                await self._scan(gap, records)
                self._gaps.remove(gap)

    async def _scan(self, gap: _Gap, records: AsteriskRecords) -> None:
        """Hands on the calls Asterisk recorded inside a gap that the service never logged."""
        tracker = self.service.tracker
        known = {lid for (srv, lid) in tracker.calls if srv == gap.server}
        known |= {lid for (srv, lid) in self._held if srv == gap.server}
        known |= {lid for (srv, lid) in getattr(tracker, "_ended", {}) if srv == gap.server}
        # Only a little past the gap's end: what came after it is (or soon will be) in the
        # stream, and a call must not be taken from the records while its events still queue.
        candidates = records.unseen(known, gap.since - _MARGIN_S, gap.until + _SETTLE_S)
        if not candidates:
            return
        stored = await self.service.pool.fetch(
            "SELECT linkedid FROM calls WHERE server = $1 AND linkedid = ANY($2::text[])",
            gap.server,
            [c.linkedid for c in candidates],
        )
        logged = {r["linkedid"] for r in stored}
        for truth in candidates:
            if truth.linkedid in logged:
                continue
            call = call_from_records(gap.server, truth)
            self.stats.found += 1
            log.info(
                "reconcile_found_call",
                server=gap.server,
                linkedid=call.linkedid,
                outcome=call.outcome,
            )
            self._release(call)

    async def _records(
        self, server: str, since: float, until: float, linkedids: list[str]
    ) -> AsteriskRecords:
        s = self.settings
        if s.reconcile == "files":
            paths = (
                s.reconcile_queue_log_file.replace("{server}", server),
                s.reconcile_cel_file.replace("{server}", server),
            )
            return await asyncio.to_thread(_records_from_existing_files, *paths)
        async with self.service.pool.acquire() as conn:
            return await records_from_db(
                conn,
                since,
                until,
                queue_log_table=s.reconcile_queue_log_table.replace("{server}", server),
                cel_table=s.reconcile_cel_table.replace("{server}", server),
                linkedids=linkedids,
            )

    def _release(self, call: Call) -> None:
        """Hands a final call on to every subscriber: its visits' ends, then the call's."""
        effects: list[Effect] = [VisitEnded(call, v) for v in call.visits]
        effects.append(CallEnded(call))
        self.service.dispatch(effects, reconciled=True)

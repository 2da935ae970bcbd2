"""The period report over PostgreSQL: the municipality's table and the KPIs, from the rollups.

The rollups (``store/migrations/0003_reports.sql``) are hourly sums kept current by triggers
as calls land; a report adds up the hours of its period (a year is ~9,000 hours per queue),
turns them into ``kpis.Tally`` objects and derives the figures in Python, so the CLI, the API
and the page show the same numbers as ``callcenter.kpis`` gives for the same calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.kpis import GROUPINGS, WAIT_BINS, AgentTime, Tally, Thresholds

Progress = Callable[[str, int, int], None]  # (step, done, total)

# The rollups' columns that add up, in Tally's names.
_SUMS = (
    "calls calls_queued calls_wait_s calls_answered calls_talk_s offered answered abandoned "
    "short_abandoned timeouts other_exits answered_in_sl answer_wait_n answer_wait_s talk_n "
    "talk_s hold_s wait_n wait_s"
).split()
_AGENT_SUMS = (
    "calls calls_queued calls_wait_s calls_talk_s answered answered_in_sl answer_wait_n "
    "answer_wait_s talk_n talk_s hold_s rang missed"
).split()
_TIME_FORMAT = {"day": "YYYY-MM-DD", "hour": "HH24", "month": "YYYY-MM"}


class ReportError(ValueError):
    """The report cannot be made as asked (bad period, grouping, time zone)."""


@dataclass(frozen=True)
class ReportQuery:
    """What to report: local dates ``start``..``end`` (both included), one queue or all."""

    start: date
    end: date
    queue: str | None = None
    by: str | None = None
    tz: str = "Europe/Istanbul"
    top: int = 10  # request categories listed

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ReportError(f"the period ends ({self.end}) before it starts ({self.start})")
        if self.by is not None and self.by not in GROUPINGS:
            raise ReportError(f"unknown grouping {self.by!r}; use one of {', '.join(GROUPINGS)}")
        try:
            ZoneInfo(self.tz)
        except (KeyError, ValueError) as exc:
            raise ReportError(f"unknown time zone {self.tz!r}") from exc

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as UTC instants: local midnight of ``start`` to the one after ``end``."""
        zone = ZoneInfo(self.tz)
        lo = datetime.combine(self.start, datetime.min.time(), zone)
        hi = datetime.combine(self.end + timedelta(days=1), datetime.min.time(), zone)
        return lo.astimezone(UTC), hi.astimezone(UTC)


@dataclass
class Report:
    """A period's figures: the whole period, the groups asked for, and what the page charts."""

    query: ReportQuery
    thresholds: Thresholds
    total: Tally = field(default_factory=Tally)
    rows: dict[str, Tally] = field(default_factory=dict)
    agents: dict[str, AgentTime] = field(default_factory=dict)
    categories: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0  # how long it took to make


class _Params:
    """Numbered query parameters, added as the SQL text needs them."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, cast: str) -> str:
        """The placeholder of a new parameter (with its type: asyncpg needs it)."""
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


def _period_sql(p: _Params, lo: datetime, hi: datetime, queue: str | None) -> str:
    """The WHERE clause of a rollup query (aliased ``h``): the period, and the queue if one."""
    where = f"bucket >= {p.add(lo, 'timestamptz')} AND bucket < {p.add(hi, 'timestamptz')}"
    if queue is not None:
        where += f" AND h.queue = {p.add(queue, 'text')}"
    return where


def _grouped(p: _Params, by: str | None, tz: str, inner: str, measures: dict[str, str]) -> str:
    """Sums ``inner``'s rows (``hour``, ``key``, measures) into the groups of the report.

    For days, hours and months the inner query adds up each hour first, so the time zone
    conversion runs once per hour, not once per rollup row.
    """
    # A sum of bigints is numeric: counts go back to bigint (seconds, *_s, stay float8).
    outer = ", ".join(
        f"{agg}({name}){'' if agg != 'sum' or name.endswith('_s') else '::bigint'} AS {name}"
        for name, agg in measures.items()
    )
    key = "key"
    if by in _TIME_FORMAT:
        key = f"to_char(hour AT TIME ZONE {p.add(tz, 'text')}, '{_TIME_FORMAT[by]}')"
    return f"SELECT {key} AS key, {outer} FROM ({inner}) x GROUP BY 1"


def _hour_sql(by: str | None) -> str:
    """What the inner query groups by first: the hour for time groupings, nothing otherwise."""
    return "bucket" if by in _TIME_FORMAT else "NULL::timestamptz"


async def sync_thresholds(conn: Any, th: Thresholds) -> bool:
    """Makes the rollups' thresholds those of the settings; True if they had to be rebuilt."""
    want = {q: float(s) for q, s in th.service_level_s.items() if q != "*"}
    want["*"] = th.sl("*")
    rows = await conn.fetch("SELECT queue, service_level_s, short_abandon_s FROM report_thresholds")
    have = {r["queue"]: (r["service_level_s"], r["short_abandon_s"]) for r in rows}
    if have == {q: (s, th.short_abandon_s) for q, s in want.items()}:
        return False
    async with conn.transaction():
        # Serialises two reports noticing the change at once; the second finds it done.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('report_thresholds'))")
        await conn.execute("DELETE FROM report_thresholds")
        await conn.executemany(
            "INSERT INTO report_thresholds VALUES ($1, $2, $3)",
            [(q, s, th.short_abandon_s) for q, s in sorted(want.items())],
        )
        await conn.execute("SELECT report_rebuild()")
    return True


async def fold_requests(conn: Any) -> int:
    """Counts the requests of calls whose tickets changed; returns how many calls."""
    return int(await conn.fetchval("SELECT report_fold_requests()") or 0)


async def build_report(
    pool: Any,
    query: ReportQuery,
    th: Thresholds,
    progress: Progress | None = None,
    now: float | None = None,
) -> Report:
    """Reads a period's report from the rollups (keeping them in step first).

    ``now`` (epoch seconds; default the wall clock) is where sessions still open end: the
    floor's clock, which is a simulator's in the demo.
    """
    began = time.perf_counter()
    steps = ["thresholds", "requests", "calls and queues", "request categories"]
    if query.by == "agent":
        steps += ["agents", "agent time"]

    def step(i: int) -> None:
        if progress is not None:
            progress(steps[i], i, len(steps))

    report = Report(query, th)
    lo, hi = query.bounds()
    async with pool.acquire() as conn:
        step(0)
        if await sync_thresholds(conn, th) and progress is not None:
            progress("rollups rebuilt for the new thresholds", 1, len(steps))
        step(1)
        await fold_requests(conn)
        step(2)
        reads: list[tuple[Any, tuple[Any, ...]]] = [(_read_hourly, ()), (_read_requests, ())]
        if query.by == "agent":
            reads += [(_read_agents, ()), (_read_agent_time, (now,))]
        if _spare_connections(pool) < len(reads) - 1:
            for i, (read, extra) in enumerate(reads):
                step(min(2 + i, len(steps) - 1))
                await read(conn, report, lo, hi, *extra)
        else:
            # Independent sums: on connections of their own they run side by side (each
            # only adds to the report, so the order they finish in does not matter).
            async def apart(read: Any, extra: tuple[Any, ...]) -> None:
                async with pool.acquire() as own:
                    await read(own, report, lo, hi, *extra)

            step(3)
            first, *rest = reads
            await asyncio.gather(
                first[0](conn, report, lo, hi, *first[1]),
                *(apart(read, extra) for read, extra in rest),
            )
    if progress is not None:
        progress("done", len(steps), len(steps))
    report.seconds = time.perf_counter() - began
    return report


def _spare_connections(pool: Any) -> int:
    """How many more connections the pool may open besides the one in hand (0 if unknown)."""
    size = getattr(pool, "get_max_size", None)
    return int(size()) - 1 if callable(size) else 0


def _row_tally(row: Any, names: list[str]) -> Tally:
    """A Tally from one aggregated rollup row."""
    t = Tally()
    for name in names:
        setattr(t, name, row[name] or 0)
    return t


async def _read_hourly(conn: Any, report: Report, lo: datetime, hi: datetime) -> None:
    q, th = report.query, report.thresholds
    by = None if q.by == "agent" else q.by
    p = _Params()
    # Wrap-up is a setting per queue: each queue's answered calls times its wrap-up time.
    queues = [name for name in th.wrapup_s if name != "*"]
    names, secs = p.add(queues, "text[]"), p.add([th.wrapup(n) for n in queues], "float8[]")
    default = p.add(th.wrapup("*"), "float8")
    measures = {c: "sum" for c in _SUMS} | {"wait_max": "max", "wrapup_s": "sum"}
    measures |= {f"w{i}": "sum" for i in range(WAIT_BINS)}
    inner_sums = ", ".join(f"{agg}({c}) AS {c}" for c, agg in measures.items() if c != "wrapup_s")
    key = "h.queue" if by == "queue" else "''"
    inner = f"""
        SELECT {_hour_sql(by)} AS hour, {key} AS key, {inner_sums},
               sum(answered * coalesce(w.s, {default})) AS wrapup_s
        FROM report_hourly h LEFT JOIN unnest({names}, {secs}) AS w(queue, s) ON w.queue = h.queue
        WHERE {_period_sql(p, lo, hi, q.queue)}
        GROUP BY 1, 2
    """
    rows = await conn.fetch(_grouped(p, by, q.tz, inner, measures), *p.values)
    for row in rows:
        t = _row_tally(row, _SUMS)
        t.wait_max = row["wait_max"]
        t.wait_hist = [row[f"w{i}"] or 0 for i in range(WAIT_BINS)]
        t.wrapup_s = row["wrapup_s"] or 0.0
        report.total += t
        if by is not None:
            report.rows[row["key"]] = t


async def _read_requests(conn: Any, report: Report, lo: datetime, hi: datetime) -> None:
    q = report.query
    p = _Params()
    categories = await conn.fetch(
        f"""
        SELECT category, sum(n) AS n FROM report_request_hourly h
        WHERE {_period_sql(p, lo, hi, q.queue)} GROUP BY 1
        """,
        *p.values,
    )
    ranked = sorted(((r["category"], int(r["n"])) for r in categories), key=lambda cn: -cn[1])
    report.total.requests = sum(n for _, n in ranked)
    report.categories = [(c, n) for c, n in ranked if n > 0][: q.top]
    if q.by is None:
        return
    p = _Params()
    table, key = "report_request_hourly", "h.queue" if q.by == "queue" else "''"
    if q.by == "agent":
        table, key = "report_request_agent_hourly", "h.agent"
    inner = f"""
        SELECT {_hour_sql(q.by)} AS hour, {key} AS key, sum(n) AS n FROM {table} h
        WHERE {_period_sql(p, lo, hi, q.queue)} GROUP BY 1, 2
    """
    for row in await conn.fetch(_grouped(p, q.by, q.tz, inner, {"n": "sum"}), *p.values):
        if row["n"] and (q.by != "agent" or row["key"]):
            report.rows.setdefault(row["key"], Tally()).requests += int(row["n"])


async def _read_agents(conn: Any, report: Report, lo: datetime, hi: datetime) -> None:
    th = report.thresholds
    p = _Params()
    sums = ", ".join(f"sum({c}) AS {c}" for c in _AGENT_SUMS)
    queues = [name for name in th.wrapup_s if name != "*"]
    wrapups = p.add(queues, "text[]"), p.add([th.wrapup(n) for n in queues], "float8[]")
    default = p.add(th.wrapup("*"), "float8")
    rows = await conn.fetch(
        f"""
        SELECT agent, {sums}, sum(answered * coalesce(w.s, {default})) AS wrapup_s
        FROM report_agent_hourly h LEFT JOIN unnest({wrapups[0]}, {wrapups[1]}) AS w(queue, s)
          ON w.queue = h.queue
        WHERE {_period_sql(p, lo, hi, report.query.queue)}
        GROUP BY 1
        """,
        *p.values,
    )
    for row in rows:
        t = _row_tally(row, _AGENT_SUMS)
        t.calls_answered = t.calls  # an agent's calls are the calls they answered first
        t.wrapup_s = row["wrapup_s"] or 0.0
        report.rows.setdefault(row["agent"], Tally()).__iadd__(t)


_SECONDS = (
    "(SELECT coalesce(sum(extract(epoch FROM upper(x) - lower(x))), 0)::float8 FROM unnest(m) x)"
)


async def _read_agent_time(
    conn: Any, report: Report, lo: datetime, hi: datetime, now: float | None
) -> None:
    # PostgreSQL merges each agent's sessions and pauses (multiranges: time in several
    # queues at once counts once, a pause only while logged in), so a year's 200,000 rows
    # never leave the server; the arithmetic is kpis.agent_times' (the tests check both).
    end = min(hi, datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC))
    if end <= lo:
        return
    p = _Params()
    lo_p, end_p = p.add(lo, "timestamptz"), p.add(end, "timestamptz")
    within = (
        f"started_at < {end_p} AND coalesce(ended_at, 'infinity') > {lo_p}"
        " AND coalesce(ended_at, 'infinity') >= started_at"
    )
    if report.query.queue is not None:
        within += f" AND queue = {p.add(report.query.queue, 'text')}"
    span = f"tstzrange(started_at, least(coalesce(ended_at, {end_p}), {end_p}))"
    rows = await conn.fetch(
        f"""
        WITH online AS (
            SELECT agent, range_agg({span}) * tstzmultirange(tstzrange({lo_p}, {end_p})) AS m
            FROM agent_sessions WHERE {within} GROUP BY agent
        ), paused AS (
            SELECT agent, coalesce(reason, '') AS reason, range_agg({span}) AS m
            FROM agent_pauses WHERE {within} GROUP BY 1, 2
        ), clipped AS (
            SELECT p.agent, p.reason, p.m * coalesce(o.m, '{{}}'::tstzmultirange) AS m
            FROM paused p LEFT JOIN online o ON o.agent = p.agent
        ), every AS (
            SELECT agent, range_agg(m) AS m FROM clipped GROUP BY agent
        )
        SELECT 'online' AS kind, agent, '' AS reason, {_SECONDS} AS s FROM online
        UNION ALL SELECT 'paused', agent, '', {_SECONDS} FROM every
        UNION ALL SELECT 'reason', agent, reason, {_SECONDS} FROM clipped
        """,
        *p.values,
    )
    times: dict[str, AgentTime] = {}
    for row in rows:
        t = times.setdefault(row["agent"], AgentTime())
        if row["kind"] == "online":
            t.logged_in_s = row["s"]
        elif row["kind"] == "paused":
            t.paused_s = row["s"]
        elif row["s"] > 0:
            t.pauses[row["reason"]] = row["s"]
    report.agents = dict(sorted(times.items()))
    for agent in report.agents:
        report.rows.setdefault(agent, Tally())

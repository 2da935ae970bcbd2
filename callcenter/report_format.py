"""A report's shapes: one JSON object, CSV rows, and the plain-text table people read."""

from __future__ import annotations

import csv
import io
from typing import Any

from callcenter.kpis import Tally, wait_bin_labels
from callcenter.reports import Report

# The per-group columns of CSV and table, after the group's name.
COLUMNS = (
    "calls requests avg_talk_s avg_wait_s answered_calls offered answered abandoned "
    "short_abandoned timeouts other_exits service_level abandon_rate asa_s aht_s avg_hold_s "
    "avg_queue_wait_s max_wait_s request_rate"
).split()
AGENT_COLUMNS = "rang missed logged_in_s paused_s occupancy pauses".split()
# The by-queue row of calls that never entered a queue (IVR self-service, refused by a full one).
NO_QUEUE = "(no queue)"
# Figures that mean nothing for one agent (they are about the queue's callers).
_NOT_FOR_AGENTS = (
    "offered abandoned short_abandoned timeouts other_exits service_level abandon_rate "
    "avg_queue_wait_s max_wait_s"
).split()


def mmss(seconds: float | None) -> str:
    """Seconds as m:ss (h:mm:ss from an hour), the way the municipality writes durations."""
    if seconds is None:
        return "-"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _row(report: Report, key: str, t: Tally) -> dict[str, Any]:
    """One group's figures, with the agent's time when grouped by agent."""
    by = report.query.by or "total"
    out: dict[str, Any] = {by: key, **t.kpis()}
    if report.query.by == "agent":
        for name in _NOT_FOR_AGENTS:
            out[name] = None
        time = report.agents.get(key)
        out["rang"], out["missed"] = t.rang, t.missed
        extra = time.kpis(t.talk_s + t.wrapup_s) if time else {}
        for name in ("logged_in_s", "paused_s", "occupancy", "pauses"):
            out[name] = extra.get(name)
    return out


def sorted_rows(report: Report) -> list[dict[str, Any]]:
    """The groups in reading order: time ascending, queues and agents by name."""
    return [_row(report, k, report.rows[k]) for k in sorted(report.rows)]


def to_dict(report: Report) -> dict[str, Any]:
    """The report as one JSON object: the period's KPIs at the top level, then ``rows``."""
    q = report.query
    th = report.thresholds
    kpis = report.total.kpis()
    return {
        "from": q.start.isoformat(),
        "to": q.end.isoformat(),
        "timezone": q.tz,
        "queue": q.queue,
        "by": q.by,
        **kpis,
        "avg_talk": mmss(kpis["avg_talk_s"]),
        "avg_wait": mmss(kpis["avg_wait_s"]),
        "thresholds": {
            "service_level_s": dict(th.service_level_s),
            "short_abandon_s": th.short_abandon_s,
            "wrapup_s": dict(th.wrapup_s),
        },
        "wait_distribution": [
            {"bin": label, "count": n}
            for label, n in zip(wait_bin_labels(), report.total.wait_hist, strict=True)
        ],
        "top_categories": [{"category": c, "requests": n} for c, n in report.categories],
        "rows": sorted_rows(report) if q.by else [],
        "elapsed_s": round(report.seconds, 3),
    }


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): agent
# and queue names come from the PBX, so a text cell starting so is prefixed with a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text value a spreadsheet shows as text, never runs as a formula; numbers unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    """A CSV cell: pauses as "reason=seconds;…", None as empty, formulas neutralised."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return safe_cell(";".join(f"{k}={v}" for k, v in value.items()))
    return safe_cell(value)


def to_csv(report: Report) -> str:
    """One CSV line per group (or one for the period), then a ``total`` line when grouped."""
    by = report.query.by or "total"
    columns = [by, *COLUMNS] + (AGENT_COLUMNS if report.query.by == "agent" else [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    rows = sorted_rows(report) if report.query.by else []
    total = {by: "total", **report.total.kpis()}
    for row in [*rows, total]:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def to_table(report: Report) -> str:
    """The municipality's table for the period, the KPIs, then one line per group."""
    q, k = report.query, report.total.kpis()
    where = f"queue {q.queue}" if q.queue else "all queues"
    lines = [
        f"Report {q.start} .. {q.end} ({q.tz}), {where}",
        "",
        f"  {'Calls':<28}{_num(k['calls']):>12}",
        f"  {'Requests forwarded':<28}{_num(k['requests']):>12}  ({_pct(k['request_rate'])}"
        " of answered calls)",
        f"  {'Average talk':<28}{mmss(k['avg_talk_s']):>12}",
        f"  {'Average wait':<28}{mmss(k['avg_wait_s']):>12}",
        "",
    ]
    kpis = [
        ("Offered (queue visits)", _num(k["offered"])),
        ("Answered", _num(k["answered"])),
        ("Abandoned", _num(k["abandoned"])),
        ("Short abandons", _num(k["short_abandoned"])),
        ("Timeouts", _num(k["timeouts"])),
        ("Other exits", _num(k["other_exits"])),
        ("Service level", _pct(k["service_level"])),
        ("Abandon rate", _pct(k["abandon_rate"])),
        ("ASA", mmss(k["asa_s"])),
        ("AHT", mmss(k["aht_s"])),
        ("Average hold", mmss(k["avg_hold_s"])),
        ("Longest wait", mmss(k["max_wait_s"])),
    ]
    lines += [f"  {name:<28}{value:>12}" for name, value in kpis]
    if q.by:
        lines += ["", _group_table(report)]
    return "\n".join(lines) + "\n"


def _group_table(report: Report) -> str:
    """The per-group lines, aligned."""
    by = report.query.by or ""
    agent = by == "agent"
    head = [by, "calls", "requests", "avg talk", "avg wait"]
    head += ["answered", "ASA", "AHT", "rang", "missed", "logged in", "paused", "occupancy"]
    if not agent:
        head = head[:5] + ["offered", "answered", "abandoned", "SL", "ASA", "AHT", "max wait"]
    table = [head]
    for row in sorted_rows(report):
        cells = [
            str(row[by] or (NO_QUEUE if by == "queue" else "-")),
            _num(row["calls"]),
            _num(row["requests"]),
            mmss(row["avg_talk_s"]),
            mmss(row["avg_wait_s"]),
        ]
        if agent:
            cells += [
                _num(row["answered"]),
                mmss(row["asa_s"]),
                mmss(row["aht_s"]),
                _num(row["rang"]),
                _num(row["missed"]),
                mmss(row["logged_in_s"]),
                mmss(row["paused_s"]),
                _pct(row["occupancy"]),
            ]
        else:
            cells += [
                _num(row["offered"]),
                _num(row["answered"]),
                _num(row["abandoned"]),
                _pct(row["service_level"]),
                mmss(row["asa_s"]),
                mmss(row["aht_s"]),
                mmss(row["max_wait_s"]),
            ]
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    note = ""
    if by == "queue" and any(not key for key in report.rows):
        note = f"\n  {NO_QUEUE}: calls that never reached a queue (IVR only, or a full queue)"
    return _aligned(table, widths) + ("\n" + note if note else "")


def _aligned(table: list[list[str]], widths: list[int]) -> str:
    """Rows of cells, the first column left-aligned and the others right-aligned."""
    return "\n".join(
        "  "
        + "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in table
    )

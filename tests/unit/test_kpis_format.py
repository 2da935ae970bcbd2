"""The report's presentation: m:ss durations, CSV and JSON shapes, the progress ticker."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from callcenter.commands.report import Ticker
from callcenter.kpis import AgentTime, Tally, Thresholds
from callcenter.report_format import mmss, to_csv, to_dict, to_table
from callcenter.reports import Report, ReportError, ReportQuery


def test_mmss() -> None:
    assert [mmss(s) for s in (None, 0, 26, 72, 71.6, 599.5, 3725)] == [
        "-",
        "0:00",
        "0:26",
        "1:12",
        "1:12",
        "10:00",
        "1:02:05",
    ]


def _report(by: str | None) -> Report:
    q = ReportQuery(date(2024, 1, 1), date(2024, 12, 31), by=by)
    r = Report(q, Thresholds())
    r.total = Tally(calls=3, calls_queued=2, calls_wait_s=52.0, calls_answered=2, calls_talk_s=144)
    r.total.requests = 1
    if by:
        r.rows = {"b": Tally(calls=1), "a": Tally(calls=2, requests=1)}
    if by == "agent":
        r.agents = {"a": AgentTime(logged_in_s=100.0, paused_s=20.0, pauses={"Çay": 20.0})}
    return r


def test_json_has_the_period_at_the_top_and_rows_in_order() -> None:
    d = to_dict(_report("queue"))
    assert (d["calls"], d["requests"], d["avg_talk_s"], d["avg_wait_s"]) == (3, 1, 72.0, 26.0)
    assert (d["avg_talk"], d["avg_wait"]) == ("1:12", "0:26")
    assert [r["queue"] for r in d["rows"]] == ["a", "b"]
    assert d["from"] == "2024-01-01" and d["to"] == "2024-12-31"
    assert len(d["wait_distribution"]) == 8
    assert to_dict(_report(None))["rows"] == []


def test_agent_rows_carry_agent_time_and_no_queue_figures() -> None:
    (a, b) = to_dict(_report("agent"))["rows"]
    assert a["agent"] == "a" and a["logged_in_s"] == 100.0 and a["pauses"] == {"Çay": 20.0}
    assert a["service_level"] is None and a["offered"] is None
    assert b["logged_in_s"] is None


def test_csv_has_a_header_the_groups_and_a_total() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(_report("agent")))))
    assert rows[0][:3] == ["agent", "calls", "requests"] and rows[0][-1] == "pauses"
    assert [r[0] for r in rows[1:]] == ["a", "b", "total"]
    assert rows[1][-1] == "Çay=20.0"
    assert list(csv.reader(io.StringIO(to_csv(_report(None)))))[1][:2] == ["total", "3"]


def test_table_shows_the_municipal_figures() -> None:
    text = to_table(_report("queue"))
    assert "Calls" in text and "1:12" in text and "0:26" in text
    assert text.splitlines()[-1].lstrip().startswith("b")


def test_queries_are_checked() -> None:
    with pytest.raises(ReportError, match="before it starts"):
        ReportQuery(date(2024, 2, 1), date(2024, 1, 1))
    with pytest.raises(ReportError, match="grouping"):
        ReportQuery(date(2024, 1, 1), date(2024, 1, 1), by="week")
    with pytest.raises(ReportError, match="time zone"):
        ReportQuery(date(2024, 1, 1), date(2024, 1, 1), tz="Mars/Olympus")
    lo, hi = ReportQuery(date(2024, 3, 5), date(2024, 3, 5)).bounds()
    assert (lo.hour, hi.hour, (hi - lo).days) == (21, 21, 1)  # Istanbul midnight is 21:00 UTC


def test_ticker_stays_quiet_then_prints_each_step_once() -> None:
    out = io.StringIO()
    ticker = Ticker(out)
    ticker("calls and queues", 2, 4)
    ticker.render()
    assert out.getvalue() == ""  # fast reports print nothing
    ticker.began -= 5
    ticker.render()
    ticker.render()
    ticker("done", 4, 4)
    ticker.render(final=True)
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "report: 2/4 calls and queues",
        "report: 4/4 done",
    ]

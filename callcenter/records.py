"""Asterisk's own durable records of calls: queue_log and CEL, parsed into plain values; pure.

Both come in two shapes: the files Asterisk writes (``queue_log``; the CSV of ``cel_custom``
with the field list of ``asterisk_conf/cel_custom.conf``) and the rows of the PostgreSQL
tables its realtime/pgsql back-ends fill (``queue_log`` through ``res_config_pgsql``,
``cel`` through ``cel_pgsql``; see ``store/migrations``). Either way the result is a list of
``QueueLogEntry`` or ``CelEvent`` in Asterisk's order.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class RecordError(ValueError):
    """A queue_log line or CEL record that cannot be read."""


@dataclass(frozen=True, slots=True)
class QueueLogEntry:
    """One queue_log line: ``epoch|callid|queue|agent|event|data…``."""

    ts: float
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...] = ()

    def arg(self, index: int) -> str:
        """The data field at ``index`` ('' when absent)."""
        return self.data[index] if index < len(self.data) else ""

    def int_arg(self, index: int) -> int | None:
        """The data field at ``index`` as an integer (None when absent or not a number)."""
        try:
            return int(self.arg(index))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class CelEvent:
    """One CEL record: what happened to which channel of which call, and when."""

    event: str
    ts: float
    uniqueid: str
    linkedid: str
    channel: str = ""
    cid_name: str = ""
    cid_num: str = ""
    exten: str = ""
    context: str = ""
    application: str = ""
    app_data: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def _epoch(value: Any) -> float:
    """Epoch seconds from a number, a numeric string or a timestamp (naive means UTC)."""
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        return when.timestamp()
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RecordError(f"not a time: {text[:40]!r}") from exc
    return _epoch(parsed)


def parse_queue_log_line(line: str) -> QueueLogEntry:
    """Parses one line of Asterisk's queue_log file; raises RecordError if it is not one."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[4]:
        raise RecordError(f"not a queue_log line: {line[:60]!r}")
    return QueueLogEntry(_epoch(parts[0]), parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


def parse_queue_log(lines: Iterable[str]) -> tuple[list[QueueLogEntry], int]:
    """Parses a queue_log file; returns the entries and how many lines were unreadable."""
    entries: list[QueueLogEntry] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            entries.append(parse_queue_log_line(line))
        except RecordError:
            bad += 1
    return entries, bad


def queue_log_from_row(row: Mapping[str, Any]) -> QueueLogEntry:
    """A row of the realtime ``queue_log`` table (data1…data5, or one ``data``) as an entry."""
    if row.get("data1") is not None or "data1" in row:
        data = [str(row.get(f"data{i}") or "") for i in range(1, 6)]
        while data and not data[-1]:
            data.pop()
    else:
        data = str(row.get("data") or "").split("|")
    return QueueLogEntry(
        _epoch(row["time"]),
        str(row.get("callid") or ""),
        str(row.get("queuename") or ""),
        str(row.get("agent") or ""),
        str(row.get("event") or ""),
        tuple(data),
    )


# The field order of asterisk_conf/cel_custom.conf (and of the recorded traces' CSV).
CEL_CSV_FIELDS = (
    "EventType",
    "EventTime",
    "Name",
    "Num",
    "ani",
    "rdnis",
    "dnid",
    "Exten",
    "Context",
    "ChanName",
    "AppName",
    "AppData",
    "AMAFlags",
    "AccountCode",
    "UniqueID",
    "LinkedID",
    "Peer",
    "PeerAccount",
    "UserField",
    "EventExtra",
)


def _extra(text: str) -> Mapping[str, Any]:
    """CEL's EventExtra (JSON text, often empty) as a mapping; anything else is ignored."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _cel(values: Mapping[str, Any]) -> CelEvent:
    """Builds a CelEvent from a mapping with cel_pgsql's column names."""
    event = str(values.get("eventtype") or "")
    uniqueid = str(values.get("uniqueid") or "")
    if not event or not uniqueid:
        raise RecordError("CEL record without eventtype or uniqueid")
    return CelEvent(
        event=event,
        ts=_epoch(values["eventtime"]),
        uniqueid=uniqueid,
        linkedid=str(values.get("linkedid") or uniqueid),
        channel=str(values.get("channame") or ""),
        cid_name=str(values.get("cid_name") or ""),
        cid_num=str(values.get("cid_num") or ""),
        exten=str(values.get("exten") or ""),
        context=str(values.get("context") or ""),
        application=str(values.get("appname") or ""),
        app_data=str(values.get("appdata") or ""),
        extra=_extra(str(values.get("extra") or "")),
    )


def cel_from_row(row: Mapping[str, Any]) -> CelEvent:
    """A row of the ``cel`` table that ``cel_pgsql`` writes, as a CelEvent."""
    return _cel(row)


_CSV_TO_COLUMN = {
    "EventType": "eventtype",
    "EventTime": "eventtime",
    "Name": "cid_name",
    "Num": "cid_num",
    "Exten": "exten",
    "Context": "context",
    "ChanName": "channame",
    "AppName": "appname",
    "AppData": "appdata",
    "UniqueID": "uniqueid",
    "LinkedID": "linkedid",
    "EventExtra": "extra",
}


def parse_cel_csv(
    lines: Iterable[str], fields: tuple[str, ...] = CEL_CSV_FIELDS
) -> tuple[list[CelEvent], int]:
    """Parses cel_custom's CSV; returns the events and how many records were unreadable."""
    events: list[CelEvent] = []
    bad = 0
    for values in csv.reader(lines):
        if not values:
            continue
        if len(values) < len(fields):
            bad += 1
            continue
        named = {
            _CSV_TO_COLUMN[f]: v
            for f, v in zip(fields, values, strict=False)
            if f in _CSV_TO_COLUMN
        }
        try:
            events.append(_cel(named))
        except (RecordError, KeyError):
            bad += 1
    return events, bad

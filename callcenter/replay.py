"""Replays a recorded AMI trace (JSON lines) through the pipeline: the core, without sockets.

Trace format (as recorded from a real Asterisk, and as ``callcenter record`` writes it):
``{"t": seconds, "raw": "<message incl. trailing CRLFCRLF>"}`` per received message,
``{"t": seconds, "sent": "<action>"}`` per action sent, and optionally a first
``{"meta": {"t0_epoch": …}}`` line. ``t`` is relative to ``t0_epoch`` (also read from a
``meta.json`` beside the trace).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from callcenter.model import Call, CallEnded, Effect
from callcenter.pipeline import Pipeline

# A resync is the login snapshot: QueueStatus ... CoreShowChannels; replay brackets it the
# way the live adapter does, so the tracker reconciles at the same point.
_RESYNC_START = "Action: QueueStatus"
_RESYNC_DONE = "Event: CoreShowChannelsComplete"


def open_trace(path: str | Path) -> IO[str]:
    """Opens a trace file, gzip or plain, as text."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def trace_t0(path: str | Path) -> float | None:
    """The trace's start epoch from ``meta.json`` beside it, if there is one."""
    meta = Path(path).with_name("meta.json")
    if meta.exists():
        return float(json.loads(meta.read_text(encoding="utf-8"))["t0_epoch"])
    return None


def iter_trace(lines: Iterable[str], t0: float = 0.0) -> Iterator[tuple[float, str]]:
    """Yields ``(epoch, message text)`` for each received message of a trace, in order.

    The login snapshot is bracketed with the synthetic ``CallcenterResyncBegin``/``End``
    messages the live adapter sends. Lines that are not JSON objects are skipped.
    """
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if "meta" in record:
            t0 = float(record["meta"].get("t0_epoch", t0))
            continue
        ts = t0 + float(record.get("t", 0.0))
        if "sent" in record:
            if str(record["sent"]).startswith(_RESYNC_START):
                yield ts, "Event: CallcenterResyncBegin"
            continue
        raw = record.get("raw")
        if not isinstance(raw, str) or raw.startswith("Asterisk Call Manager"):
            continue  # the greeting line, or nothing
        yield ts, raw.rstrip("\r\n")
        if raw.startswith(_RESYNC_DONE):
            yield ts, "Event: CallcenterResyncEnd"


def replay_lines(
    lines: Iterable[str],
    server: str = "pbx1",
    t0: float = 0.0,
    pipeline: Pipeline | None = None,
    finish: bool = True,
) -> Iterator[Effect]:
    """Feeds a trace's lines through a pipeline and yields every effect in order.

    With ``finish`` the calls still open at the end are closed (flagged reconstructed).
    """
    pipe = pipeline or Pipeline()
    last_ts = t0
    for ts, text in iter_trace(lines, t0):
        last_ts = max(last_ts, ts)
        yield from pipe.feed_text(server, text, ts)
    if finish:
        yield from pipe.tracker.close_all(last_ts, server)


def replay_file(
    path: str | Path, server: str = "pbx1", pipeline: Pipeline | None = None
) -> list[Call]:
    """Replays a trace file and returns the finished calls in the order they ended."""
    t0 = trace_t0(path) or 0.0
    with open_trace(path) as fh:
        return [e.call for e in replay_lines(fh, server, t0, pipeline) if isinstance(e, CallEnded)]

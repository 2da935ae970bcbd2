"""``callcenter replay PATH``: the core on a recorded trace, one JSON call per line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator

from callcenter.model import Call, CallEnded
from callcenter.pipeline import Pipeline
from callcenter.replay import open_trace, replay_lines, trace_t0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument("path", help="trace file (JSON lines, optionally .gz)")
    parser.add_argument("--server", default="pbx1", help="server name to record the calls under")
    parser.add_argument(
        "--stats", action="store_true", help="print pipeline counters to stderr at the end"
    )
    parser.add_argument(
        "--queue-log",
        metavar="FILE",
        help="Asterisk's queue_log of the same time: reconcile the calls with it",
    )
    parser.add_argument(
        "--cel",
        metavar="FILE",
        help="Asterisk's CEL (cel_custom CSV, .gz ok): reconcile, and find calls AMI never showed",
    )


def _print(call: Call) -> None:
    sys.stdout.write(json.dumps(call.to_dict(), ensure_ascii=False) + "\n")


class NotATrace(ValueError):
    """The file is readable but holds no AMI trace records."""


def _trace_lines(fh: Iterable[str], path: str) -> Iterator[str]:
    """Passes a trace's lines on, refusing a file whose first record is not a trace record."""
    checked = False
    for line in fh:
        if not checked and line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict) or not _TRACE_KEYS & record.keys():
                raise NotATrace(
                    f"{path} is not an AMI trace (expected JSON lines with "
                    '"raw", "sent" or "meta", as `callcenter record` writes)'
                )
            checked = True
        yield line
    if not checked:
        raise NotATrace(f"{path} is empty: no AMI trace records")


_TRACE_KEYS = {"raw", "sent", "meta"}


def main(args: argparse.Namespace) -> int:
    """Prints one JSON object per finished call, in the order the calls ended.

    With ``--queue-log``/``--cel`` the calls that crossed a gap in the trace take Asterisk's
    account, the calls Asterisk recorded during the trace that it never showed are added,
    all flagged ``reconciled``; the calls are then printed once the trace is read.
    """
    from callcenter.logs import configure_logging

    # Standard output carries the calls; anything logged (anomalies, skipped records) goes
    # to standard error, warnings only.
    configure_logging("console", "warning", True)
    pipe = Pipeline()
    reconcile = bool(args.queue_log or args.cel)
    records = None
    if reconcile:
        from callcenter.reconciler import records_from_files

        try:
            records = records_from_files(args.queue_log, args.cel)
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            print(f"replay: cannot read Asterisk's records: {exc}", file=sys.stderr)
            return 2
    try:
        fh = open_trace(args.path)
    except OSError as exc:
        print(f"replay: cannot open {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    calls: list[Call] = []
    try:
        with fh:
            lines = _trace_lines(fh, args.path)
            t0 = trace_t0(args.path) or 0.0
            for effect in replay_lines(lines, args.server, t0, pipe):
                if isinstance(effect, CallEnded):
                    if records is None:
                        _print(effect.call)
                    else:
                        calls.append(effect.call)
    except NotATrace as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(
            f"replay: {args.path} is not a text trace (not UTF-8: a binary file?)", file=sys.stderr
        )
        return 2
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile, a truncated .gz, a read error
        print(f"replay: cannot read {args.path}: {exc}", file=sys.stderr)
        return 2
    if records is not None:
        from callcenter.reconcile import reconcile as run

        starts = [c.started_at for c in calls]
        ends = [c.ended_at or c.started_at for c in calls]
        window = (min(starts), max(ends)) if calls else None
        result = run(calls, records, args.server, window)
        for call in sorted(calls + result.found, key=lambda c: (c.ended_at or 0.0, c.linkedid)):
            _print(call)
        if args.stats:
            summary = {
                "corrected": len(result.corrected),
                "confirmed": len(result.confirmed),
                "found": len(result.found),
            }
            print(json.dumps({"reconcile": summary}), file=sys.stderr)
    if args.stats:
        print(json.dumps({**pipe.counters, **pipe.tracker.counters}), file=sys.stderr)
    return 0

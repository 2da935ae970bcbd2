"""``callcenter replay PATH``: the core on a recorded trace, one JSON call per line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator

from callcenter.model import CallEnded
from callcenter.pipeline import Pipeline
from callcenter.replay import open_trace, replay_lines, trace_t0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument("path", help="trace file (JSON lines, optionally .gz)")
    parser.add_argument("--server", default="pbx1", help="server name to record the calls under")
    parser.add_argument(
        "--stats", action="store_true", help="print pipeline counters to stderr at the end"
    )


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
    """Prints one JSON object per finished call, in the order the calls ended."""
    pipe = Pipeline()
    try:
        fh = open_trace(args.path)
    except OSError as exc:
        print(f"replay: cannot open {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        with fh:
            lines = _trace_lines(fh, args.path)
            t0 = trace_t0(args.path) or 0.0
            for effect in replay_lines(lines, args.server, t0, pipe):
                if isinstance(effect, CallEnded):
                    sys.stdout.write(json.dumps(effect.call.to_dict(), ensure_ascii=False) + "\n")
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
    if args.stats:
        print(json.dumps({**pipe.counters, **pipe.tracker.counters}), file=sys.stderr)
    return 0

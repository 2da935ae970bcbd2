"""``callcenter replay PATH``: the core on a recorded trace, one JSON call per line."""

from __future__ import annotations

import argparse
import json
import sys

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


def main(args: argparse.Namespace) -> int:
    """Prints one JSON object per finished call, in the order the calls ended."""
    pipe = Pipeline()
    try:
        fh = open_trace(args.path)
    except OSError as exc:
        print(f"replay: cannot open {args.path}: {exc}", file=sys.stderr)
        return 2
    with fh:
        for effect in replay_lines(fh, args.server, trace_t0(args.path) or 0.0, pipe):
            if isinstance(effect, CallEnded):
                sys.stdout.write(json.dumps(effect.call.to_dict(), ensure_ascii=False) + "\n")
    if args.stats:
        print(json.dumps({**pipe.counters, **pipe.tracker.counters}), file=sys.stderr)
    return 0

"""``callcenter record``: writes live AMI traffic as a trace that ``replay`` reads."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from callcenter.config import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument("--out", required=True, help="trace file to write (.gz to compress)")
    parser.add_argument("--server", help="name of the configured Asterisk server (default: first)")
    parser.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C)")


def main(args: argparse.Namespace) -> int:
    """Records until --duration, Ctrl-C or the server closing; prints the messages written."""
    from callcenter.ami import AmiError, record_trace

    settings = load_settings(args.config)  # a ConfigError exits 2 in __main__
    servers = {s.name: s for s in settings.asterisk}
    server = servers.get(args.server) if args.server else settings.asterisk[0]
    if server is None:
        print(
            f"record: no Asterisk server named {args.server!r} ({', '.join(servers)})",
            file=sys.stderr,
        )
        return 2

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await record_trace(server, args.out, args.duration, stop)

    try:
        written = asyncio.run(go())
    except AmiError as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 1
    print(f"recorded {written} messages from {server.name} to {args.out}")
    return 0

"""``callcenter demo``: everything on embedded defaults with a simulated Asterisk."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument(
        "--duration", type=float, help="wall seconds to run (default: until Ctrl-C)"
    )
    parser.add_argument(
        "--speed", type=float, default=30.0, help="simulated seconds per wall second (default 30)"
    )
    parser.add_argument("--http-port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--seed", type=int, default=1, help="traffic seed (default 1)")
    parser.add_argument("--agents", type=int, help="agents at the peak (default: the day's plan)")


def main(args: argparse.Namespace) -> int:
    """Runs the demo and prints, as its last line, one JSON object summarising the run."""
    from callcenter.demo import DemoOptions, run_demo
    from callcenter.logs import configure_logging

    configure_logging("console", "warning", True)
    options = DemoOptions(
        duration=args.duration,
        speed=args.speed,
        http_port=args.http_port,
        seed=args.seed,
        agents=args.agents,
    )

    async def go() -> dict[str, object]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await run_demo(options, stop=stop)

    try:
        result = asyncio.run(go())
    except Exception as exc:  # a start-up failure: one clear line
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0

"""``callcenter sim``: the simulated Asterisk on its own (load generator, or a working day)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the command's arguments."""
    parser.add_argument(
        "--calls-per-second",
        type=float,
        help="load mode: a steady rate (default: the municipality's working day)",
    )
    parser.add_argument("--agents", type=int, help="agents (load mode default 50)")
    parser.add_argument("--port", type=int, default=5038, help="AMI port (default 5038)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per wall second (default 1)"
    )
    parser.add_argument("--seed", type=int, help="traffic seed (reproducible runs)")
    parser.add_argument("--duration", type=float, help="wall seconds to run (default: forever)")
    parser.add_argument("--secret", default="callcenter", help="AMI secret of user callcenter")
    parser.add_argument(
        "--year",
        action="store_true",
        help="no server: print a whole simulated year's figures and exit",
    )


def main(args: argparse.Namespace) -> int:
    """Serves simulated AMI until --duration or Ctrl-C; prints the run's summary as JSON."""
    from callcenter.sim import run_sim, simulate_year

    if args.year:
        year = simulate_year(seed=args.seed if args.seed is not None else 2024)
        print(json.dumps(dataclasses.asdict(year), ensure_ascii=False))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        summary = asyncio.run(
            run_sim(
                calls_per_second=args.calls_per_second,
                agents=args.agents,
                port=args.port,
                host=args.host,
                speed=args.speed,
                seed=args.seed,
                duration=args.duration,
                secret=args.secret,
            )
        )
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"sim: cannot listen on {args.host}:{args.port}: {exc}")
        return 1
    print(json.dumps(summary, ensure_ascii=False))
    return 0

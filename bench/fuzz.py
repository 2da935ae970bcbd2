"""The fuzz suite in its long form: every property of tests/fuzz with a bigger budget.

Runs ``pytest tests/fuzz`` twice in subprocesses: the short form ``make test`` runs (the
baseline of the same run), then the long one (``--scale`` times every budget, 20 by default),
and prints how many examples each property ran, in how long. Needs PostgreSQL for the API
properties (``DATABASE_URL``, as ``make bench`` provides).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/fuzz.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(scale: float) -> tuple[dict[str, int], float, int]:
    """Runs the fuzz tests at ``scale``; returns examples per property, seconds, exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = {
            **os.environ,
            "CALLCENTER_FUZZ_SCALE": str(scale),
            "CALLCENTER_FUZZ_REPORT": str(report),
        }
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if done.returncode:
            print(done.stdout[-4000:], done.stderr[-2000:], sep="\n")
        counts = json.loads(report.read_text()) if report.exists() else {}
    return counts, elapsed, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=20.0, help="budget multiplier (long form)")
    args = parser.parse_args()
    short, short_s, code = run(1.0)
    if code:
        return code
    long, long_s, code = run(args.scale)
    print(f"{'property':<24} {'make test':>10} {'long form':>10}")
    for name in sorted(set(short) | set(long)):
        print(f"{name:<24} {short.get(name, 0):>10,} {long.get(name, 0):>10,}")
    total_short, total_long = sum(short.values()), sum(long.values())
    print(f"{'total':<24} {total_short:>10,} {total_long:>10,}")
    print(
        f"time: {short_s:.0f} s (make test) and {long_s:.0f} s (x{args.scale:g}); "
        f"{total_long / max(total_short, 1):.1f}x the examples; "
        f"{total_long / long_s:.0f} examples/s in the long form"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())

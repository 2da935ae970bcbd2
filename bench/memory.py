"""Memory at 10,000 simultaneous calls and 2,000 agents, through the whole running service.

Runs tests/integration/test_memory.py's measurement at full load (and, as the baseline of the
same run, at a tenth of it): a started service with PostgreSQL and every web feature ingests
synthetic AMI bytes through the adapter's protocol and queue. Prints the Python heap above the
idle service (tracemalloc) with every call live, after all ended, and at its peak, the process
RSS, and the budget docs/reliability.md states.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/memory.py
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import tempfile
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import _drop_database, _new_database, run_async, server_url  # noqa: E402
from tests.fuzz.amigen import Load  # noqa: E402
from tests.integration.test_memory import budget, measure  # noqa: E402


def _rss_mb() -> float:
    """The process's resident set now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=2_000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    mb = 1e6
    for load in (Load(args.calls // 10, args.agents // 10), Load(args.calls, args.agents)):
        name, url = _new_database(migrated=True)
        try:
            rss_before = _rss_mb()
            with tempfile.TemporaryDirectory() as spool:
                figures = asyncio.run(measure(load, url, Path(spool)))
            rss_after = _rss_mb()
        finally:
            run_async(_drop_database(server_url(), name))
        live_bound, ended_bound = budget(load)
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{load.calls:>6} calls {load.agents:>5} agents: "
            f"live {figures.live / mb:6.1f} MB (bound {live_bound / mb:5.1f}, "
            f"{figures.live / load.calls / 1e3:4.1f} kB/call), "
            f"ended {figures.ended / mb:6.1f} MB (bound {ended_bound / mb:5.1f}), "
            f"peak {figures.peak / mb:6.1f} MB; rows {figures.rows}; "
            f"RSS {rss_before:5.0f} -> {rss_after:5.0f} MB (max {peak_rss:5.0f} MB)"
        )
        if figures.live >= live_bound or figures.ended >= ended_bound:
            print("  OVER THE BUDGET")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

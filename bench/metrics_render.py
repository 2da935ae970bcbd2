"""/metrics render time for a large floor: 100 queues, 1,000 agents, callers waiting.

Two layouts: every agent in 10 queues (10,000 queue memberships) and every agent in every
queue (100,000). The baseline, measured in the same run, is prometheus_client rendering the
same number of live-gauge series from plain pre-set Gauges (the cost of the text format
alone); the ratio is what computing the gauges from the tracker at scrape time adds.

    .venv/bin/python bench/metrics_render.py
"""

from __future__ import annotations

import argparse
import statistics
import time

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from callcenter.config import Settings
from callcenter.metrics.exporter import Exporter
from callcenter.model import Call, Member, Visit
from callcenter.pipeline import Pipeline

NOW = 1_800_000_000.0


def build(queues: int, agents: int, per_agent: int, waiting: int) -> Exporter:
    """An exporter over a tracker holding the given floor."""
    pipeline = Pipeline()
    tracker = pipeline.tracker
    names = [f"queue-{q:03d}" for q in range(queues)]
    for a in range(agents):
        for k in range(per_agent):
            queue = names[(a + k) % queues]
            member = Member(
                interface=f"PJSIP/{1000 + a}",
                agent=f"Agent {a}",
                queue=queue,
                status=(1, 2, 6, 5)[a % 4],
                paused=a % 7 == 0,
                paused_reason=("Mola", "Toplantı", "Eğitim")[a % 3],
                in_call=a % 4 == 1,
                last_call_end=NOW - (a % 10),
                since=NOW - a,
                server="pbx1",
            )
            tracker.members[("pbx1", queue, member.interface)] = member
    for c in range(waiting):
        call = Call("pbx1", f"{NOW}.{c}", f"{NOW}.{c}", NOW - 60)
        call.visits.append(Visit(queue=names[c % queues], entered_at=NOW - c % 90))
        tracker.calls[("pbx1", call.linkedid)] = call
    exporter = Exporter(Settings(), pipeline, clock=lambda: NOW)
    for name in names:
        exporter.updater.queues.add(name)
        exporter.metrics.known_queue(name)
    return exporter


def baseline(series: int) -> CollectorRegistry:
    """A registry with ``series`` plain gauge series (labels like the live ones)."""
    registry = CollectorRegistry()
    gauge = Gauge("bench_gauge", "baseline", ["queue", "state"], registry=registry)
    for i in range(series):
        gauge.labels(f"queue-{i // 8:03d}", f"s{i % 8}").set(i)
    return registry


def timed(fn: object, runs: int) -> tuple[float, int]:
    """Median seconds of ``runs`` calls and the size of the output."""
    samples = []
    size = 0
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
        size = len(out)
    return statistics.median(samples), size


def main() -> None:
    """Prints render times for both layouts and the same-run baseline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for per_agent in (10, 100):
        exporter = build(queues=100, agents=1000, per_agent=per_agent, waiting=500)
        ours, size = timed(exporter.render, args.runs)
        text = exporter.render().decode()
        lines = sum(1 for line in text.splitlines() if not line.startswith("#"))
        plain = baseline(lines)
        base, _ = timed(lambda plain=plain: generate_latest(plain), args.runs)
        print(
            f"100 queues x 1000 agents, {per_agent} queues each "
            f"({1000 * per_agent:,} memberships, 500 waiting): "
            f"/metrics {ours * 1000:.1f} ms, {size / 1024:.0f} KiB, {lines:,} series; "
            f"baseline (same series, plain gauges) {base * 1000:.1f} ms; "
            f"ratio {ours / base:.2f}"
        )


if __name__ == "__main__":
    main()

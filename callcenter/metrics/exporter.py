"""Wires the metrics to a service (or a bare pipeline) and renders the text exposition."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from callcenter.config import Settings
from callcenter.metrics.definitions import Metrics
from callcenter.metrics.live import LiveCollector
from callcenter.metrics.updater import MetricsUpdater
from callcenter.model import (
    AgentOffered,
    CallAnswered,
    CallStarted,
    Effect,
    MemberChanged,
    QueueJoined,
)
from callcenter.pipeline import Pipeline

# The classic text format (0.0.4): what `promtool check metrics` lints and every Prometheus
# version scrapes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LAG_SAMPLED = (CallStarted, QueueJoined, AgentOffered, CallAnswered, MemberChanged)


class _BeforeScrape(Collector):
    """Runs a hook at the start of every scrape; emits nothing itself."""

    def __init__(self, hook: Callable[[], None]) -> None:
        self.hook = hook

    def describe(self) -> Iterable[Metric]:
        """Nothing to describe."""
        return []

    def collect(self) -> Iterable[Metric]:
        """Runs the hook."""
        self.hook()
        return []


class Exporter:
    """The registry with effect-driven metrics and live gauges of one pipeline."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        clock: Callable[[], float] = time.time,
        service: Any = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.clock = clock
        # Registered first, so wrap-ups that ran out while no event came are recorded before
        # the histograms are read.
        self.registry.register(_BeforeScrape(self._on_scrape))
        self.metrics = Metrics(settings, self.registry)
        self.updater = MetricsUpdater(self.metrics, settings)
        self.collector = LiveCollector(
            settings, pipeline, clock, queues=self.updater.queues, service=service
        )
        self.registry.register(self.collector)

    def _on_scrape(self) -> None:
        self.updater.expire(max(self.clock(), self.updater.clock))

    def render(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)


def attach(
    service: Any,
    clock: Callable[[], float] = time.time,
    lag_clock: Callable[[], float] | None = None,
) -> Exporter:
    """Builds an exporter for a ``Service`` and subscribes it to the service's effects.

    ``clock`` is the floor's (waits); ``lag_clock`` the one receive times are taken on (the
    wall clock, even when the floor runs on a simulator's); it defaults to ``clock``.
    """
    lag_now = clock if lag_clock is None else lag_clock
    exporter = Exporter(service.settings, service.pipeline, clock, service)
    counters = service.pipeline.counters
    last_count = -1

    def metrics_subscriber(effects: list[Effect]) -> None:
        nonlocal last_count
        # Lag is sampled on the batches a supervisor watches (calls arriving, ringing, answered,
        # agents changing): those come only from a message, never from the service's clock
        # tick, so the last message's receive time is theirs.
        if (
            counters["messages"] != last_count
            and service.last_event_at
            and any(isinstance(e, _LAG_SAMPLED) for e in effects)
        ):
            last_count = counters["messages"]
            received = max(service.last_event_at.values())
            exporter.metrics.lag.observe(max(0.0, lag_now() - received))
        exporter.updater(effects)

    service.subscribe(metrics_subscriber)
    return exporter

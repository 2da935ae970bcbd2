"""Helpers for the metrics and wallboard tests: replay a recorded trace, read a scrape."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.events import parse_message
from callcenter.metrics.exporter import Exporter
from callcenter.model import Effect
from callcenter.pipeline import Pipeline
from callcenter.replay import iter_trace, open_trace, trace_t0
from callcenter.web.server import Feature, make_app

TRACES = Path(__file__).resolve().parent / "traces"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class FakeClock:
    """A clock the test moves by hand (the trace's event times)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Replayer:
    """Feeds a recorded trace, message by message, to a pipeline with an exporter listening."""

    def __init__(self, scenario: str, settings: Settings | None = None) -> None:
        self.pipeline = Pipeline()
        self.clock = FakeClock()
        self.exporter = Exporter(settings or Settings(), self.pipeline, self.clock)
        self.effects: list[Effect] = []
        self._messages = trace_messages(scenario)

    def run(self, until: Callable[[str, list[Effect]], bool] | None = None) -> bool:
        """Feeds messages until ``until(text, effects)`` holds (True) or the trace ends."""
        for ts, text in self._messages:
            self.clock.now = ts
            effects = self.pipeline.feed_text("pbx1", text, ts)
            self.exporter.updater(effects)
            self.effects.extend(effects)
            if until is not None and until(text, effects):
                return True
        return False

    def finish(self) -> Replayer:
        """Feeds the rest of the trace and closes the calls still open."""
        self.run()
        effects = self.pipeline.tracker.close_all(self.clock.now, "pbx1")
        self.exporter.updater(effects)
        self.effects.extend(effects)
        return self

    def scrape(self) -> Samples:
        """The exporter's metrics as Prometheus would read them now."""
        return scrape(self.exporter.registry)


def trace_messages(scenario: str) -> Iterator[tuple[float, str]]:
    """The (epoch, message text) pairs of a recorded trace."""
    path = TRACES / scenario / "ami.jsonl.gz"
    with open_trace(path) as fh:
        yield from iter_trace(fh, trace_t0(path) or 0.0)


def replay(scenario: str, settings: Settings | None = None) -> Replayer:
    """A whole trace replayed into a fresh exporter."""
    return Replayer(scenario, settings).finish()


def parse(text: str) -> Samples:
    """Every sample of a text exposition, keyed by (sample name, labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape(registry: CollectorRegistry) -> Samples:
    """Collects a registry the way Prometheus would see it."""
    from prometheus_client import generate_latest

    return parse(generate_latest(registry).decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every series of one sample name."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def caller_numbers(scenario: str) -> set[str]:
    """The caller numbers a scenario dialled in (none may appear in a label)."""
    meta = json.loads((TRACES / scenario / "meta.json").read_text(encoding="utf-8"))
    return {str(o["num"]) for o in meta.get("originated", []) if o.get("num")}


@contextlib.asynccontextmanager
async def serving(service: Service, features: list[Feature]) -> AsyncIterator[str]:
    """Serves a service's app with some features on a free local port; yields the base URL."""
    runner = web.AppRunner(make_app(service, features), access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await asyncio.wait_for(runner.cleanup(), 15)


class LiveFeed:
    """Feeds a recorded trace to a service as if it arrived now (gaps squeezed to nothing)."""

    def __init__(self, service: Service, scenario: str) -> None:
        self.service = service
        self._messages = trace_messages(scenario)
        self.effects: list[Effect] = []
        service.subscribe(self.effects.extend)

    def until(self, done: Callable[[str, list[Effect]], bool] | None = None) -> bool:
        """Feeds messages until ``done(text, new effects)`` holds, or the trace ends."""
        for _, text in self._messages:
            start = len(self.effects)
            self.service.process("pbx1", parse_message(text), time.time())
            if done is not None and done(text, self.effects[start:]):
                return True
        return False

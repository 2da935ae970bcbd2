"""Helpers for the API tests: a started service with the agent and API features on a socket."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.replay import iter_trace, trace_t0
from callcenter.web import agent, api
from callcenter.web.server import make_app

TRACES = Path(__file__).resolve().parents[1] / "traces"


@contextlib.asynccontextmanager
async def running(db_url: str, **settings: Any) -> AsyncIterator[tuple[Service, TestServer]]:
    """A service (no AMI) with the agent and API features served on a real socket."""
    service = Service(
        Settings(
            **{"database_url": db_url, "db_flush_interval": 0.05, "fastagi_port": 0, **settings}
        )
    )
    await service.start(ami=False)
    server = TestServer(make_app(service, [agent.setup, api.setup]))
    try:
        await server.start_server()
        yield service, server
    finally:
        await server.close()
        await service.stop()


class Trace:
    """A recorded trace fed into a service message by message, so a test can stop midway."""

    def __init__(self, service: Service, scenario: str, server: str = "pbx1") -> None:
        path = TRACES / scenario / "ami.jsonl.gz"
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            self._messages: Iterator[tuple[float, str]] = iter(
                list(iter_trace(fh, trace_t0(path) or 0.0))
            )
        self.service = service
        self.server = server

    def until(self, stop: Callable[[str], bool] | None = None) -> bool:
        """Feeds messages up to and including the first one ``stop`` accepts; False at the end."""
        for ts, text in self._messages:
            pipe = self.service.pipeline
            self.service.dispatch(pipe.feed_text(self.server, text, ts))
            if stop is not None and stop(text):
                return True
        return False

    def rest(self) -> None:
        """Feeds the remaining messages."""
        self.until(None)


def event(name: str) -> Callable[[str], bool]:
    """A ``Trace.until`` predicate for an AMI event name."""
    return lambda text: text.startswith(f"Event: {name}\r\n") or text.startswith(f"Event: {name}\n")


async def call_json(
    server: TestServer,
    method: str,
    path: str,
    token: str | None = None,
    json_body: Any = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """One HTTP request; returns the status and the parsed JSON body."""
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, server.make_url(path), headers=headers, json=json_body, **kwargs
        ) as resp:
            return resp.status, await resp.json(content_type=None)


async def wait_for(predicate: Callable[[], Any], limit: float = 10.0) -> Any:
    """Polls ``predicate`` until it returns something true; fails after ``limit`` seconds."""
    for _ in range(int(limit / 0.02)):
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")

"""The running app serves /metrics over real HTTP, and promtool accepts what it serves."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.events import parse_message
from callcenter.metrics import http as metrics_http
from callcenter.web.server import make_app
from tests.metrics_support import parse, series, trace_messages, value

PROMTOOL = shutil.which("promtool")


@pytest.fixture
async def served() -> AsyncIterator[tuple[Service, str]]:
    """A DB-less service with the metrics feature, served on a free local port."""
    service = Service(Settings())
    runner = web.AppRunner(make_app(service, [metrics_http.setup]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield service, f"http://127.0.0.1:{port}"
    finally:
        await asyncio.wait_for(runner.cleanup(), 10)


async def _get(url: str) -> tuple[str, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
        assert resp.status == 200
        return resp.headers["Content-Type"], await resp.text()


def _promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


def _feed(service: Service, scenario: str, stop: str | None = None) -> None:
    for ts, text in trace_messages(scenario):
        service.process("pbx1", parse_message(text), ts)
        if stop is not None and text.startswith(stop):
            return


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) missing")
async def test_metrics_pass_promtool_mid_call_and_after(served: tuple[Service, str]) -> None:
    service, base = served
    # Right after the login snapshot of a call center in full swing: callers waiting.
    _feed(service, "midcall_resync", stop="Event: CallcenterResyncEnd")
    content_type, text = await _get(base + "/metrics")
    assert content_type.startswith("text/plain; version=0.0.4")
    done = await asyncio.to_thread(_promtool_check, text)
    assert done.returncode == 0, done.stdout + done.stderr
    samples = parse(text)
    assert value(samples, "callcenter_queue_calls_waiting", queue="genel") == 2
    assert value(samples, "callcenter_ami_last_event_timestamp_seconds", asterisk="pbx1") > 0
    assert value(samples, "callcenter_ami_connected", asterisk="pbx1") == 0  # no AMI client

    _feed(service, "concurrent")
    _, text = await _get(base + "/metrics")
    done = await asyncio.to_thread(_promtool_check, text)
    assert done.returncode == 0, done.stdout + done.stderr
    samples = parse(text)
    exits = series(samples, "callcenter_queue_calls_exited_total")
    assert sum(exits.values()) > 0
    assert value(samples, "callcenter_build_info", version="0.1.0", python=_python()) == 1
    assert any(name.startswith("process_") for name, _ in samples)


def _python() -> str:
    import platform

    return platform.python_version()

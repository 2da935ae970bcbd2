"""The service's own AMI adapter and call tracker against the simulator: same calls, same
figures as the simulator's own count, and a clear error for a wrong secret."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from callcenter.sim import Simulator

ami = pytest.importorskip("callcenter.ami")
pipeline = pytest.importorskip("callcenter.pipeline")
from callcenter.config import AsteriskServer  # noqa: E402
from callcenter.model import Call, CallEnded  # noqa: E402

TIMEOUT = 20.0


async def test_a_wrong_secret_is_a_clear_error() -> None:
    async with Simulator(speed=None, port=0, auth_fail_delay=0, traffic=False) as sim:
        client = ami.AmiClient(AsteriskServer(port=sim.port, secret="wrong"), lambda *a: None)
        with pytest.raises(ami.AmiAuthError, match="Authentication failed"):
            await asyncio.wait_for(client.start(), TIMEOUT)


async def test_the_tracker_counts_what_the_simulator_did() -> None:
    pipe = pipeline.Pipeline()
    ended: list[Call] = []

    def sink(server: str, headers: dict[str, str], received_at: float) -> None:
        ended.extend(
            e.call
            for e in pipe.feed_headers(server, headers, received_at)
            if isinstance(e, CallEnded)
        )

    async with Simulator(speed=None, port=0, seed=5, auth_fail_delay=0) as sim:
        client = ami.AmiClient(AsteriskServer(port=sim.port, secret="callcenter"), sink)
        await asyncio.wait_for(client.start(), TIMEOUT)
        try:
            for t in range(1, 1201):  # twenty simulated minutes of the morning peak
                sim.server.advance(float(t))
                await asyncio.sleep(0)
            await asyncio.wait_for(client.action({"Action": "Ping"}), TIMEOUT)
        finally:
            await client.close()
        stats = sim.stats
    answered = [c for c in ended if c.outcome == "answered"]
    outcomes = Counter(c.outcome for c in ended)
    assert len(ended) == stats.calls > 50
    assert outcomes["answered"] == stats.answered
    assert outcomes["ivr_only"] == stats.ivr_only
    assert outcomes["abandoned"] + outcomes["timeout"] == stats.abandoned + stats.timeouts
    wait = sum(c.wait_s or 0.0 for c in answered) / len(answered)
    talk = sum(c.talk_s or 0.0 for c in answered) / len(answered)
    assert abs(wait - stats.wait_s / stats.answered) < 0.05
    assert abs(talk - stats.talk_s / stats.answered) < 0.05
    assert pipe.counters["tracker_errors"] == 0 and pipe.counters["bad_events"] == 0

"""The AMI link between the service and the live PBX drops (cut at a proxy) and comes back."""

from __future__ import annotations

import asyncio

import pytest

from tests.live.ami import AmiDriver
from tests.live.calls import Caller, add_local_agent, remove_local_agents
from tests.live.conftest import LivePbx, LiveService
from tests.queuelog import read_queue_log

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_cut_ami_link_reconnects_and_the_next_call_is_recorded_exactly(
    live_pbx: LivePbx, live_service: LiveService, live_ami: AmiDriver
) -> None:
    service = live_service.service
    before = service.health()["asterisk"]["pbx1"]["reconnects"]
    live_service.ami_proxy.cut()
    async with asyncio.timeout(30):
        while True:
            link = service.health()["asterisk"]["pbx1"]
            if link["connected"] and link["reconnects"] > before:
                break
            await asyncio.sleep(0.1)
    await remove_local_agents(live_ami)
    await add_local_agent(live_ami, "9011", "Nur Tan", ["depremzede"])
    try:
        caller = await Caller.dial(live_ami, label="after-cut")
        await caller.press("4")
        await caller.wait_connected(60)
        await asyncio.sleep(1.5)
        await caller.hang_up()
        await caller.wait_ended()
    finally:
        await remove_local_agents(live_ami)
    async with asyncio.timeout(20):
        while True:
            row = await live_service.pool.fetchrow(
                "SELECT * FROM queue_visits WHERE linkedid = $1", caller.linkedid
            )
            if row is not None and row["ended_at"] is not None:
                break
            await asyncio.sleep(0.1)
    [truth] = [v for v in read_queue_log(live_pbx.layout.queue_log) if v.callid == caller.linkedid]
    assert (row["queue"], row["agent"], row["outcome"]) == (truth.queue, truth.agent, "answered")
    assert truth.wait is not None and truth.talk is not None
    assert abs(row["wait_s"] - truth.wait) <= 1 and abs(row["talk_s"] - truth.talk) <= 1

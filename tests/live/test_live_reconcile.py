"""An AMI gap on the live PBX, reconciled from what Asterisk wrote into PostgreSQL.

The service's AMI link is cut at the proxy and new links are refused while calls go on: one
caller, already waiting when the link drops, is answered during the gap and hangs up after it
(across the gap); another calls, talks and hangs up entirely inside it. Asterisk writes its
queue_log and CEL into the service's database (asterisk_conf/res_pgsql.conf, extconfig.conf,
cel_pgsql.conf); after the relogin the service takes both calls from there. Both must then
be in the call log exactly as queue_log has them, flagged reconciled, once each.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.live.ami import AmiDriver
from tests.live.calls import Caller, add_local_agent, remove_local_agents, set_global
from tests.live.conftest import LivePbx, LiveService
from tests.queuelog import read_queue_log

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _row(live_service: LiveService, linkedid: str, within: float = 45.0) -> Any:
    async with asyncio.timeout(within):
        while True:
            row = await live_service.pool.fetchrow(
                "SELECT c.*, v.queue AS v_queue, v.agent AS v_agent, v.outcome AS v_outcome,"
                " v.wait_s AS v_wait, v.talk_s AS v_talk FROM calls c"
                " JOIN queue_visits v USING (server, linkedid) WHERE c.linkedid = $1",
                linkedid,
            )
            if row is not None:
                return row
            await asyncio.sleep(0.2)


async def test_calls_in_and_across_an_ami_gap_come_back_exact_from_asterisks_records(
    live_pbx: LivePbx, live_service: LiveService, live_ami: AmiDriver
) -> None:
    service = live_service.service
    assert service.reconciler is not None
    callers: list[Caller] = []
    await remove_local_agents(live_ami)
    try:
        await _calls_through_a_gap(live_service, live_ami, callers)
    finally:
        live_service.ami_proxy.refuse = False
        await remove_local_agents(live_ami)
    across, inside = callers
    rows = {c.label: await _row(live_service, c.linkedid) for c in (across, inside)}
    truth = {v.callid: v for v in read_queue_log(live_pbx.layout.queue_log)}
    # Asterisk wrote the same into PostgreSQL, which is where the service read it.
    stored = await live_service.pool.fetchval(
        "SELECT count(*) FROM queue_log WHERE callid = ANY($1::text[])",
        [across.linkedid, inside.linkedid],
    )
    assert stored >= 6  # ENTERQUEUE, CONNECT, COMPLETE… of each
    for caller in (across, inside):
        row = rows[caller.label]
        ql = truth[caller.linkedid]
        where = caller.label
        assert row["reconciled"] and row["reconstructed"], where
        assert (row["v_queue"], row["v_agent"], row["v_outcome"]) == (
            ql.queue,
            ql.agent,
            "answered",
        ), where
        assert ql.wait is not None and ql.talk is not None
        assert abs(row["v_wait"] - ql.wait) <= 1, where
        assert abs(row["v_talk"] - ql.talk) <= 1, where
        count = await live_service.pool.fetchval(
            "SELECT count(*) FROM queue_visits WHERE linkedid = $1", caller.linkedid
        )
        assert count == 1, where
    stats = service.reconciler.stats
    assert stats.found >= 1 and stats.unmatched == 0


async def _calls_through_a_gap(
    live_service: LiveService, live_ami: AmiDriver, callers: list[Caller]
) -> None:
    """One caller answered in the gap and hanging up after it; one wholly inside it."""
    service = live_service.service
    # Two agents who ring 4 s before answering: the first answer falls in the gap, and one
    # is free for the caller who comes during it.
    for ext, name in (("9031", "Gap Ajanı"), ("9032", "Boşluk Ajanı")):
        await add_local_agent(live_ami, ext, name, ["depremzede"])
        await set_global(live_ami, f"RD_{ext}", "4")
    before = service.health()["asterisk"]["pbx1"]["reconnects"]

    across = await Caller.dial(live_ami, label="across-gap")
    callers.append(across)
    await across.press("4")
    await across.wait_event("QueueCallerJoin", 60)
    # The link drops while the caller waits; new links are refused until we say so.
    live_service.ami_proxy.refuse = True
    live_service.ami_proxy.cut()
    await across.wait_connected(60)

    inside = await Caller.dial(live_ami, label="inside-gap")
    callers.append(inside)
    await inside.press("4")
    await inside.wait_connected(60)
    await asyncio.sleep(2.0)
    await inside.hang_up()
    await inside.wait_ended()

    live_service.ami_proxy.refuse = False
    async with asyncio.timeout(60):
        while True:
            link = service.health()["asterisk"]["pbx1"]
            if link["connected"] and link["reconnects"] > before:
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    await across.hang_up()
    await across.wait_ended()

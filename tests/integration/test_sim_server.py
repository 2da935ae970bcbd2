"""The simulated Asterisk at the socket: login, errors, list actions, broadcast, time."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator

import pytest

from callcenter.sim import run_sim
from callcenter.sim.cli import Simulator
from callcenter.sim.client import AmiClient
from callcenter.sim.config import PbxConfig
from callcenter.sim.engine import Pbx
from callcenter.sim.hooks import AnsweredCallEnd
from callcenter.sim.server import AmiServer, Credentials

TIMEOUT = 10.0
CALLER = '"Ayşe Yılmaz" <05321234567>'


@pytest.fixture
async def server() -> AsyncIterator[AmiServer]:
    """A simulator on an ephemeral port, simulated time stepped by the test."""
    pbx = Pbx(PbxConfig(), epoch=1_795_884_362.0, rng=random.Random(1))
    srv = AmiServer(
        pbx, credentials=Credentials("callcenter", "s3cret"), speed=None, auth_fail_delay=0
    )
    await srv.start()
    yield srv
    await srv.close()


async def connect(srv: AmiServer) -> AmiClient:
    port = srv._server.sockets[0].getsockname()[1] if srv._server else 0
    return await AmiClient.connect("127.0.0.1", port)


async def test_greeting_and_a_wrong_secret(server: AmiServer) -> None:
    client = await connect(server)
    try:
        reply = await asyncio.wait_for(client.login(secret="wrong"), TIMEOUT)
        await asyncio.wait_for(client.closed.wait(), TIMEOUT)
        assert client.messages[0][1] == "Asterisk Call Manager/11.0.0\r\n"
        assert reply == "Response: Error\r\nActionID: t-1\r\nMessage: Authentication failed\r\n\r\n"
        assert len(client.messages) == 2  # nothing else: Asterisk closes the session
    finally:
        await client.close()


async def test_actions_need_a_login(server: AmiServer) -> None:
    client = await connect(server)
    try:
        reply = await asyncio.wait_for(client.action("QueueStatus"), TIMEOUT)
        assert reply == "Response: Error\r\nActionID: t-1\r\nMessage: Permission denied\r\n\r\n"
        reply = await asyncio.wait_for(client.login(secret="s3cret"), TIMEOUT)
        assert "Message: Authentication accepted" in reply
    finally:
        await client.close()


async def test_ping_events_unknown_and_logoff(server: AmiServer) -> None:
    client = await connect(server)
    try:
        await asyncio.wait_for(client.login(secret="s3cret"), TIMEOUT)
        pong = await asyncio.wait_for(client.action("Ping"), TIMEOUT)
        assert re.fullmatch(
            r"Response: Success\r\nActionID: t-2\r\nPing: Pong\r\nTimestamp: \d+\.\d{6}\r\n\r\n",
            pong,
        )
        off = await asyncio.wait_for(client.action("Events", EventMask="off"), TIMEOUT)
        assert off == "Response: Success\r\nActionID: t-3\r\nEvents: Off\r\n\r\n"
        on = await asyncio.wait_for(client.action("Events", EventMask="on"), TIMEOUT)
        assert on == "Response: Success\r\nActionID: t-4\r\nEvents: On\r\n\r\n"
        bad = await asyncio.wait_for(client.action("Frobnicate"), TIMEOUT)
        assert "Message: Invalid/unknown command: Frobnicate." in bad
        bye = await asyncio.wait_for(client.action("Logoff"), TIMEOUT)
        assert (
            bye == "Response: Goodbye\r\nActionID: t-6\r\nMessage: Thanks for all the fish.\r\n\r\n"
        )
        await asyncio.wait_for(client.closed.wait(), TIMEOUT)
    finally:
        await client.close()


async def test_events_go_to_every_client_that_wants_them(server: AmiServer) -> None:
    a, b, driver = await connect(server), await connect(server), await connect(server)
    try:
        for client, events in ((a, "on"), (b, "on"), (driver, "off")):
            await asyncio.wait_for(client.login(secret="s3cret", events=events), TIMEOUT)
        reply = await asyncio.wait_for(
            driver.action(
                "Originate",
                Channel="Local/cust@callers",
                Context="incoming",
                Exten="4441000",
                CallerID=CALLER,
                Async="true",
                Variable=["__TALK=8", "__HANGUPBY=caller"],
            ),
            TIMEOUT,
        )
        assert reply == (
            "Response: Success\r\nActionID: t-2\r\nMessage: Originate successfully queued\r\n\r\n"
        )
        server.advance(20.0)
        for client in (a, b, driver):
            await asyncio.wait_for(client.sync(), TIMEOUT)
        seen_a = [m for _, m in a.messages if m.startswith("Event: Agent")]
        seen_b = [m for _, m in b.messages if m.startswith("Event: Agent")]
        assert len(seen_a) == 3 and seen_a == seen_b
        assert not [m for _, m in driver.messages if m.startswith("Event: ")]
        # OriginateResponse reaches the others with the originator's ActionID.
        assert any("Event: OriginateResponse" in m and "ActionID: t-2" in m for _, m in a.messages)
    finally:
        for client in (a, b, driver):
            await client.close()


async def test_member_actions_and_their_events(server: AmiServer) -> None:
    client = await connect(server)
    try:
        await asyncio.wait_for(client.login(secret="s3cret"), TIMEOUT)
        iface = "Local/1005@agents/n"

        async def act(name: str, **headers: object) -> str:
            reply = await asyncio.wait_for(client.action(name, **headers), TIMEOUT)
            await asyncio.wait_for(client.sync(), TIMEOUT)
            return reply.split("Message: ", 1)[1].split("\r\n")[0]

        added = await act(
            "QueueAdd",
            Queue="genel",
            Interface=iface,
            MemberName="Gülşen Doğan",
            StateInterface="Custom:1005",
        )
        assert added == "Added interface to queue"
        assert await act("QueueAdd", Queue="genel", Interface=iface) == (
            "Unable to add interface: Already there"
        )
        assert await act("QueuePause", Interface=iface, Paused="true", Reason="Toplantı") == (
            "Interface paused successfully"
        )
        assert await act("QueuePause", Interface="Local/9999@agents/n", Paused="true") == (
            "Interface not found"
        )
        assert await act("QueuePause", Interface=iface, Paused="false") == (
            "Interface unpaused successfully"
        )
        assert await act("QueueRemove", Queue="genel", Interface=iface) == (
            "Removed interface from queue"
        )
        assert await act("QueueRemove", Queue="genel", Interface=iface) == (
            "Unable to remove interface: Not there"
        )
        events = [m.split("\r\n")[0][7:] for _, m in client.messages if "Gülşen" in m]
        assert events == [
            "QueueMemberAdded",
            "QueueMemberPause",
            "QueueMemberPause",
            "QueueMemberRemoved",
        ]
        pause = next(m for _, m in client.messages if "PausedReason: Toplantı" in m)
        assert "Paused: 1\r\n" in pause and "Privilege: agent,all\r\nTimestamp: " in pause
    finally:
        await client.close()


async def test_list_actions_show_a_live_call(server: AmiServer) -> None:
    client = await connect(server)
    try:
        await asyncio.wait_for(client.login(secret="s3cret"), TIMEOUT)
        await asyncio.wait_for(client.action("Setvar", Variable="RD_1001", Value="never"), TIMEOUT)
        await asyncio.wait_for(
            client.action(
                "Originate",
                Channel="Local/cust@callers",
                Context="incoming",
                Exten="4441000",
                CallerID=CALLER,
                Async="true",
            ),
            TIMEOUT,
        )
        server.advance(5.0)  # waiting in genel, 1001 ringing
        start = len(client.messages)
        await asyncio.wait_for(client.action("CoreShowChannels", ActionID="csc"), TIMEOUT)
        await asyncio.wait_for(client.action("QueueStatus", ActionID="qs"), TIMEOUT)
        await asyncio.wait_for(client.action("Status", ActionID="st"), TIMEOUT)
        msgs = [m for _, m in client.messages[start:]]
        channels = [m for m in msgs if m.startswith("Event: CoreShowChannel\r\n")]
        assert len(channels) == 4
        assert all(m.split("\r\n")[1] == "ActionID: csc" for m in channels)
        entry = next(m for m in msgs if m.startswith("Event: QueueEntry"))
        # Wait is a difference of whole epoch seconds (363 -> 367), as app_queue computes it.
        assert entry.endswith("ActionID: qs\r\n\r\n") and "Wait: 4\r\n" in entry
        member = next(
            m for m in msgs if m.startswith("Event: QueueMember\r\n") and "Name: Zeynep Kaya" in m
        )
        assert "Status: 6\r\n" in member  # ringing
        done = next(m for m in msgs if m.startswith("Event: CoreShowChannelsComplete"))
        assert done == (
            "Event: CoreShowChannelsComplete\r\nActionID: csc\r\nEventList: Complete\r\n"
            "ListItems: 4\r\n\r\n"
        )
        status_done = next(m for m in msgs if m.startswith("Event: StatusComplete"))
        assert "ListItems: 4\r\nItems: 4\r\n" in status_done
    finally:
        await client.close()


async def test_timestamps_run_on_simulated_time() -> None:
    """With speed 60 a 72 s conversation takes about 1.2 s, but is stamped as 72 s."""
    sim = Simulator(speed=60, traffic=False, config=PbxConfig(), port=0, seed=1)
    await sim.start()
    client = await AmiClient.connect("127.0.0.1", sim.port)
    try:
        await asyncio.wait_for(client.login(), TIMEOUT)
        await asyncio.wait_for(
            client.action(
                "Originate",
                Channel="Local/cust@callers",
                Context="incoming",
                Exten="4441000",
                CallerID=CALLER,
                Async="true",
                Variable=["__TALK=72", "__HANGUPBY=caller"],
            ),
            TIMEOUT,
        )
        await asyncio.wait_for(client.wait_for("Event: AgentComplete"), 60)
        stamps = {}
        for _, m in client.messages:
            name = m.split("\r\n", 1)[0]
            if name in ("Event: AgentConnect", "Event: AgentComplete"):
                stamps[name] = float(m.split("Timestamp: ", 1)[1].split("\r\n", 1)[0])
        talk = stamps["Event: AgentComplete"] - stamps["Event: AgentConnect"]
        assert abs(talk - 72.0) < 0.2
    finally:
        await client.close()
        await sim.stop()


async def test_run_sim_load_mode_and_the_disposition_hook() -> None:
    ended: list[AnsweredCallEnd] = []
    ready: asyncio.Queue[Simulator] = asyncio.Queue()

    async def close_call(linkedid: str, agent: str, info: AnsweredCallEnd) -> None:
        assert linkedid == info.linkedid and agent == info.agent
        ended.append(info)

    task = asyncio.create_task(
        run_sim(
            calls_per_second=5,
            agents=40,
            port=0,
            speed=20,
            seed=3,
            on_call_answered_end=close_call,
            on_ready=ready.put_nowait,
        )
    )
    try:
        sim = await asyncio.wait_for(ready.get(), TIMEOUT)
        client = await AmiClient.connect("127.0.0.1", sim.port)
        await asyncio.wait_for(client.login(), TIMEOUT)
        await asyncio.wait_for(client.wait_for("Event: AgentComplete"), 60)
        while not ended:
            await asyncio.wait_for(
                client.wait_for("Event: AgentComplete", len(client.messages)), 60
            )
        await client.close()
        assert ended[0].queue in ("genel", "sosyal-yardim")
        assert ended[0].talk_s > 0 and ended[0].request in (True, False)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_session_that_never_logs_in_is_closed() -> None:
    pbx = Pbx(PbxConfig(), epoch=1_795_884_362.0, rng=random.Random(1))
    srv = AmiServer(pbx, speed=None, auth_timeout=0.2)
    port = await srv.start()
    client = await AmiClient.connect("127.0.0.1", port)
    try:
        await asyncio.wait_for(client.closed.wait(), TIMEOUT)
        assert [m for _, m in client.messages] == ["Asterisk Call Manager/11.0.0\r\n"]
    finally:
        await client.close()
        await srv.close()

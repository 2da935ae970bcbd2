"""Regression tests for the AMI adapter against a real TCP server speaking AMI framing.

Each test names the panoramisk 1.4 defect (design guide, "Known pitfalls") it pins down.
No test asserts on wall-clock durations; every wait is bounded so a broken test fails fast.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami import (
    LINK_DOWN,
    RESYNC_BEGIN,
    RESYNC_END,
    AmiAuthError,
    AmiClient,
    AmiConnectError,
    AmiDisconnected,
    AmiTimeout,
    record_trace,
)
from callcenter.config import AsteriskServer
from tests.amiserver import GREETING, AmiConnection, FakeAmiServer, event

TRACES = Path(__file__).resolve().parent.parent / "traces"
SECRET = "s3cret"
# Events the client's own login produces; their position relative to the synthetic ones
# depends on how TCP chunks the login answer, so order checks leave them out.
LOGIN_NOISE = {"FullyBooted", "SuccessfulAuth"}


class Sink:
    """Records what the adapter delivers: (server, headers, received_at) in call order."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, dict[str, str], float]] = []
        self.fail_on = fail_on

    def __call__(self, server: str, headers: dict[str, str], received_at: float) -> None:
        self.calls.append((server, headers, received_at))
        if headers.get("Event") == self.fail_on:
            raise RuntimeError(f"sink bug on {self.fail_on}")

    @property
    def headers(self) -> list[dict[str, str]]:
        return [h for _, h, _ in self.calls]

    def names(self, *, noise: bool = False) -> list[str]:
        return [
            h.get("Event", "?") for h in self.headers if noise or h.get("Event") not in LOGIN_NOISE
        ]

    def count(self, name: str) -> int:
        return sum(1 for h in self.headers if h.get("Event") == name)


async def eventually(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Polls ``predicate`` until it holds; fails with TimeoutError after ``limit`` seconds."""

    async def _poll() -> None:
        # The adapter exposes plain attributes (read by metrics), not events: poll them.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    await asyncio.wait_for(_poll(), limit)


async def bounded(awaitable: Awaitable[Any], limit: float = 5.0) -> Any:
    """Awaits with an upper bound so a hang becomes a failure."""
    return await asyncio.wait_for(awaitable, limit)


async def stays_false(predicate: Callable[[], bool], server: FakeAmiServer) -> None:
    """Asserts that ``predicate`` does not become true within a short bounded wait."""
    with pytest.raises(TimeoutError):
        await server.wait_until(predicate, limit=0.5)


def free_port() -> int:
    """A port nobody listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings(port: int, **changes: Any) -> AsteriskServer:
    base = AsteriskServer(
        name="pbx-test",
        host="127.0.0.1",
        port=port,
        username="callcenter",
        secret=SECRET,
        ping_interval=30.0,
        action_timeout=2.0,
        connect_timeout=2.0,
    )
    return replace(base, **changes)


@pytest.fixture
async def server() -> AsyncIterator[FakeAmiServer]:
    async with FakeAmiServer(secret=SECRET) as srv:
        yield srv


@pytest.fixture
async def clients() -> AsyncIterator[list[AmiClient]]:
    """Clients registered here are closed at teardown, whatever the test did."""
    made: list[AmiClient] = []
    yield made
    for client in made:
        await bounded(client.close())


@pytest.fixture
def make_client(
    clients: list[AmiClient],
) -> Iterator[Callable[..., AmiClient]]:
    def _make(server_settings: AsteriskServer, sink: Sink, **kwargs: Any) -> AmiClient:
        kwargs.setdefault("reconnect_delay", 0.01)
        kwargs.setdefault("reconnect_delay_max", 0.05)
        client = AmiClient(server_settings, sink, **kwargs)
        clients.append(client)
        return client

    yield _make


async def started(
    make_client: Callable[..., AmiClient],
    server: FakeAmiServer,
    sink: Sink,
    **changes: Any,
) -> AmiClient:
    """A client logged in to ``server`` whose first resync has finished."""
    options = {k: changes.pop(k) for k in ("reconnect_delay",) if k in changes}
    client = make_client(settings(server.port, **changes), sink, **options)
    await bounded(client.start())
    await eventually(lambda: sink.count(RESYNC_END) == 1)
    return client


# -- defect 1: UTF-8 split across TCP reads -------------------------------------------------


async def test_utf8_character_split_across_reads_arrives_intact(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink()
    client = await started(make_client, server, sink)
    payload = event("NewCallerid", Channel="Local/cust@callers-00000001;1", CallerIDName="Ayşe")
    data = payload.encode("utf-8")
    cut = data.index("ş".encode()) + 1  # between the two bytes of "ş"

    before = client.bytes_received
    await server.push(data[:cut])
    # The first half must have been read on its own before the second half is sent.
    await eventually(lambda: client.bytes_received >= before + cut)
    await server.push(data[cut:])
    await eventually(lambda: sink.count("NewCallerid") == 1)

    (headers,) = [h for h in sink.headers if h.get("Event") == "NewCallerid"]
    assert headers["CallerIDName"] == "Ayşe"


# -- defect 2: a raising callback kills the connection; async callbacks lose order ----------


async def test_raising_sink_is_counted_and_later_events_arrive_in_order(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink(fail_on="Boom")
    client = await started(make_client, server, sink)

    # One write, so panoramisk would have dropped the rest of this chunk.
    await server.push(event("Boom", Seq="0") + event("Hangup", Seq="1") + event("Hangup", Seq="2"))
    await server.push(event("Hangup", Seq="3"))
    await eventually(lambda: sink.count("Hangup") == 3)

    seqs = [h["Seq"] for h in sink.headers if "Seq" in h]
    assert seqs == ["0", "1", "2", "3"]
    assert client.callback_errors == 1
    assert client.last_error is not None and "sink raised RuntimeError" in client.last_error
    assert client.connected
    assert client.reconnects == 0
    assert len(server.connections) == 1


async def test_sink_gets_server_name_headers_and_receive_time(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink()
    client = await started(make_client, server, sink)
    await server.push(event("Hangup", Channel="Local/x;1", Cause="16", AccountCode=""))
    await eventually(lambda: sink.count("Hangup") == 1)

    (server_name, headers, received_at) = sink.calls[-1]
    assert server_name == "pbx-test"
    # An empty value arrives as "Key: " and must survive as "" (panoramisk drops it).
    assert headers == {"Event": "Hangup", "Channel": "Local/x;1", "Cause": "16", "AccountCode": ""}
    assert isinstance(received_at, float)
    assert client.last_message_at == received_at


# -- defect 3: connect() returns before login; bad credentials retry forever ---------------


async def test_start_returns_only_after_successful_login(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    gate = asyncio.Event()

    async def slow_login(conn: AmiConnection, action: dict[str, str]) -> None:
        await gate.wait()
        await server.login(conn, action)

    server.on("Login", slow_login)
    client = make_client(settings(server.port), Sink())
    starting = asyncio.create_task(client.start())
    await server.wait_until(lambda: server.count("Login") == 1)

    assert not starting.done()
    assert not client.connected
    gate.set()
    await bounded(starting)
    assert client.connected
    assert server.logins == 1


async def test_wrong_secret_raises_clear_error_and_is_not_retried(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    client = make_client(settings(server.port, secret="wrong"), Sink())

    with pytest.raises(AmiAuthError, match="Authentication failed") as raised:
        await bounded(client.start())

    assert "pbx-test" in str(raised.value) and "'callcenter'" in str(raised.value)
    assert "wrong" not in str(raised.value)  # never echo the secret
    assert client.login_failures == 1
    assert not client.connected
    assert client.last_error is not None
    await stays_false(lambda: len(server.connections) > 1, server)
    assert server.login_failures == 1


async def test_wrong_secret_in_background_mode_stops_instead_of_retrying(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    client = make_client(settings(server.port, secret="wrong"), Sink())
    await bounded(client.start(wait=False))

    with pytest.raises(AmiAuthError):
        await bounded(client.wait_closed())
    assert client.login_failures == 1
    await stays_false(lambda: len(server.connections) > 1, server)


async def test_connection_refused_at_start_raises(
    make_client: Callable[..., AmiClient],
) -> None:
    client = make_client(settings(free_port()), Sink())

    with pytest.raises(AmiConnectError, match="cannot connect to AMI pbx-test"):
        await bounded(client.start())
    assert not client.connected


async def test_silent_server_raises_connect_error_instead_of_hanging(
    make_client: Callable[..., AmiClient],
) -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def mute(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accepts, never greets

    silent = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        client = make_client(settings(port, connect_timeout=0.2), Sink())
        with pytest.raises(AmiConnectError, match="no AMI greeting"):
            await bounded(client.start())
    finally:
        for writer in accepted:
            writer.close()
        silent.close()
        await bounded(silent.wait_closed())


async def test_background_start_retries_until_the_server_appears(
    make_client: Callable[..., AmiClient],
) -> None:
    port = free_port()
    sink = Sink()
    client = make_client(settings(port), sink)
    await bounded(client.start(wait=False))
    assert not client.connected
    # At least one refused attempt happened before the server exists.
    await eventually(lambda: client.last_error is not None)
    assert "cannot connect" in (client.last_error or "")

    async with FakeAmiServer(secret=SECRET, port=port) as late:
        await eventually(lambda: sink.count(RESYNC_END) == 1)
        assert client.connected
        assert late.logins == 1
        assert client.reconnects == 0  # the first session is not a re-connection
        await bounded(client.close())


# -- defect 4: no Ping timeout, no action timeout, actions re-sent after a reconnect ---------


async def test_unanswered_action_times_out_and_link_stays_usable(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    server.ignore("QueuePause")
    client = await started(make_client, server, Sink(), action_timeout=0.2)

    with pytest.raises(AmiTimeout, match="QueuePause"):
        await bounded(client.action({"Action": "QueuePause", "Interface": "Local/1001@agents/n"}))

    answer = await bounded(client.action({"Action": "Ping"}))
    assert isinstance(answer, dict) and answer["Ping"] == "Pong"
    assert client.connected


async def test_watchdog_drops_a_link_whose_ping_is_unanswered_and_reconnects(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    async def ping(conn: AmiConnection, action: dict[str, str]) -> None:
        if conn.number > 1:  # the first connection is "dead": it never answers
            await conn.respond(action, Ping="Pong")

    server.on("Ping", ping)
    sink = Sink()
    client = await started(make_client, server, sink, ping_interval=0.05, action_timeout=0.2)

    await eventually(lambda: client.reconnects == 1 and sink.count(RESYNC_END) == 2)
    assert client.connected
    assert server.connections[0].closed
    assert server.logins == 2
    assert "Ping" in (client.last_error or "")
    names = sink.names()
    assert names[names.index(LINK_DOWN) :][:2] == [LINK_DOWN, RESYNC_BEGIN]
    # The idle new link is pinged too, and answered.
    await server.wait_until(lambda: sum(a["Action"] == "Ping" for a in server.live[0].actions) > 0)


async def test_action_in_flight_fails_on_link_loss_and_is_not_resent(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    server.ignore("QueuePause")
    sink = Sink()
    client = await started(make_client, server, sink, action_timeout=5.0)
    pending = asyncio.create_task(
        client.action({"Action": "QueuePause", "Interface": "Local/1001@agents/n"})
    )
    await server.wait_until(lambda: server.count("QueuePause") == 1)

    server.drop()
    with pytest.raises(AmiDisconnected, match="QueuePause"):
        await bounded(pending)

    # panoramisk re-sends on FullyBooted, before the resync actions the new session sends;
    # once the resync is over, a re-sent action would have been read.
    await eventually(lambda: sink.count(RESYNC_END) == 2)
    assert server.count("QueuePause") == 1
    assert client.reconnects == 1


async def test_action_while_disconnected_fails_at_once(
    make_client: Callable[..., AmiClient],
) -> None:
    client = make_client(settings(free_port()), Sink())
    with pytest.raises(AmiDisconnected):
        await bounded(client.action({"Action": "Ping"}))


async def test_action_refuses_header_injection(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    client = await started(make_client, server, Sink())
    with pytest.raises(ValueError, match="line break"):
        await client.action({"Action": "QueuePause", "Reason": "x\r\nAction: Originate"})
    assert server.count("QueuePause") == 0


# -- defect 5: close() during the reconnect window keeps reconnecting ------------------------


async def test_close_during_reconnect_window_stops_reconnecting(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink()
    client = await started(make_client, server, sink, reconnect_delay=0.2)

    server.drop()
    await eventually(lambda: sink.count(LINK_DOWN) == 1)  # now inside the reconnect window
    await bounded(client.close())
    seen = len(server.connections)

    await stays_false(lambda: len(server.connections) > seen, server)
    assert not client.connected
    with pytest.raises(AmiDisconnected):
        await client.action({"Action": "Ping"})


async def test_close_while_the_server_is_unreachable_stops_retrying(
    make_client: Callable[..., AmiClient],
) -> None:
    async with FakeAmiServer(secret=SECRET) as first:
        port = first.port
        sink = Sink()
        client = await started(make_client, first, sink)
    # The server is gone: the client is now failing to reconnect, with backoff.
    await eventually(lambda: "cannot connect" in (client.last_error or ""))
    await bounded(client.close())

    async with FakeAmiServer(secret=SECRET, port=port) as second:
        await stays_false(lambda: len(second.connections) > 0, second)


async def test_close_logs_off_and_is_idempotent(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink()
    client = await started(make_client, server, sink)

    await bounded(client.close())
    await bounded(client.close())

    assert server.count("Logoff") == 1
    assert not client.connected
    assert sink.names()[-1] == LINK_DOWN
    await stays_false(lambda: len(server.connections) > 1, server)


async def test_close_right_after_start_leaves_nothing_running(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink()
    client = make_client(settings(server.port), sink)
    await bounded(client.start())
    await bounded(client.close())  # before the background task took over the session

    assert not client.connected
    await server.wait_until(lambda: not server.live)
    await stays_false(lambda: len(server.connections) > 1, server)


# -- defect 6: events lost while disconnected -> resync after every (re)login ---------------


async def test_resync_delivers_list_events_in_wire_order_once_with_foreign_actionid(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    queue_status = [
        {"Event": "QueueParams", "Queue": "genel", "Calls": "1"},
        {"Event": "QueueMember", "Queue": "genel", "Name": "Elif Şahin", "Status": "6"},
        {"Event": "QueueEntry", "Queue": "genel", "Position": "1", "Wait": "7"},
    ]
    # Another session's OriginateResponse, interleaved inside our list.
    foreign = event("OriginateResponse", Response="Success", ActionID="drv-8", Reason="4")

    async def status(conn: AmiConnection, action: dict[str, str]) -> None:
        await conn.respond_list(
            action, "QueueStatusComplete", queue_status, between=lambda i: foreign if i else None
        )

    async def summary(conn: AmiConnection, action: dict[str, str]) -> None:
        await conn.respond(action, "Error", Message="Permission denied")

    server.on("QueueStatus", status)
    server.on("QueueSummary", summary)
    server.set_list(
        "CoreShowChannels",
        "CoreShowChannelsComplete",
        [{"Event": "CoreShowChannel", "Channel": "Local/cust@callers-00000001;1"}],
    )
    sink = Sink()
    await started(make_client, server, sink)

    assert sink.names() == [
        RESYNC_BEGIN,
        "QueueParams",
        "OriginateResponse",
        "QueueMember",
        "OriginateResponse",
        "QueueEntry",
        "QueueStatusComplete",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
        RESYNC_END,
    ]
    end = sink.headers[-1]
    assert end == {"Event": RESYNC_END, "Complete": "no", "Failed": "QueueSummary"}
    member = next(h for h in sink.headers if h.get("Event") == "QueueMember")
    assert member["Name"] == "Elif Şahin"
    assert all(h["ActionID"] == "drv-8" for h in sink.headers if h["Event"] == "OriginateResponse")


async def test_reconnect_emits_link_down_then_a_fresh_resync(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    server.set_list(
        "QueueStatus", "QueueStatusComplete", [{"Event": "QueueMember", "Queue": "genel"}]
    )
    sink = Sink()
    client = await started(make_client, server, sink)

    server.drop()
    await eventually(lambda: sink.count(RESYNC_END) == 2)

    assert client.reconnects == 1
    assert client.connected
    assert sink.names() == [
        RESYNC_BEGIN,
        "QueueMember",
        "QueueStatusComplete",
        "QueueSummaryComplete",
        "CoreShowChannelsComplete",
        RESYNC_END,
        LINK_DOWN,
        RESYNC_BEGIN,
        "QueueMember",
        "QueueStatusComplete",
        "QueueSummaryComplete",
        "CoreShowChannelsComplete",
        RESYNC_END,
    ]
    assert all(h.get("Complete") == "yes" for h in sink.headers if h["Event"] == RESYNC_END)
    assert server.count("QueueStatus") == 2


async def test_resync_timeout_is_reported_and_late_list_events_still_reach_the_sink(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    late: list[tuple[AmiConnection, dict[str, str]]] = []
    server.on("CoreShowChannels", lambda conn, action: late.append((conn, action)))
    sink = Sink()
    client = make_client(settings(server.port, action_timeout=0.2), sink)
    await bounded(client.start())
    await eventually(lambda: sink.count(RESYNC_END) == 1)

    assert sink.headers[-1]["Failed"] == "CoreShowChannels"
    conn, action = late[0]
    await conn.respond_list(action, "CoreShowChannelsComplete", [{"Event": "CoreShowChannel"}])
    await eventually(lambda: sink.count("CoreShowChannelsComplete") == 1)
    assert sink.count("CoreShowChannel") == 1


async def test_list_action_returns_its_events_and_the_sink_sees_them_once(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    server.set_list(
        "QueueStatus",
        "QueueStatusComplete",
        [{"Event": "QueueMember", "Queue": "genel"}, {"Event": "QueueMember", "Queue": "x"}],
    )
    sink = Sink()
    client = await started(make_client, server, sink)
    before = sink.count("QueueMember")

    answer = await bounded(client.action({"Action": "QueueStatus"}))

    assert isinstance(answer, list)
    assert [m.get("Event", m.get("Response")) for m in answer] == [
        "Success",
        "QueueMember",
        "QueueMember",
        "QueueStatusComplete",
    ]
    assert sink.count("QueueMember") == before + 2


async def test_answers_panoramisk_would_never_complete(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    async def queue_add(conn: AmiConnection, action: dict[str, str]) -> None:
        await conn.respond(action, Message="Added interface to queue")

    async def originate(conn: AmiConnection, action: dict[str, str]) -> None:
        await conn.respond(action, Message="Originate successfully queued")
        await conn.send(event("OriginateResponse", ActionID=action["ActionID"], Response="Success"))

    server.on("QueueAdd", queue_add)
    server.on("Originate", originate)
    sink = Sink()
    client = await started(make_client, server, sink)

    added = await bounded(client.action({"Action": "QueueAdd", "Queue": "genel"}))
    queued = await bounded(client.action({"Action": "Originate", "Channel": "Local/1@x"}))

    assert isinstance(added, dict) and added["Message"] == "Added interface to queue"
    assert isinstance(queued, dict) and queued["Response"] == "Success"
    # Our own OriginateResponse carries our ActionID and still reaches the tracker.
    await eventually(lambda: sink.count("OriginateResponse") == 1)


async def test_caller_supplied_action_id_is_replaced(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    client = await started(make_client, server, Sink())
    await bounded(client.action({"Action": "Ping", "ActionID": "drv-8", "Penalty": 0}))
    (ping,) = [a for a in server.actions if a["Action"] == "Ping"]
    assert ping["ActionID"] != "drv-8"
    assert ping["Penalty"] == "0"


# -- shutdown, early dropping, real traffic -------------------------------------------------


async def test_shutdown_event_is_delivered_then_the_link_is_reestablished(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink()
    client = await started(make_client, server, sink)

    await server.push(event("Shutdown", Shutdown="Cleanly", Restart="True"))
    await eventually(lambda: sink.count(RESYNC_END) == 2)

    names = sink.names()
    assert names[names.index("Shutdown") :][:3] == ["Shutdown", LINK_DOWN, RESYNC_BEGIN]
    assert client.reconnects == 1


async def test_dropped_events_never_reach_the_sink(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink()
    client = make_client(
        settings(server.port),
        sink,
        drop_events={"Newexten"},
        drop_raw=lambda text: "\r\nVariable: NOISE\r\n" in text,
    )
    await bounded(client.start())
    await server.push(
        event("Newexten", Exten="s")
        + event("VarSet", Variable="NOISE", Value="1")
        + event("VarSet", Variable="QUEUESTATUS", Value="TIMEOUT")
        + event("Hangup", Channel="x")
    )
    await eventually(lambda: sink.count("Hangup") == 1)

    assert [h["Event"] for h in sink.headers if h["Event"] in {"Newexten", "VarSet"}] == ["VarSet"]
    assert next(h for h in sink.headers if h["Event"] == "VarSet")["Variable"] == "QUEUESTATUS"


def _trace_stream(scenario: str) -> tuple[bytes, list[dict[str, str]]]:
    """The recorded stream after the greeting, and its event messages parsed independently."""
    with gzip.open(TRACES / scenario / "ami.jsonl.gz", "rt", encoding="utf-8") as fh:
        raws = [rec["raw"] for line in fh if "raw" in (rec := json.loads(line))]
    messages = raws[1:]  # raws[0] is the greeting
    expected = []
    for raw in messages:
        headers = {}
        for line in filter(None, raw.split("\r\n")):
            key, _, value = line.partition(": ")
            headers[key] = value
        if "Event" in headers:
            expected.append(headers)
    return "".join(messages).encode("utf-8"), expected


async def test_recorded_asterisk_stream_reaches_the_sink_event_for_event(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    stream, expected = _trace_stream("transfer")
    sink = Sink()
    client = make_client(settings(server.port), sink, resync_actions=())
    await bounded(client.start())
    await eventually(lambda: sink.count(RESYNC_END) == 1)
    start = len(sink.calls)

    # Odd chunk sizes split messages, headers and multi-byte letters at arbitrary points.
    for i in range(0, len(stream), 997):
        await server.push(stream[i : i + 997])
    await server.push(event("TestEnd"))
    await eventually(lambda: sink.count("TestEnd") == 1)

    delivered = sink.headers[start:-1]
    assert delivered == expected
    assert any("Ç" in v or "ş" in v for h in delivered for v in h.values())
    assert client.callback_errors == 0


# -- observable state ----------------------------------------------------------------------


async def test_observable_state_follows_the_link(
    server: FakeAmiServer, make_client: Callable[..., AmiClient]
) -> None:
    sink = Sink()
    client = make_client(settings(server.port), sink)
    assert client.server.name == "pbx-test"
    assert (client.connected, client.reconnects, client.login_failures) == (False, 0, 0)
    assert (client.last_message_at, client.callback_errors, client.last_error) == (None, 0, None)

    await bounded(client.start())
    assert client.connected
    assert client.last_message_at is not None

    server.drop()
    await eventually(lambda: not client.connected or client.reconnects == 1)
    await eventually(lambda: client.connected and client.reconnects == 1)
    assert client.last_error is not None

    await bounded(client.close())
    assert not client.connected


# -- record ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz"])
async def test_record_trace_writes_the_exact_stream(
    server: FakeAmiServer, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"ami.{suffix}"
    stop = asyncio.Event()
    recording = asyncio.create_task(
        record_trace(settings(server.port), str(path), duration=None, stop=stop)
    )
    await server.wait_until(lambda: server.logins == 1)
    name = event("Newchannel", CallerIDName="Mehmet Öztürk").encode()
    await server.push(name[:20])
    await server.push(name[20:] + event("Hangup", Channel="x").encode())
    stop.set()
    written = await bounded(recording)

    opener = gzip.open if suffix.endswith("gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    meta = records[0]["meta"]
    assert meta["server"] == "pbx-test" and isinstance(meta["t0_epoch"], float)
    assert records[1] == {"t": records[1]["t"], "raw": GREETING}
    raws = [r["raw"] for r in records if "raw" in r]
    sent = [r["sent"] for r in records if "sent" in r]
    assert written == len(raws)
    assert "".join(raws).encode("utf-8") == bytes(server.connections[0].sent)
    assert sent[0].startswith("Action: Login\r\n") and "Secret: ********\r\n" in sent[0]
    assert SECRET not in path.read_bytes().decode("latin-1") or suffix.endswith("gz")
    assert all(SECRET not in s for s in sent)
    assert sent[-1].startswith("Action: Logoff\r\n")
    assert raws[-1].startswith("Response: Goodbye\r\n")
    assert any("Mehmet Öztürk" in r for r in raws)
    times = [r["t"] for r in records[1:]]
    assert times == sorted(times)


async def test_record_trace_stops_after_duration(server: FakeAmiServer, tmp_path: Path) -> None:
    written = await bounded(record_trace(settings(server.port), str(tmp_path / "t.jsonl"), 0.05))
    # Greeting, Login answer, FullyBooted, Goodbye.
    assert written == 4


async def test_record_trace_rejected_login_raises(server: FakeAmiServer, tmp_path: Path) -> None:
    with pytest.raises(AmiAuthError, match="Authentication failed"):
        await bounded(
            record_trace(settings(server.port, secret="wrong"), str(tmp_path / "t.jsonl"), 1)
        )


async def test_record_trace_unreachable_raises(tmp_path: Path) -> None:
    with pytest.raises(AmiConnectError):
        await bounded(record_trace(settings(free_port()), str(tmp_path / "t.jsonl"), 1))

"""The cluster's pieces: stream payloads under PostgreSQL's NOTIFY limit, lock keys, settings,
an owner that lost its lock stopping its ingestion, and a new owner writing what a dying one
had not."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callcenter.app import Service
from callcenter.cluster import PAYLOAD_LIMIT, StreamDecoder, encode_stream, lock_key
from callcenter.config import AsteriskServer, ConfigError, Settings, load_settings
from callcenter.sim import Simulator


def _message(i: int, text: str = "Ayşe Öztürk") -> str:
    headers = {"Event": "QueueCallerJoin", "CallerIDName": text, "Uniqueid": f"17.{i}"}
    return json.dumps(["pbx1", 1795890000.0 + i, headers], ensure_ascii=False)


def test_payloads_stay_under_the_limit_in_bytes_and_decode_in_order() -> None:
    items = [_message(i, "Şükrü Çağlayan " * (i % 7)) for i in range(500)]
    payloads = encode_stream("a", 10, items)
    assert len(payloads) > 10
    assert all(len(p.encode()) <= PAYLOAD_LIMIT for p in payloads)
    assert [json.loads(p)["s"] for p in payloads] == list(range(10, 10 + len(payloads)))
    decoder = StreamDecoder("b")
    out = [m for p in payloads for m in decoder.decode(p)[1]]
    assert out == [json.loads(item) for item in items]
    assert decoder.gaps == 0


def test_one_huge_message_travels_in_fragments() -> None:
    # Quotes, backslashes, control characters and Turkish letters all grow when escaped.
    text = 'ğ"\\\x01' * 6000
    items = [_message(1), _message(2, text), _message(3)]
    payloads = encode_stream("a", 0, items)
    assert len(payloads) > 3
    assert all(len(p.encode()) <= PAYLOAD_LIMIT for p in payloads)
    decoder = StreamDecoder("b")
    out = [m for p in payloads for m in decoder.decode(p)[1]]
    assert [m[2]["CallerIDName"] for m in out] == ["Ayşe Öztürk", text, "Ayşe Öztürk"]


def test_a_lost_payload_is_a_gap_and_a_headless_message_is_dropped() -> None:
    payloads = encode_stream("a", 0, [_message(1), _message(2, "x" * 20_000), _message(3)])
    decoder = StreamDecoder("b")
    decoder.decode(payloads[0])
    got = [m for p in payloads[2:] for m in decoder.decode(p)[1]]  # the first fragment is lost
    assert decoder.gaps == 1
    assert [m[2]["Uniqueid"] for m in got] == ["17.3"]


def test_own_payloads_and_resync_requests() -> None:
    decoder = StreamDecoder("me")
    assert decoder.decode(encode_stream("me", 0, [_message(1)])[0]) == ("me", [], False)
    ask = json.dumps({"i": "other", "s": 4, "r": 1})
    assert decoder.decode(ask) == ("other", [], True)


def test_lock_keys_never_change() -> None:
    # Instances of two versions must compute the same key, or both would ingest one server.
    assert lock_key("callcenter_ami", "pbx1") == -6084046484474311633
    assert lock_key("callcenter_ami", "pbx2") != lock_key("other_deployment", "pbx2")


def test_ingest_mode_is_single_by_default_and_checked() -> None:
    assert load_settings(env={}).ingest_mode == "single"
    env = {"CALLCENTER_INGEST_MODE": "cluster", "CALLCENTER_CLUSTER_CHANNEL": "cc_prod"}
    settings = load_settings(env=env)
    assert (settings.ingest_mode, settings.cluster_channel) == ("cluster", "cc_prod")
    with pytest.raises(ConfigError, match="ingest_mode"):
        load_settings(env={"CALLCENTER_INGEST_MODE": "both"})
    with pytest.raises(ConfigError, match="cluster_channel"):
        load_settings(env={"CALLCENTER_CLUSTER_CHANNEL": "x" * 64})


async def test_payloads_pass_through_postgresql_notify_in_order(db_url: str) -> None:
    items = [_message(i) for i in range(300)] + [_message(999, "ç" * 30_000)]
    payloads = encode_stream("a", 0, items)
    channel = f"cc_test_{secrets.token_hex(4)}"
    got: list[str] = []
    listener = await asyncpg.connect(db_url, timeout=10)
    sender = await asyncpg.connect(db_url, timeout=10)
    try:
        await listener.add_listener(channel, lambda *args: got.append(args[3]))
        await sender.execute(
            "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", channel, payloads
        )

        async def arrived() -> None:
            while len(got) < len(payloads):  # noqa: ASYNC110
                await asyncio.sleep(0.01)

        await asyncio.wait_for(arrived(), 10)
    finally:
        await sender.close()
        await listener.close()
    decoder = StreamDecoder("b")
    out = [m for p in got for m in decoder.decode(p)[1]]
    assert out == [json.loads(item) for item in items] and decoder.gaps == 0


async def test_an_owner_that_lost_its_lock_to_another_stops_ingesting(
    db_url: str, tmp_path: Path
) -> None:
    async with Simulator(calls_per_second=3, agents=30, speed=1, seed=3, port=0) as sim:
        server = AsteriskServer(port=sim.port, secret="callcenter", action_timeout=2.0)
        base = Settings(
            database_url=db_url,
            asterisk=(server,),
            fastagi_enabled=False,
            ingest_mode="cluster",
            cluster_channel=f"cc_test_{secrets.token_hex(4)}",
        )
        a = Service(replace(base, spool_dir=str(tmp_path / "a")))
        b = Service(replace(base, spool_dir=str(tmp_path / "b")))
        thief = await asyncpg.connect(db_url, timeout=10)
        try:
            await asyncio.wait_for(a.start(), 30)
            await asyncio.wait_for(b.start(), 30)
            assert a.owns("pbx1") and not b.owns("pbx1") and not b.clients
            assert a.cluster is not None
            # As if a froze and PostgreSQL ended its idle lock session, and a third instance
            # took the server meanwhile.
            name = f"callcenter-lock {a.cluster.instance}"
            taken = await thief.fetchval(
                """
                SELECT bool_and(pg_terminate_backend(pid, 5000)) AND pg_try_advisory_lock($2)
                FROM pg_stat_activity WHERE application_name = $1
                """,
                name,
                lock_key(base.cluster_channel, "pbx1"),
            )
            assert taken

            async def a_gives_up() -> None:
                while a.owns("pbx1") or a.clients:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(a_gives_up(), 10)
            assert not b.owns("pbx1")
            await thief.execute("SELECT pg_advisory_unlock_all()")

            async def one_owner_again() -> None:
                while a.owns("pbx1") == b.owns("pbx1"):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                owner = a if a.owns("pbx1") else b
                while not (client := owner.clients.get("pbx1")) or not client.connected:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(one_owner_again(), 10)
            follower = b if a.owns("pbx1") else a
            assert "pbx1" not in follower.clients
        finally:
            await thief.close()
            await asyncio.wait_for(b.stop(), 30)
            await asyncio.wait_for(a.stop(), 30)


async def test_the_new_owner_writes_the_calls_a_dying_owner_had_not_written(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    finished: set[str] = set()
    async with Simulator(calls_per_second=4, agents=40, speed=1, seed=5, port=0) as sim:
        previous = sim.pbx.hooks.on_call_ended

        def ended(call: Any) -> None:
            finished.add(call.linkedid)
            if previous is not None:
                previous(call)

        sim.pbx.hooks.on_call_ended = ended
        server = AsteriskServer(port=sim.port, secret="callcenter", action_timeout=2.0)
        base = Settings(
            database_url=db_url,
            asterisk=(server,),
            fastagi_enabled=False,
            ingest_mode="cluster",
            cluster_channel=f"cc_test_{secrets.token_hex(4)}",
        )
        a = Service(replace(base, spool_dir=str(tmp_path / "a")))
        b = Service(replace(base, spool_dir=str(tmp_path / "b")))
        try:
            await asyncio.wait_for(a.start(), 30)
            await asyncio.wait_for(b.start(), 30)
            assert a.cluster is not None and b.cluster is not None

            async def calls_end(n: int) -> None:
                while len(finished) < n:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(calls_end(5), 30)
            # From now on a's final records never reach its writer, as if they sat in the
            # buffer of a process about to die.
            unwritten: list[str] = []
            a.writer.submit_call = lambda call: unwritten.append(call.linkedid)
            await asyncio.wait_for(calls_end(len(finished) + 5), 30)
            # a dies: its link and its sessions go, nothing is flushed.
            await a.cluster.stop()
            await a.stop_ingest("pbx1")
            await asyncio.sleep(0.2)  # its last batch (with the link-down) reaches b
            for conn in (a.cluster._lock_conn, a.cluster._stream_conn):
                conn.terminate()
            a.cluster.owned.clear()

            async def b_owns() -> None:
                while not b.owns("pbx1") or not b.clients.get("pbx1"):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(b_owns(), 10)
            await asyncio.wait_for(b.writer.flush(), 30)
            rows = await pool.fetch(
                "SELECT linkedid FROM calls WHERE linkedid = ANY($1)", unwritten
            )
            assert len(unwritten) >= 5
            assert {r["linkedid"] for r in rows} == set(unwritten)
            assert b.cluster.recovered == len(unwritten)
        finally:
            await asyncio.wait_for(b.stop(), 30)
            await asyncio.wait_for(a.stop(), 30)  # owning nothing, it writes no snapshot

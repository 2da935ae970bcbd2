"""Simulated calls through the service's FastAGI IVR, as Asterisk's AGI(agi://…) runs them.

The simulator opens a real FastAGI session per IVR-line call, its caller model pressing keys,
and emits what Asterisk would on AMI; the service turns that into call records in PostgreSQL
and the IVR's own table-and-chair tickets. The simulator's per-call IVR log is held against
the service's record of the same call.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from callcenter.ami import AmiClient
from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.ivr import say
from callcenter.ivr.desk import MemoryDesk
from callcenter.ivr.menu import load_menu
from callcenter.ivr.server import FastAgiServer
from callcenter.model import CallEnded, Effect
from callcenter.sim import Simulator, TrafficParams
from callcenter.sim.agi_ivr import IvrRecord
from callcenter.sim.ivr_caller import CallerMix, MenuMap
from callcenter.sim.workload import morning_peak

SERVER = "sim-ivr"
TIMEOUT = 90.0  # wall seconds any one wait may take
ONLY_TABLE_CHAIR = CallerMix(
    agent_p=0.0, hangup_p=0.0, wrong_key_p=0.0, english_p=0.0, after_flow_agent_p=0.0
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _busy_hour() -> TrafficParams:
    """08:00-09:00 with all its calls on the IVR line, short talks and enough agents."""
    return TrafficParams(
        calls_per_year=900,
        working_days=1,
        hourly_share=((8, 1.0),),
        staffing=((8, 8),),
        day_sigma=0.0,
        talk_mean_s=20.0,
        wrapup_s=5.0,
        no_answer_p=0.0,
        patience_median_s=900.0,
        patience_sigma=0.1,
        ivr_share=1.0,
        pauses=(),
        category_mix=(
            ("Masa-sandalye", 0.3),
            ("Sosyal yardım", 0.2),
            ("Başvuru durumu", 0.15),
            ("Şikâyet ve öneri", 0.15),
            ("Bilgi ve yönlendirme", 0.2),
        ),
    )


async def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Polls ``condition()`` until it holds, for at most TIMEOUT wall seconds."""
    for _ in range(int(TIMEOUT / 0.1)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_ivr_calls_land_in_postgres_as_the_simulator_logged_them(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    # Two quiet minutes before 08:00 (no calls, no agents) while the service starts.
    sim = Simulator(
        speed=120,
        seed=11,
        port=0,
        params=_busy_hour(),
        start_epoch=morning_peak() - 3600 - 120,
        agi=("127.0.0.1", 0),
        ivr_callers=CallerMix(agent_p=0.2, hangup_p=0.08),
    )
    await sim.start()
    service: Service | None = None
    try:
        settings = Settings(
            database_url=db_url,
            asterisk=(AsteriskServer(name=SERVER, port=sim.port, secret="callcenter"),),
            spool_dir=str(tmp_path),
            fastagi_port=0,
        )
        service = Service(settings)
        ended: set[str] = set()

        def collect(effects: list[Effect]) -> None:
            ended.update(e.call.linkedid for e in effects if isinstance(e, CallEnded))

        service.subscribe(collect)
        await asyncio.wait_for(service.start(), TIMEOUT)
        assert service.ivr is not None
        sim.agi_address = ("127.0.0.1", service.ivr.server.port)
        assert sim.agi is not None
        records = sim.agi.records

        def done() -> list[IvrRecord]:
            return [r for r in records.values() if r.end and r.linkedid in ended]

        def enough() -> bool:
            finished = done()
            plans = Counter(r.plan for r in finished if r.through_ivr)
            tickets = [r for r in finished if "ticket_opened" in r.results]
            return sum(plans.values()) >= 20 and plans["agent"] > 0 and bool(tickets)

        await _wait_for(enough, "20 IVR calls, one to an agent, one table-and-chair ticket")
        await sim.stop()
        await asyncio.wait_for(service.drain(), TIMEOUT)
        await asyncio.wait_for(service.writer.flush(), TIMEOUT)
        finished = done()

        rows = {
            row["linkedid"]: row
            for row in await pool.fetch(
                "SELECT linkedid, ivr_digits, ivr_result, ivr_vars::text AS ivr_vars, outcome "
                "FROM calls WHERE server = $1 AND linkedid = ANY($2::text[])",
                SERVER,
                [r.linkedid for r in finished],
            )
        }
        visits: dict[str, list[str]] = {}
        for row in await pool.fetch(
            "SELECT linkedid, queue FROM queue_visits WHERE server = $1 ORDER BY linkedid, seq",
            SERVER,
        ):
            visits.setdefault(row["linkedid"], []).append(row["queue"])
        assert set(rows) == {r.linkedid for r in finished}
        for record in finished:
            row = rows[record.linkedid]
            ivr_vars = json.loads(row["ivr_vars"])
            # The simulator's log and the service's record of the same call agree.
            assert row["ivr_digits"] == record.keys, record
            assert ivr_vars == record.variables, record
            assert row["ivr_result"] == (record.results[-1] if record.results else None)
            if record.end in ("queue", "fallback"):
                assert visits[record.linkedid][0] == record.queue == ivr_vars["CC_QUEUE"]
                assert ivr_vars["CC_IVR_END"] == record.end
            else:
                assert record.linkedid not in visits and row["outcome"] == "ivr_only"
        through = [r for r in finished if r.through_ivr and r.end != "caller_hangup"]
        assert all(rows[r.linkedid]["ivr_digits"] for r in through)
        assert all(json.loads(rows[r.linkedid]["ivr_vars"])["CC_IVR_PATH"] for r in through)
        queues = {r.queue for r in through if r.end == "queue"}
        assert len(queues) >= 2  # the IVR chose among the menu's queues

        # A table-and-chair caller opened a ticket by keypad; it belongs to that call.
        for record in [r for r in finished if "ticket_opened" in r.results]:
            assert record.reference is not None
            reference = f"{record.reference[:4]}-{record.reference[4:]}"
            ticket = await pool.fetchrow(
                "SELECT t.category, t.channel, c.linkedid FROM tickets t "
                "JOIN ticket_calls c ON c.ticket_id = t.id WHERE t.reference = $1",
                reference,
            )
            assert ticket is not None, reference
            assert (ticket["category"], ticket["channel"]) == ("masa-sandalye", "ivr")
            assert ticket["linkedid"] == record.linkedid
            assert json.loads(rows[record.linkedid]["ivr_vars"])["CC_TICKET"] == reference
            assert record.variables["CC_IVR_PATH"] == "main>masa-sandalye"
    finally:
        await sim.stop()
        if service is not None:
            await service.stop()


async def _step(sim: Simulator) -> bool:
    """Moves the manual clock to its next timer once no AGI session waits for the service."""
    assert sim.agi is not None
    for _ in range(int(TIMEOUT / 0.001)):
        if sim.agi.busy == 0:
            break
        await asyncio.sleep(0.001)
    else:
        raise AssertionError("an AGI session never got its next command")
    due = sim.pbx.sched.next_time()
    if due is None:
        return False
    sim.server.advance(due)
    await asyncio.sleep(0)
    return True


async def test_one_table_and_chair_call_on_ami_and_on_simulated_time() -> None:
    desk = MemoryDesk()
    menu = load_menu()
    ivr = FastAgiServer(menu, desk)
    await ivr.start("127.0.0.1", 0)
    port = ivr.port
    seen: list[dict[str, str]] = []
    # A manual clock, moved only while no session waits for the service: every simulated
    # time below is the caller model's, whatever the wall time the service took.
    sim = Simulator(
        speed=None, port=0, traffic=False, agi=("127.0.0.1", port), ivr_callers=ONLY_TABLE_CHAIR
    )
    await sim.start()
    client = AmiClient(
        AsteriskServer(port=sim.port, secret="callcenter"),
        lambda server, headers, received_at: seen.append(dict(headers)),
    )
    try:
        await asyncio.wait_for(client.start(), TIMEOUT)
        await asyncio.wait_for(
            client.action(
                {
                    "Action": "Originate",
                    "Channel": "Local/cust@callers",
                    "Context": "incoming",
                    "Exten": "4442000",
                    "CallerID": '"Ayşe Yılmaz" <05321234567>',
                    "Async": "true",
                    "Variable": ["CATEGORY=Masa-sandalye", "IVRDELAY=2"],
                }
            ),
            TIMEOUT,
        )
        for _ in range(10_000):
            if not await _step(sim):
                break
        await asyncio.wait_for(client.action({"Action": "Ping"}), TIMEOUT)  # all events in
    finally:
        await client.close()
        await sim.stop()
        await ivr.close()
    assert sim.agi is not None
    [record] = sim.agi.records.values()
    [ticket] = desk.tickets.values()
    c1 = [h for h in seen if h.get("Uniqueid") == record.linkedid and "Context" in h]

    def at(event: str, **match: str) -> list[float]:
        return [
            float(h["Timestamp"])
            for h in c1
            if h.get("Event") == event and all(h.get(k) == v for k, v in match.items())
        ]

    [agi] = [h for h in c1 if h.get("Event") == "Newexten" and h["Application"] == "AGI"]
    assert agi["AppData"] == f"agi://127.0.0.1:{port}/ivr,{record.linkedid}"
    keys = "".join(h["Digit"] for h in c1 if h.get("Event") == "DTMFEnd")
    assert keys == "".join(h["Digit"] for h in c1 if h.get("Event") == "DTMFBegin")
    assert keys == record.keys and keys[0] == "2"  # main menu: masa-sandalye
    assert keys[2:10] == date.fromisoformat(ticket.fields["event_date"]).strftime("%d%m%Y")
    assert keys[10:] == ticket.fields["neighbourhood_code"] + "1"  # and confirmed
    varsets = {
        h["Variable"]: h["Value"]
        for h in c1
        if h.get("Event") == "VarSet" and h["Variable"].startswith("CC_")
    }
    assert varsets == record.variables
    assert varsets["CC_TICKET"] == ticket.reference and varsets["CC_IVR_END"] == "hangup"
    [event] = [h for h in c1 if h.get("Event") == "UserEvent"]
    assert (event["UserEvent"], event["Flow"], event["Result"]) == (
        "CallcenterIvr",
        "masa_sandalye",
        "ticket_opened",
    )
    assert not [h for h in seen if h.get("Event") == "QueueCallerJoin"]  # self-service only

    # Simulated time is what the caller hears. The first key: once "2" is announced in the
    # main menu, plus the caller's reaction (IVRDELAY).
    maps = MenuMap(menu)
    [start] = at("Newexten", Application="AGI")
    first = maps.key_heard_s("callcenter/main-menu", "tr", "2") + 2.0
    assert at("DTMFEnd")[0] - start == pytest.approx(first, abs=1e-3)
    # After the confirming key: the reference read out, its repeat offer, 5 s of silence
    # (opening the ticket took no simulated time), then the flow's result.
    confirmed = at("DTMFEnd")[-1]
    read_out = (
        maps.seconds("callcenter/ms-ticket-opened", "tr")
        + sum(maps.seconds(sound, "tr") for sound in say.reference(ticket.reference, "tr"))
        + maps.seconds("callcenter/ms-repeat-reference", "tr")
        + 5.0
    )
    [result] = at("UserEvent")
    assert result - confirmed == pytest.approx(read_out, abs=1e-3)
    # Then "star or 0", 6 s of silence and goodbye before the dialplan hangs up.
    goodbye = (
        maps.seconds("callcenter/after-flow", "tr") + 6.0 + maps.seconds("callcenter/goodbye", "tr")
    )
    [hangup] = at("Hangup")
    assert hangup - result == pytest.approx(goodbye, abs=1e-3)
    assert record.ended_at == pytest.approx(hangup, abs=1e-3)


async def test_an_unreachable_ivr_sends_callers_to_the_general_queue() -> None:
    port = _free_port()  # nothing listens there
    sim = Simulator(speed=120, seed=4, port=0, agi=("127.0.0.1", port))
    await sim.start()
    try:
        assert sim.agi is not None
        records = sim.agi.records
        await _wait_for(lambda: sum(1 for r in records.values() if r.end) >= 5, "five calls")
    finally:
        await sim.stop()
    finished = [r for r in records.values() if r.end]
    assert {(r.status, r.end, r.queue, r.keys) for r in finished} == {
        ("FAILURE", "fallback", "genel", "")
    }
    assert all(r.variables == {"CC_QUEUE": "genel", "CC_IVR_END": "fallback"} for r in finished)

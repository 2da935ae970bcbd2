"""The simulated PBX without sockets: identifiers, simulated time, outcomes, agents."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import datetime

from callcenter.sim import members, wire
from callcenter.sim.config import IVR_DID, PbxConfig, QueueConfig, recorded_queues
from callcenter.sim.engine import Pbx, Scheduler
from callcenter.sim.plan import CallPlan
from callcenter.sim.traffic import TrafficParams
from callcenter.sim.workload import ISTANBUL, Workload, morning_peak, traffic_config

EPOCH = 1_795_884_362.5


def parse(text: str) -> dict[str, str]:
    """Headers of one rendered message."""
    out = {}
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            out.setdefault(key, value)
    return out


def run(plans: list[tuple[float, CallPlan]], until: float = 120.0, **globals_: str) -> list[dict]:
    """Originates the plans at their times and returns every event, parsed."""
    pbx = Pbx(PbxConfig(), epoch=EPOCH, rng=random.Random(1))
    pbx.wanted = wire.ALL_CLASSES
    pbx.globals.update(globals_)
    for t, plan in plans:
        pbx.sched.at(t, pbx.originate, plan, "drv-1")
    pbx.sched.run_until(until)
    return [parse(text) for _, text in pbx.take_output()]


def caller(**kw: object) -> CallPlan:
    plan = CallPlan(name="Ayşe Yılmaz", number="05321234567")
    for key, value in kw.items():
        setattr(plan, key, value)
    return plan.with_variables()


def names(events: list[dict]) -> list[str]:
    return [e["Event"] for e in events]


def test_scheduler_runs_callbacks_in_time_order_and_skips_cancelled() -> None:
    sched, seen = Scheduler(), []
    sched.at(2.0, seen.append, "b")
    sched.at(1.0, seen.append, "a")
    sched.at(1.0, seen.append, "a2")
    sched.at(3.0, seen.append, "c").cancel()
    sched.run_until(10.0)
    assert seen == ["a", "a2", "b"]
    assert sched.now == 10.0 and sched.next_time() is None


def test_uniqueids_linkedids_and_local_channel_names() -> None:
    events = run([(0.0, caller(talk=8.0, hangup_by="caller")), (20.0, caller(talk=5.0))])
    new = [e for e in events if e["Event"] == "Newchannel"]
    assert [e["Channel"] for e in new] == [
        "Local/cust@callers-00000000;1",
        "Local/cust@callers-00000000;2",
        "Local/1001@agents-00000001;1",
        "Local/1001@agents-00000001;2",
        "Local/cust@callers-00000002;1",
        "Local/cust@callers-00000002;2",
        "Local/1002@agents-00000003;1",  # rrmemory moves on to the next agent
        "Local/1002@agents-00000003;2",
    ]
    uids = [e["Uniqueid"] for e in new]
    assert all(re.fullmatch(r"\d{10}\.\d+", u) for u in uids)
    assert [int(u.split(".")[1]) for u in uids] == list(range(8))
    assert uids[0].split(".")[0] == str(int(EPOCH))
    assert uids[2].split(".")[0] == str(int(EPOCH + 1.003))  # created a second later
    # Every channel of a call carries the caller ;1 uniqueid as its linkedid.
    assert {e["Linkedid"] for e in new[:4]} == {uids[0]}
    assert {e["Linkedid"] for e in new[4:]} == {uids[4]}


def test_timestamps_are_simulated_time() -> None:
    events = run([(0.0, caller(talk=72.0, hangup_by="caller"))])
    stamps = [float(e["Timestamp"]) for e in events]
    assert stamps == sorted(stamps)
    connect = next(e for e in events if e["Event"] == "AgentConnect")
    complete = next(e for e in events if e["Event"] == "AgentComplete")
    talk = float(complete["Timestamp"]) - float(connect["Timestamp"])
    assert abs(talk - pbx_talk(72.0)) < 0.001
    assert complete["TalkTime"] == "72" and complete["Reason"] == "caller"
    # Timestamp comes right after Privilege, as timestampevents=yes puts it.
    assert list(connect)[:3] == ["Event", "Privilege", "Timestamp"]


def pbx_talk(talk: float) -> float:
    """Talk as the events show it: TALK plus the redirect latency Asterisk adds."""
    return round(talk + PbxConfig().talk_latency, 6)


def test_agent_hangup_reason() -> None:
    events = run([(0.0, caller(talk=10.0, hangup_by="agent"))])
    complete = next(e for e in events if e["Event"] == "AgentComplete")
    assert complete["Reason"] == "agent" and complete["TalkTime"] == "10"


def test_timeout_and_abandon_are_told_apart_by_queuestatus() -> None:
    never = {f"RD_{ext}": "never" for ext in ("1001", "1002", "1003")}
    timeout = run([(0.0, caller(queue_timeout=10.0))], **never)
    abandon = run([(0.0, caller(patience=7.0))], **never)
    for events in (timeout, abandon):
        assert "QueueCallerAbandon" in names(events)  # Asterisk sends it for both
    status = [e["Value"] for e in timeout if e.get("Variable") == "QUEUESTATUS"]
    assert status == ["TIMEOUT"]
    assert not [e for e in abandon if e.get("Variable") == "QUEUESTATUS"]
    rna = next(e for e in timeout if e["Event"] == "AgentRingNoAnswer")
    assert rna["RingTime"] == "10000"  # milliseconds


def test_ring_no_answer_then_the_next_agent() -> None:
    events = run([(0.0, caller(talk=8.0))], RD_1001="never", RD_1002="3")
    flow = [(e["Event"], e.get("MemberName")) for e in events if e["Event"].startswith("Agent")]
    assert flow == [
        ("AgentCalled", "Zeynep Kaya"),
        ("AgentRingNoAnswer", "Zeynep Kaya"),
        ("AgentCalled", "Mehmet Öztürk"),
        ("AgentConnect", "Mehmet Öztürk"),
        ("AgentComplete", "Mehmet Öztürk"),
    ]
    called = [float(e["Timestamp"]) for e in events if e["Event"] == "AgentCalled"]
    assert round(called[1] - called[0], 3) == 17.006  # 15 s ring + 2 s retry


def test_ivr_self_service_emits_a_user_event_and_no_queue() -> None:
    events = run([(0.0, caller(did=IVR_DID, ivr_digits=("9", "2"), ivr_delay=2.0))])
    user = next(e for e in events if e["Event"] == "UserEvent")
    assert user["UserEvent"] == "SelfService" and user["Result"] == "basvuru-durumu-okundu"
    assert [e["Digit"] for e in events if e["Event"] == "DTMFEnd"] == ["9", "2"]
    assert not [e for e in events if e["Event"].startswith("Queue")]


def test_a_full_queue_refuses_without_queue_events() -> None:
    config = PbxConfig(queues=(QueueConfig("genel", maxlen=1, members=()),))
    pbx = Pbx(config, epoch=EPOCH, rng=random.Random(1))
    pbx.wanted = wire.ALL_CLASSES
    members.add_member(pbx, pbx.queues["genel"], "Local/1001@agents/n", "Zeynep Kaya")
    pbx.globals["RD_1001"] = "never"
    for t in (0.0, 0.1):
        pbx.sched.at(t, pbx.originate, caller(patience=30.0), None)
    pbx.sched.run_until(60)
    events = [parse(text) for _, text in pbx.take_output()]
    joins = [e for e in events if e["Event"] == "QueueCallerJoin"]
    assert len(joins) == 1
    assert [e["Value"] for e in events if e.get("Variable") == "QUEUESTATUS"] == ["FULL"]


def test_pause_and_unpause_in_every_queue_of_the_agent() -> None:
    pbx = Pbx(PbxConfig(queues=recorded_queues()), epoch=EPOCH, rng=random.Random(1))
    pbx.wanted = wire.ALL_CLASSES
    done = members.pause_members(pbx, "Local/1003@agents/n", True, None, "Çay molası")
    assert {m.queue.name for m in done} == {"genel", "sosyal-yardim"}
    events = [parse(t) for _, t in pbx.take_output() if "QueueMemberPause" in t]
    assert [(e["Queue"], e["Paused"], e["PausedReason"]) for e in events] == [
        ("sosyal-yardim", "1", "Çay molası"),
        ("genel", "1", "Çay molası"),
    ]
    members.pause_members(pbx, "Local/1003@agents/n", False, None, "")
    events = [parse(t) for _, t in pbx.take_output() if "QueueMemberPause" in t]
    assert [(e["Paused"], e["PausedReason"]) for e in events] == [("0", ""), ("0", "")]


def test_noise_is_about_two_thirds_of_a_working_hour() -> None:
    params = TrafficParams()
    ten = morning_peak(datetime(2026, 11, 30, tzinfo=ISTANBUL)) + 3600  # a Monday, 10:00
    pbx = Pbx(traffic_config(params), epoch=ten, rng=random.Random(5))
    pbx.wanted = wire.ALL_CLASSES
    Workload(pbx, params, random.Random(5)).start()
    pbx.sched.run_until(1800)
    counts = Counter(parse(t)["Event"] for _, t in pbx.take_output())
    total = sum(counts.values())
    assert 0.6 < (counts["VarSet"] + counts["Newexten"]) / total < 0.75
    for name in ("QueueCallerJoin", "AgentConnect", "AgentComplete", "QueueMemberAdded"):
        assert counts[name] > 0


def test_unwanted_classes_are_not_even_rendered() -> None:
    pbx = Pbx(PbxConfig(), epoch=EPOCH, rng=random.Random(1))
    pbx.wanted = wire.CLASSES["agent"]
    pbx.originate(caller(talk=5.0), None)
    pbx.sched.run_until(60)
    out = [parse(t)["Event"] for _, t in pbx.take_output()]
    assert "AgentComplete" in out
    assert not {"VarSet", "Newexten", "Newchannel"} & set(out)

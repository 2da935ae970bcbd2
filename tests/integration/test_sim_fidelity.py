"""The simulator side by side with real Asterisk 22: same inputs, same AMI stream shape.

For each recorded scenario the simulator (over a real TCP socket, simulated time stepped by
the test) gets the recording's inputs: the driver's ring delays and Originates (from
``meta.json``) and the observer's own actions (the ``sent`` records), each at its recorded
time. Its observer stream is then compared with the recorded one:

* phase by phase (a phase = events closer than PHASE_GAP to the previous one), the same
  multiset of event types, noise ignored: within one instant Asterisk's own recordings of
  the same kind of call differ in order (its threads race), so order is only compared for
* the call-flow events (Queue*/Agent*/transfer/IVR/member events), which must come in the
  same order with the same key values (queue, agent, hold and talk seconds…);
* header layout: every event type the simulator sends has a header list (names, order)
  that the recording has too, Timestamp aside, and for the events a tracker reads
  (KEY_EVENTS) the layouts are exactly the recorded ones;
* what the service's call tracker makes of both streams: the same calls, outcomes, agents,
  visits, and waits and talk times within 50 ms.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcenter.sim.client import AmiClient
from callcenter.sim.config import PbxConfig
from callcenter.sim.engine import Pbx
from callcenter.sim.server import AmiServer

TRACES = Path(__file__).resolve().parent.parent / "traces"

# The noise every comparison ignores: dialplan chatter and per-channel bookkeeping events.
IGNORE = frozenset(
    {
        "VarSet",
        "Newexten",
        "DeviceStateChange",
        "Cdr",
        "Newstate",
        "NewCallerid",
        "NewConnectedLine",
        "SoftHangupRequest",
        "HangupRequest",
        "HangupHandlerPush",
        "HangupHandlerRun",
        "LocalBridge",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
    }
)
# Call-flow events and the headers whose values must match, in order.
FLOW = {
    "QueueCallerJoin": ("Queue", "Position", "Count"),
    "QueueCallerLeave": ("Queue", "Position", "Count"),
    "QueueCallerAbandon": ("Queue", "Position", "OriginalPosition", "HoldTime"),
    "AgentCalled": ("Queue", "MemberName"),
    "AgentRingNoAnswer": ("Queue", "MemberName", "RingTime"),
    "AgentConnect": ("Queue", "MemberName", "HoldTime", "RingTime"),
    "AgentComplete": ("Queue", "MemberName", "Reason", "HoldTime", "TalkTime"),
    "BlindTransfer": ("Result", "Context", "Extension"),
    "UserEvent": ("UserEvent", "Result"),
    "DTMFEnd": ("Digit",),
    "QueueMemberAdded": ("Queue", "MemberName", "Paused"),
    "QueueMemberRemoved": ("Queue", "MemberName"),
    "QueueMemberPause": ("Queue", "MemberName", "Paused", "PausedReason"),
}
KEY_EVENTS = (
    "QueueCallerJoin",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "QueueCallerAbandon",
    "QueueCallerLeave",
    "Hangup",
    "Newchannel",
)
PHASE_GAP = 0.3  # seconds; the scenarios' steps are at least 0.5 s apart

# The driver's ring delays (RD_<ext> globals) per scenario, from each scenario.md.
RING_DELAYS: dict[str, dict[str, str]] = {
    "abandon": {"1001": "20", "1002": "20", "1003": "20"},
    "ring_noanswer": {"1001": "never", "1002": "3"},
    "queue_timeout": {"1001": "never", "1002": "never", "1003": "never"},
    "transfer": {"1001": "2", "1002": "2", "1003": "2", "1004": "2"},
    "concurrent": {"1001": "2", "1002": "4", "1003": "3"},
    "midcall_resync": {"1001": "2", "1002": "never", "1003": "never"},
    "pause_unpause_login": {"1005": "2"},
}
KINDS = [
    "answered",
    "agent_hangup",
    "abandon",
    "ring_noanswer",
    "queue_timeout",
    "ivr_to_queue",
    "ivr_self_service",
    "pause_unpause_login",
    "transfer",
    "answered_timestamps",
    "concurrent",
    "midcall_resync",
]


@dataclass
class Msg:
    """One received message: when (seconds since the scenario start) and its headers."""

    t: float
    raw: str

    @property
    def pairs(self) -> list[tuple[str, str]]:
        out = []
        for line in self.raw.split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep or line.endswith(":"):
                out.append((key.rstrip(":"), value))
        return out

    @property
    def event(self) -> str | None:
        return self.raw[7:].split("\r\n", 1)[0] if self.raw.startswith("Event: ") else None


def load_recorded(scenario: str) -> tuple[dict, list[dict]]:
    """``meta.json`` and the trace records of a scenario."""
    meta = json.loads((TRACES / scenario / "meta.json").read_text(encoding="utf-8"))
    with gzip.open(TRACES / scenario / "ami.jsonl.gz", "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    return meta, records


def parse_sent(text: str) -> tuple[str, list[tuple[str, str]]]:
    """An action as the recorder logged it: its name and its other headers."""
    pairs = [tuple(line.split(": ", 1)) for line in text.split("\r\n") if ": " in line]
    name = next(v for k, v in pairs if k == "Action")
    return name, [(k, v) for k, v in pairs if k not in ("Action", "ActionID")]


async def run_simulated(scenario: str) -> tuple[list[Msg], list[Msg]]:
    """Plays the recording's inputs into the simulator; returns the observer's messages.

    The second list holds the observer's actions (``raw`` = the action text) at their times.
    """
    meta, records = load_recorded(scenario)
    epoch = float(meta["t0_epoch"])
    pbx = Pbx(PbxConfig(timestampevents=True), epoch=epoch, rng=random.Random(scenario))
    server = AmiServer(pbx, speed=None, auth_fail_delay=0)
    port = await server.start()
    driver = await AmiClient.connect("127.0.0.1", port)
    observer: AmiClient | None = None
    step_times: list[tuple[int, float]] = []  # (first message index, step time)
    sent: list[Msg] = []
    try:
        await driver.login(events="off")
        for ext, delay in RING_DELAYS.get(scenario, {}).items():
            await driver.action("Setvar", Variable=f"RD_{ext}", Value=delay)
        steps: list[tuple[float, int, str, object]] = []
        for rec in records:
            if "sent" in rec:
                steps.append((rec["t"], 0, "sent", rec["sent"]))
        for call in meta.get("originated", []):
            steps.append((call["t"], 1, "originate", call))
        # meta.json rounds to the millisecond; at equal times the observer acted first.
        steps.sort(key=lambda s: (round(s[0], 3), s[1]))
        for t, _, kind, payload in steps:
            server.advance(t)
            if kind == "originate":
                assert isinstance(payload, dict)
                variables = [f"{k}={v}" for k, v in payload["vars"].items()]
                await driver.action(
                    "Originate",
                    Channel="Local/cust@callers",
                    Context="incoming",
                    Exten=payload["did"],
                    Priority=1,
                    CallerID=f'"{payload["name"]}" <{payload["num"]}>',
                    Async="true",
                    Variable=variables,
                )
                continue
            assert isinstance(payload, str)
            name, headers = parse_sent(payload)
            if name == "Login":
                observer = await AmiClient.connect("127.0.0.1", port)
                await observer.wait_for("Asterisk Call Manager")
            assert observer is not None
            step_times.append((len(observer.messages), t))
            sent.append(Msg(t, payload))
            if name == "Logoff":
                await observer.action("Logoff")
                break
            await observer.action(name, **dict(headers))
            await observer.sync()
        assert observer is not None
        await asyncio.wait_for(observer.closed.wait(), 5)
    finally:
        await driver.close()
        if observer is not None:
            await observer.close()
        await server.close()
    msgs: list[Msg] = []
    marks = iter(step_times + [(10**9, 0.0)])
    next_index, next_t = next(marks)
    current = 0.0
    for index, (_, raw) in enumerate(observer.messages):
        while index >= next_index:
            current = next_t
            next_index, next_t = next(marks)
        ts = next((v for k, v in Msg(0, raw).pairs if k == "Timestamp"), None)
        msgs.append(Msg(float(ts) - epoch if ts else current, raw))
    return msgs, sent


def recorded_messages(scenario: str) -> list[Msg]:
    """The recorded observer stream."""
    _, records = load_recorded(scenario)
    return [Msg(r["t"], r["raw"]) for r in records if "raw" in r]


def phases(msgs: list[Msg]) -> list[Counter[str]]:
    """Event types (noise ignored) grouped into phases separated by quiet gaps."""
    out: list[Counter[str]] = []
    last = None
    for m in msgs:
        name = m.event
        if name is None or name in IGNORE:
            continue
        if last is None or m.t - last > PHASE_GAP:
            out.append(Counter())
        out[-1][name] += 1
        last = m.t
    return out


def flow(msgs: list[Msg]) -> list[tuple[str, ...]]:
    """The call-flow events in order, with their key values."""
    out = []
    for m in msgs:
        name = m.event
        if name in FLOW:
            h = dict(m.pairs)
            out.append((name, *(h.get(k, "?") for k in FLOW[name])))
    return out


def layouts(msgs: list[Msg], strip_timestamp: bool) -> dict[str, set[tuple[str, ...]]]:
    """Header-name lists per event type."""
    out: dict[str, set[tuple[str, ...]]] = {}
    for m in msgs:
        name = m.event
        if name is None:
            continue
        keys = tuple(k for k, _ in m.pairs if not (strip_timestamp and k == "Timestamp"))
        out.setdefault(name, set()).add(keys)
    return out


@pytest.fixture(scope="module")
def simulated() -> dict[str, list[Msg]]:
    """Every scenario run through the simulator once."""

    async def run_all() -> dict[str, list[Msg]]:
        out = {}
        for scenario in KINDS:
            msgs, sent = await asyncio.wait_for(run_simulated(scenario), 60)
            out[scenario] = msgs
            out[scenario + ":sent"] = sent
        return out

    return asyncio.run(run_all())


@pytest.mark.parametrize("scenario", KINDS)
def test_same_events_phase_by_phase(scenario: str, simulated: dict[str, list[Msg]]) -> None:
    ours, theirs = phases(simulated[scenario]), phases(recorded_messages(scenario))
    assert len(ours) == len(theirs), (ours, theirs)
    for i, (mine, real) in enumerate(zip(ours, theirs, strict=True)):
        assert mine == real, f"phase {i}: simulator {dict(mine)} != recorded {dict(real)}"


@pytest.mark.parametrize("scenario", KINDS)
def test_same_call_flow(scenario: str, simulated: dict[str, list[Msg]]) -> None:
    assert flow(simulated[scenario]) == flow(recorded_messages(scenario))


@pytest.mark.parametrize("scenario", KINDS)
def test_same_header_layouts(scenario: str, simulated: dict[str, list[Msg]]) -> None:
    stamped = scenario == "answered_timestamps"
    ours = layouts(simulated[scenario], strip_timestamp=not stamped)
    theirs = layouts(recorded_messages(scenario), strip_timestamp=False)
    for name, keys in ours.items():
        if name in theirs:
            assert keys <= theirs[name], f"{name}: {keys - theirs[name]}"
    for name in KEY_EVENTS:  # the events a tracker reads: exactly the recorded layouts
        assert ours.get(name) == theirs.get(name), name


def as_trace(msgs: list[Msg], sent: list[Msg]) -> list[str]:
    """Messages (and the actions sent) as trace JSON lines, in time order."""
    records = [(m.t, 1, {"t": m.t, "raw": m.raw}) for m in msgs]
    records += [(m.t, 0, {"t": m.t, "sent": m.raw}) for m in sent]
    return [json.dumps(r) for _, _, r in sorted(records, key=lambda r: (r[0], r[1]))]


def tracked(lines: list[str], t0: float) -> list[tuple]:
    """What the service's call tracker makes of a stream: one summary per finished call."""
    replay = pytest.importorskip("callcenter.replay")
    from callcenter.model import CallEnded

    calls = [e.call for e in replay.replay_lines(lines, t0=t0) if isinstance(e, CallEnded)]
    calls.sort(key=lambda c: (c.started_at, c.caller_number or ""))
    return [
        (
            c.caller_number,
            c.outcome,
            c.agent,
            c.wait_s,
            c.talk_s,
            [(v.queue, v.outcome, v.agent, v.hangup_by) for v in c.visits],
        )
        for c in calls
    ]


@pytest.mark.parametrize("scenario", KINDS)
def test_tracker_sees_the_same_calls(scenario: str, simulated: dict[str, list[Msg]]) -> None:
    meta, records = load_recorded(scenario)
    t0 = float(meta["t0_epoch"])
    theirs = tracked([json.dumps(r) for r in records], t0)
    ours = tracked(as_trace(simulated[scenario], simulated[scenario + ":sent"]), t0)
    assert len(ours) == len(theirs)
    for mine, real in zip(ours, theirs, strict=True):
        number, outcome, agent, wait, talk, visits = mine
        assert (number, outcome, agent, visits) == (real[0], real[1], real[2], real[5])
        for got, want in ((wait, real[3]), (talk, real[4])):
            assert (got is None) == (want is None), (mine, real)
            if got is not None and want is not None:
                assert abs(got - want) <= 0.05, (mine, real)

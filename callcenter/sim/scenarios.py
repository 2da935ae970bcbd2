"""One scripted call per kind, as the recordings made them: play one into the simulator.

Each kind is the recording driver's input for that scenario (agents' ring delays, the
Originate of the caller with the reference dialplan's variables, a supervisor's actions at
given simulated times). ``play`` runs it on a :class:`Pbx` without sockets, through the
same action handlers the AMI server uses, and returns the events it produced; over AMI the
same steps can be sent by any client. The fidelity tests feed the recordings' own inputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from callcenter.sim import wire
from callcenter.sim.actions import HANDLERS
from callcenter.sim.config import GENEL_DID, IVR_DID, PbxConfig
from callcenter.sim.engine import Pbx


@dataclass(frozen=True, slots=True)
class Step:
    """An AMI action at a simulated time; ``$agent`` / ``$caller`` name a live channel."""

    at: float
    action: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of call: what the driver and the supervisor do, and how long it lasts."""

    doc: str
    steps: tuple[Step, ...]
    ring_delays: dict[str, str] = field(default_factory=dict)
    duration: float = 40.0


def originate(at: float, did: str = GENEL_DID, **variables: object) -> Step:
    """The driver's Originate of a caller (``Local/cust@callers`` into ``incoming,<did>``)."""
    headers = [
        ("Channel", "Local/cust@callers"),
        ("Context", "incoming"),
        ("Exten", did),
        ("Priority", "1"),
        ("CallerID", '"Ayşe Yılmaz" <05321234567>'),
        ("Async", "true"),
    ]
    headers += [("Variable", f"{k}={v}") for k, v in variables.items()]
    return Step(at, "Originate", tuple(headers))


def _pause(at: float, ext: str, paused: bool, reason: str = "", queue: str = "") -> Step:
    headers = [("Interface", f"Local/{ext}@agents/n"), ("Paused", str(paused).lower())]
    if queue:
        headers.append(("Queue", queue))
    if reason:
        headers.append(("Reason", reason))
    return Step(at, "QueuePause", tuple(headers))


KINDS: dict[str, Kind] = {
    "answered": Kind(
        "genel; 1001 answers after 3 s; 8 s talk; the caller hangs up.",
        (originate(0.0, __TALK=8, __HANGUPBY="caller"),),
    ),
    "agent_hangup": Kind(
        "genel; 1001 answers after 3 s; 8 s talk; the agent hangs up.",
        (originate(0.0, __TALK=8, __HANGUPBY="agent"),),
    ),
    "abandoned": Kind(
        "Agents would take 20 s; the caller gives up after ~6 s in the queue.",
        (originate(0.0, PATIENCE=7, __TALK=8),),
        {"1001": "20", "1002": "20", "1003": "20"},
    ),
    "ring_noanswer": Kind(
        "1001 never answers (RINGNOANSWER after 15 s), 2 s later 1002 answers.",
        (originate(0.0, __TALK=8, __HANGUPBY="caller"),),
        {"1001": "never", "1002": "3"},
    ),
    "queue_timeout": Kind(
        "Nobody answers; Queue(genel,,,,10) gives up: QueueCallerAbandon, QUEUESTATUS=TIMEOUT.",
        (originate(0.0, QTIMEOUT=10, __QTIMEOUT=10),),
        {"1001": "never", "1002": "never", "1003": "never"},
    ),
    "ivr_to_queue": Kind(
        "IVR line; key 1 after 2 s -> sosyal-yardim; 10 s talk.",
        (originate(0.0, IVR_DID, IVRDIGITS=1, IVRDELAY=2, __TALK=10, __HANGUPBY="caller"),),
    ),
    "ivr_only": Kind(
        "IVR line; keys 9 (repeat) then 2 (self-service): UserEvent SelfService, no queue.",
        (originate(0.0, IVR_DID, IVRDIGITS="9-2", IVRDELAY=2),),
        duration=15.0,
    ),
    "pause_unpause": Kind(
        "1001 and 1002 paused (Çay molası, Toplantı), so 1003 takes the call; all unpaused.",
        (
            _pause(0.0, "1001", True, "Çay molası", "genel"),
            _pause(0.5, "1002", True, "Toplantı"),
            originate(1.0, __TALK=8, __HANGUPBY="caller"),
            _pause(20.0, "1001", False, queue="genel"),
            _pause(20.5, "1002", False),
        ),
        {"1003": "2"},
    ),
    "transfer": Kind(
        "genel; 1001 answers; 4 s later BlindTransfer to sosyal-yardim; 1003 answers.",
        (
            originate(0.0, __TALK=8, __HANGUPBY="caller"),
            Step(
                7.0,
                "BlindTransfer",
                (("Channel", "$agent"), ("Context", "transfer"), ("Exten", "sosyal")),
            ),
        ),
        {"1001": "2", "1002": "2", "1003": "2", "1004": "2"},
    ),
}


def _resolve(pbx: Pbx, value: str) -> str:
    for call in pbx.calls.values():
        if value == "$caller":
            return call.c1.name
        if value == "$agent" and call.attempt is not None:
            return call.attempt.leg.a1.name
    return value


def play(
    kind: str, *, epoch: float = 1_795_884_362.0, seed: int = 1, config: PbxConfig | None = None
) -> list[str]:
    """Runs one kind on a fresh PBX; returns every event it emitted, rendered."""
    spec = KINDS[kind]
    pbx = Pbx(config or PbxConfig(), epoch=epoch, rng=random.Random(seed))
    pbx.wanted = wire.ALL_CLASSES
    for ext, delay in spec.ring_delays.items():
        pbx.globals[f"RD_{ext}"] = delay
    for number, step in enumerate(spec.steps, 1):
        pbx.sched.run_until(step.at)
        headers = [(k, _resolve(pbx, v)) for k, v in step.headers]
        HANDLERS[step.action.lower()](pbx, headers, f"drv-{number}")
    pbx.sched.run_until(spec.duration)
    return [text for _, text in pbx.take_output()]

"""Synthetic AMI for load: thousands of simultaneous callers in queues with thousands of agents.

The messages have Asterisk 22's header layouts (a full channel block, as in the recorded
traces) for what the tracker reads: agents logging in (QueueMemberAdded), callers arriving
(Newchannel, Newexten into Queue(), VarSet noise, QueueCallerJoin), agents ringing and answering
(AgentCalled, the agent's Local channel, AgentConnect, QueueCallerLeave, QueueMemberStatus),
and everyone hanging up (AgentComplete, Hangup; QueueCallerAbandon for those still waiting).
``start`` brings every call up at once; ``finish`` ends them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

QUEUES = ("genel", "sosyal-yardim", "masa-sandalye", "cozum-ofisi", "deprem", "talep-takip")
_T0 = 1_800_000_000.0


@dataclass(frozen=True, slots=True)
class Load:
    """``calls`` simultaneous callers, ``agents`` agents each in two queues, from ``t0``."""

    calls: int = 10_000
    agents: int = 2_000
    t0: float = _T0

    def uid(self, i: int, leg: int = 0) -> str:
        """The uniqueid of call ``i``'s caller channel (leg 0) or its agent leg (leg 1)."""
        return f"{int(self.t0) + i // 1000}.{(i % 1000) * 2 + leg}"

    def queue(self, i: int) -> str:
        return QUEUES[i % len(QUEUES)]

    def agent_for(self, i: int) -> int | None:
        """Which agent answers call ``i`` (the first ``agents`` calls), else None (it waits)."""
        return i if i < self.agents else None


def _block(
    channel: str, uid: str, linkedid: str, number: str, name: str, context: str, exten: str
) -> str:
    """A channel block as Asterisk 22 writes it."""
    return (
        f"Channel: {channel}\r\nChannelState: 6\r\nChannelStateDesc: Up\r\n"
        f"CallerIDNum: {number}\r\nCallerIDName: {name}\r\nConnectedLineNum: <unknown>\r\n"
        f"ConnectedLineName: <unknown>\r\nLanguage: tr\r\nAccountCode: \r\n"
        f"Context: {context}\r\nExten: {exten}\r\nPriority: 1\r\n"
        f"Uniqueid: {uid}\r\nLinkedid: {linkedid}"
    )


def _member(event: str, queue: str, a: int, t: float, *, in_call: bool = False) -> str:
    interface = f"PJSIP/{10000 + a}"
    return (
        f"Event: {event}\r\nPrivilege: agent,all\r\nQueue: {queue}\r\n"
        f"MemberName: Temsilci {a:04d}\r\nInterface: {interface}\r\nStateInterface: {interface}\r\n"
        f"Membership: dynamic\r\nPenalty: 0\r\nCallsTaken: 0\r\nLastCall: 0\r\nLastPause: 0\r\n"
        f"LoginTime: {int(t)}\r\nInCall: {int(in_call)}\r\nStatus: {2 if in_call else 1}\r\n"
        f"Paused: 0\r\nPausedReason: \r\nRinginuse: 0\r\nWrapuptime: 0"
    )


def _agent_queues(load: Load, a: int) -> tuple[str, str]:
    """Each agent serves two neighbouring queues."""
    return QUEUES[a % len(QUEUES)], QUEUES[(a + 1) % len(QUEUES)]


def _caller(load: Load, i: int) -> str:
    number = f"05{(320000000 + i):09d}"
    return _block(
        f"PJSIP/trunk-{i:08x}", load.uid(i), load.uid(i), number, f"Arayan {i}", "ivr", "4441000"
    )


def _leg(load: Load, i: int, a: int) -> str:
    return _block(
        f"Local/{10000 + a}@agents-{i:08x};1",
        load.uid(i, 1),
        load.uid(i),
        str(10000 + a),
        f"Temsilci {a:04d}",
        "agents",
        str(10000 + a),
    )


def start(load: Load) -> Iterator[tuple[float, str]]:
    """Agents log in, then every caller arrives; the first ``agents`` callers are answered."""
    t = load.t0
    for a in range(load.agents):
        for queue in _agent_queues(load, a):
            yield t, _member("QueueMemberAdded", queue, a, t)
    for i in range(load.calls):
        t = load.t0 + 1 + i * 0.001
        caller, queue = _caller(load, i), load.queue(i)
        yield t, f"Event: Newchannel\r\nPrivilege: call,all\r\n{caller}"
        yield (
            t,
            f"Event: VarSet\r\nPrivilege: dialplan,all\r\n{caller}\r\nVariable: CDR(x)\r\nValue: 1",
        )
        yield (
            t,
            f"Event: VarSet\r\nPrivilege: dialplan,all\r\n{caller}\r\n"
            "Variable: CC_MENU\r\nValue: 1",
        )
        yield (
            t,
            (
                f"Event: Newexten\r\nPrivilege: dialplan,all\r\n{caller}\r\nExtension: 4441000\r\n"
                f"Application: Queue\r\nAppData: {queue},t,,,300"
            ),
        )
        yield (
            t,
            f"Event: DTMFEnd\r\nPrivilege: dtmf,all\r\n{caller}\r\nDigit: 1\r\nDirection: Received",
        )
        yield (
            t,
            (
                f"Event: QueueCallerJoin\r\nPrivilege: agent,all\r\n{caller}\r\nQueue: {queue}\r\n"
                f"Position: {i + 1}\r\nCount: {i + 1}"
            ),
        )
    for i in range(load.calls):
        a = load.agent_for(i)
        if a is None:
            continue
        t = load.t0 + 20 + i * 0.001
        caller, queue, leg = _caller(load, i), load.queue(i), _leg(load, i, a)
        member = f"Queue: {queue}\r\nInterface: PJSIP/{10000 + a}\r\nMemberName: Temsilci {a:04d}"
        dest = leg.replace("Channel:", "DestChannel:").replace("\r\nUniqueid:", "\r\nDestUniqueid:")
        yield t, f"Event: Newchannel\r\nPrivilege: call,all\r\n{leg}"
        yield t, f"Event: AgentCalled\r\nPrivilege: agent,all\r\n{caller}\r\n{dest}\r\n{member}"
        yield (
            t + 2,
            (
                f"Event: AgentConnect\r\nPrivilege: agent,all\r\n{caller}\r\n{dest}\r\n{member}\r\n"
                "HoldTime: 19\r\nRingTime: 2"
            ),
        )
        yield (
            t + 2,
            f"Event: QueueCallerLeave\r\nPrivilege: agent,all\r\n{caller}\r\nQueue: {queue}",
        )
        yield t + 2, _member("QueueMemberStatus", queue, a, t, in_call=True)


def finish(load: Load) -> Iterator[tuple[float, str]]:
    """Every call ends: answered ones complete, waiting ones abandon."""
    for i in range(load.calls):
        t = load.t0 + 200 + i * 0.001
        caller, queue, a = _caller(load, i), load.queue(i), load.agent_for(i)
        if a is None:
            yield (
                t,
                (
                    f"Event: QueueCallerAbandon\r\nPrivilege: agent,all\r\n{caller}\r\n"
                    f"Queue: {queue}\r\n"
                    "Position: 1\r\nOriginalPosition: 1\r\nHoldTime: 199"
                ),
            )
            yield (
                t,
                f"Event: QueueCallerLeave\r\nPrivilege: agent,all\r\n{caller}\r\nQueue: {queue}",
            )
        else:
            leg = _leg(load, i, a)
            member = (
                f"Queue: {queue}\r\nInterface: PJSIP/{10000 + a}\r\nMemberName: Temsilci {a:04d}"
            )
            dest = leg.replace("Channel:", "DestChannel:").replace(
                "\r\nUniqueid:", "\r\nDestUniqueid:"
            )
            yield t, f"Event: Hangup\r\nPrivilege: call,all\r\n{leg}\r\nCause: 16"
            yield (
                t,
                (
                    f"Event: AgentComplete\r\nPrivilege: agent,all\r\n{caller}\r\n{dest}\r\n"
                    f"{member}\r\n"
                    "HoldTime: 19\r\nTalkTime: 178\r\nReason: agent"
                ),
            )
            yield t, _member("QueueMemberStatus", queue, a, t)
        yield t, f"Event: Hangup\r\nPrivilege: call,all\r\n{caller}\r\nCause: 16"


def frames(messages: Iterator[tuple[float, str]], size: int = 65_536) -> Iterator[bytes]:
    """The messages as AMI bytes, in chunks of about ``size`` (as TCP reads deliver them)."""
    buffer: list[bytes] = []
    length = 0
    for _, text in messages:
        data = text.encode("utf-8") + b"\r\n\r\n"
        buffer.append(data)
        length += len(data)
        if length >= size:
            yield b"".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)

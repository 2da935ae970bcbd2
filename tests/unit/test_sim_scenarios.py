"""Each scripted kind of call shows the events that define it, and only those outcomes."""

from __future__ import annotations

import pytest

from callcenter.sim.scenarios import KINDS, play

DEFINING = {
    "answered": ["QueueCallerJoin", "AgentConnect", "AgentComplete:caller"],
    "agent_hangup": ["QueueCallerJoin", "AgentConnect", "AgentComplete:agent"],
    "abandoned": ["QueueCallerJoin", "AgentCalled", "QueueCallerAbandon", "QueueCallerLeave"],
    "ring_noanswer": ["AgentRingNoAnswer", "AgentCalled", "AgentConnect", "AgentComplete:caller"],
    "queue_timeout": ["AgentRingNoAnswer", "QueueCallerAbandon", "QueueCallerLeave"],
    "ivr_to_queue": ["DTMFEnd", "QueueCallerJoin", "AgentConnect", "AgentComplete:caller"],
    "ivr_only": ["DTMFEnd", "DTMFEnd", "UserEvent"],
    "pause_unpause": ["QueueMemberPause", "AgentConnect", "AgentComplete:caller"],
    "transfer": [
        "BlindTransfer",
        "AgentComplete:transfer",
        "QueueCallerJoin",
        "AgentConnect",
        "AgentComplete:caller",
    ],
}


def flow(texts: list[str]) -> list[str]:
    """Event names, AgentComplete with its Reason."""
    out = []
    for text in texts:
        name = text.split("\r\n", 1)[0][7:]
        if name == "AgentComplete":
            name += ":" + text.split("Reason: ", 1)[1].split("\r\n", 1)[0]
        out.append(name)
    return out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_shows_its_defining_events_in_order(kind: str) -> None:
    names = flow(play(kind))
    position = -1
    for wanted in DEFINING[kind]:
        position = names.index(wanted, position + 1)
    # Every channel the call opened is closed again.
    assert names.count("Newchannel") == names.count("Hangup")


def test_transfer_keeps_the_callers_uniqueid() -> None:
    texts = play("transfer")
    joins = [t for t in texts if t.startswith("Event: QueueCallerJoin")]
    uids = {t.split("Uniqueid: ", 1)[1].split("\r\n", 1)[0] for t in joins}
    assert len(joins) == 2 and len(uids) == 1

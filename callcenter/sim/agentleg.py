"""The agent's side of a queue call: the ``Local/10xx@agents`` pair app_queue dials.

``;1`` is the channel app_queue sees (the DestChannel of AgentCalled/AgentConnect), ``;2``
runs the reference dialplan's [agents]: mark the phone RINGING, wait the ring delay (or
``never``), answer, mark INUSE, redirect the customer's phone to talk, and on hangup run
the handler that sets the phone back to NOT_INUSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from callcenter.sim.channels import Channel, local_block
from callcenter.sim.engine import CALL, DIALPLAN, Pbx
from callcenter.sim.members import INUSE, NOT_INUSE, RINGING, Member, set_device_status

if TYPE_CHECKING:
    from callcenter.sim.dialplan import InboundCall

_CALLING_PRES = "CID-CallingPres: 0 (Presentation Allowed, Not Screened)\r\n"


@dataclass(eq=False, slots=True)
class AgentLeg:
    """The two agent channels of one ring attempt."""

    member: Member
    a1: Channel
    a2: Channel
    ring_delay: float | None  # None: the phone never answers


def ring(pbx: Pbx, call: InboundCall, member: Member) -> tuple[AgentLeg, str, str]:
    """Creates the agent pair and runs [agents] up to Wait; returns the leg and two Dest blocks.

    The first block is the ``;1`` snapshot AgentCalled shows (already carrying the caller's
    exten and connected line), the second the earlier one DialBegin shows.
    """
    c1, dev = call.c1, member.device
    ext = dev.ext
    a1_name, a2_name = pbx.ids.local_pair(ext, "agents")
    a1 = pbx.new_channel(a1_name, "agents", ext, call.linkedid, 0)
    a2 = pbx.new_channel(a2_name, "agents", ext, call.linkedid, 4)
    a1.cid_num, a1.cid_name = c1.cid_num, c1.cid_name
    pbx.newexten(a1, 1, "AppQueue", "(Outgoing Line)")
    pbx.chan_event("NewCallerid", a1, _CALLING_PRES)
    inherited = call.inherited()
    pbx.varsets(a1, list(inherited))
    pbx.varset(a1, "DIALEDPEERNUMBER", f"{ext}@agents/n")
    pbx.varset(a2, "DIALEDPEERNUMBER", f"{ext}@agents/n")
    pbx.varsets(a2, list(inherited))
    a2.cid_num, a2.cid_name = c1.cid_num, c1.cid_name
    a2.conn_num, a2.conn_name = c1.cid_num, c1.cid_name
    pbx.chan_event("NewCallerid", a2, _CALLING_PRES)
    pbx.chan_event("NewConnectedLine", a2)
    pbx.emit("LocalBridge", CALL, local_block(a1, a2, "agents", ext, False))
    dial_dest = a1.block("Dest")
    a1.exten = c1.exten
    a1.conn_num, a1.conn_name = c1.cid_num, c1.cid_name
    called_dest = a1.block("Dest")
    leg = AgentLeg(member, a1, a2, None)
    return leg, called_dest, dial_dest


def run_agent_dialplan(pbx: Pbx, call: InboundCall, leg: AgentLeg, label: str) -> None:
    """[agents] from NoOp to the ring Wait; ``label`` is the RD value (seconds|never|rand)."""
    a2, ext = leg.a2, leg.member.device.ext
    c1 = call.c1
    pbx.newexten(a2, 1, "NoOp", f"Agent {ext} offered {c1.callerid} queue=")
    handler = f"agent-hangup,s,1({ext})"
    pbx.newexten(a2, 2, "Set", f"CHANNEL(hangup_handler_push)={handler}")
    pbx.chan_event("HangupHandlerPush", a2, f"Handler: {handler}\r\n", DIALPLAN)
    pbx.newexten(a2, 3, "Set", f"DEVICE_STATE(Custom:{ext})=RINGING")
    set_device_status(pbx, leg.member.device, RINGING)
    pbx.newexten(a2, 4, "Set", f"RD={label}")
    pbx.varset(a2, "RD", label)
    never = label == "never"
    pbx.newexten(a2, 5, "GotoIf", f"{int(never)}?never")
    if never:
        pbx.newexten(a2, 16, "Wait", "3600")
        return
    lo, hi = int(pbx.globals.get("RD_MIN", "1")), int(pbx.globals.get("RD_MAX", "4"))
    rand = pbx.rng.randint(lo, hi)  # RAND() is evaluated even when ExecIf is false
    if label == "rand":
        pbx.newexten(a2, 6, "ExecIf", f"1?Set(RD={rand})")
        pbx.varset(a2, "RD", rand)
        leg.ring_delay = float(rand)
    else:
        pbx.newexten(a2, 6, "ExecIf", f"0?Set(RD={rand})")
        try:
            leg.ring_delay = float(label)
        except ValueError:
            leg.ring_delay = float(rand)
    pbx.newexten(a2, 7, "Wait", label if label != "rand" else str(rand))


def answer(pbx: Pbx, leg: AgentLeg) -> None:
    """The agent picks up: both halves go Up (before app_queue's DialEnd)."""
    a1, a2 = leg.a1, leg.a2
    pbx.newexten(a2, 8, "Answer", ",i")
    pbx.newstate(a2, 6)
    pbx.newstate(a1, 6)
    pbx.newexten(a1, 1, "AppQueue", "(Outgoing Line)")
    pbx.chan_event("NewConnectedLine", a1)


def mark_in_use(pbx: Pbx, leg: AgentLeg) -> None:
    """``Set(DEVICE_STATE(Custom:10xx)=INUSE)`` after the bridge is up."""
    set_device_status(pbx, leg.member.device, INUSE)


def hangup_handler(pbx: Pbx, leg: AgentLeg, *, completed: bool) -> None:
    """``;2``'s hangup handler: the phone goes back to NOT_INUSE (QueueMemberStatus 1).

    ``completed`` marks the end of an answered call: the member's CallsTaken and the
    phone's LastCall (which starts the wrap-up) are updated first, as app_queue does.
    """
    a2, dev = leg.a2, leg.member.device
    ext = dev.ext
    pbx.soft_hangup(a2)
    pbx.chan_event("HangupHandlerRun", a2, f"Handler: agent-hangup,s,1({ext})\r\n", DIALPLAN)
    pbx.varsets(a2, [("LOCAL(ARG1)", ext), ("LOCAL(ARGC)", 1)])
    pbx.devstate(f"Local/{ext}@agents", "NOT_INUSE")
    a2.goto("agent-hangup", "s", 1)
    pbx.newexten(a2, 1, "Set", f"DEVICE_STATE(Custom:{ext})=NOT_INUSE")
    if completed:
        leg.member.calls_taken += 1
        dev.last_call = int(pbx.now_epoch())
    leg.member.in_call = False
    set_device_status(pbx, dev, NOT_INUSE)
    pbx.newexten(a2, 2, "Return")
    pbx.varsets(a2, [("ARGC", ""), ("ARG1", ""), ("GOSUB_RETVAL", "")])


def hangup_a2(pbx: Pbx, leg: AgentLeg, *, answered: bool, cause: int) -> None:
    """``;2``'s CDR and Hangup after the handler ran."""
    a2 = leg.a2
    pbx.cdr(
        a2,
        dest_channel="",
        disposition="ANSWERED" if answered else "FAILED",
        answer=a2.answered,
    )
    pbx.hangup(a2, cause)
    pbx.devstate(f"Local/{leg.member.device.ext}@agents", "NOT_INUSE")

"""Agents' phones and queue members: device state, pauses, log-in and log-off.

A :class:`Device` is one agent's phone (``Local/1001@agents/n``, state ``Custom:1001``),
shared by every queue the agent belongs to; a :class:`Member` is its membership of one
queue. With Local members app_queue learns the status only from the state interface, so
every device change produces one QueueMemberStatus per queue the agent is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callcenter.sim.engine import AGENT

if TYPE_CHECKING:
    from callcenter.sim.engine import Pbx
    from callcenter.sim.queue import Queue

NOT_INUSE, INUSE, RINGING = 1, 2, 6
DEVSTATE = {NOT_INUSE: "NOT_INUSE", INUSE: "INUSE", RINGING: "RINGING"}


@dataclass(eq=False, slots=True)
class Device:
    """An agent's phone: its status and when it last finished a call (shared_lastcall)."""

    ext: str
    interface: str
    state_interface: str
    status: int = NOT_INUSE
    last_call: int = 0  # whole epoch seconds, as app_queue keeps it
    members: list[Member] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Member:
    """A device's membership of one queue."""

    queue: Queue
    device: Device
    name: str
    penalty: int
    dynamic: bool
    queuepos: int  # order of joining the queue: the position rrmemory rotates over
    login_time: int
    paused: bool = False
    reason: str = ""
    last_pause: int = 0
    calls_taken: int = 0
    in_call: bool = False

    @property
    def interface(self) -> str:
        """The member interface (``Local/1001@agents/n``)."""
        return self.device.interface

    def body(self) -> str:
        """The QueueMemberStatus/Added/Removed/Pause body (MemberName/Interface layout)."""
        d = self.device
        return (
            f"Queue: {self.queue.name}\r\n"
            f"MemberName: {self.name}\r\n"
            f"Interface: {d.interface}\r\n"
            f"StateInterface: {d.state_interface}\r\n"
            f"Membership: {'dynamic' if self.dynamic else 'static'}\r\n"
            f"Penalty: {self.penalty}\r\n"
            f"CallsTaken: {self.calls_taken}\r\n"
            f"LastCall: {d.last_call}\r\n"
            f"LastPause: {self.last_pause}\r\n"
            f"LoginTime: {self.login_time}\r\n"
            f"InCall: {int(self.in_call)}\r\n"
            f"Status: {d.status}\r\n"
            f"Paused: {int(self.paused)}\r\n"
            f"PausedReason: {self.reason}\r\n"
            "Ringinuse: 0\r\n"
            "Wrapuptime: 0\r\n"
        )

    def list_body(self) -> str:
        """The QueueStatus ``QueueMember`` body (Name/Location layout, no Ringinuse)."""
        d = self.device
        return (
            f"Queue: {self.queue.name}\r\n"
            f"Name: {self.name}\r\n"
            f"Location: {d.interface}\r\n"
            f"StateInterface: {d.state_interface}\r\n"
            f"Membership: {'dynamic' if self.dynamic else 'static'}\r\n"
            f"Penalty: {self.penalty}\r\n"
            f"CallsTaken: {self.calls_taken}\r\n"
            f"LastCall: {d.last_call}\r\n"
            f"LastPause: {self.last_pause}\r\n"
            f"LoginTime: {self.login_time}\r\n"
            f"InCall: {int(self.in_call)}\r\n"
            f"Status: {d.status}\r\n"
            f"Paused: {int(self.paused)}\r\n"
            f"PausedReason: {self.reason}\r\n"
            "Wrapuptime: 0\r\n"
        )

    def free(self, now: float) -> bool:
        """Whether app_queue would ring this member now (ringinuse=no, wrap-up over)."""
        d = self.device
        # time(NULL) - wrapuptime < lastcall means "still wrapping up" (whole seconds).
        return (
            not self.paused
            and d.status == NOT_INUSE
            and int(now) - self.queue.config.wrapuptime >= d.last_call
        )


def set_device_status(pbx: Pbx, device: Device, status: int) -> None:
    """Changes a device's state: DeviceStateChange, then QueueMemberStatus per queue."""
    device.status = status
    pbx.devstate(device.state_interface, DEVSTATE[status])
    # app_queue walks its queues newest first (the recordings show sosyal-yardim, genel).
    members = device.members[::-1]
    for member in members:
        pbx.emit("QueueMemberStatus", AGENT, member.body())
    for member in members:
        queue = member.queue
        avail = any(m.device.status == NOT_INUSE and not m.paused for m in queue.members)
        pbx.devstate(f"Queue:{queue.name}_avail", "NOT_INUSE" if avail else "INUSE")


def device_for(pbx: Pbx, interface: str, state_interface: str | None = None) -> Device:
    """The device behind a member interface, created on first use."""
    device = pbx.devices.get(interface)
    if device is None:
        ext = interface.split("/", 1)[-1].split("@", 1)[0]
        device = Device(ext, interface, state_interface or f"Custom:{ext}")
        pbx.devices[interface] = device
    return device


def add_member(
    pbx: Pbx,
    queue: Queue,
    interface: str,
    name: str | None,
    *,
    penalty: int = 0,
    paused: bool = False,
    reason: str = "",
    state_interface: str | None = None,
    dynamic: bool = True,
    emit: bool = True,
) -> Member | None:
    """Adds a member to a queue (QueueAdd); None if it is already there."""
    if any(m.interface == interface for m in queue.members):
        return None
    device = device_for(pbx, interface, state_interface)
    now = int(pbx.now_epoch())
    member = Member(
        queue,
        device,
        name or interface,
        penalty,
        dynamic,
        queuepos=len(queue.members),
        login_time=now,
        paused=paused,
        reason=reason if paused else "",
        last_pause=now if paused else 0,
    )
    queue.members.append(member)
    queue.penalty_members += penalty != 0
    device.members.append(member)
    if emit:
        pbx.emit("QueueMemberAdded", AGENT, member.body())
        if paused:
            pbx.devstate(f"Queue:{queue.name}_pause_{interface}", "INUSE")
    return member


def remove_member(pbx: Pbx, queue: Queue, interface: str) -> bool:
    """Removes a member from a queue (QueueRemove); False if it is not there."""
    member = next((m for m in queue.members if m.interface == interface), None)
    if member is None:
        return False
    queue.members.remove(member)
    queue.penalty_members -= member.penalty != 0
    member.device.members.remove(member)
    for pos, other in enumerate(queue.members):
        other.queuepos = pos
    pbx.emit("QueueMemberRemoved", AGENT, member.body())
    return True


def pause_members(
    pbx: Pbx, interface: str, paused: bool, queue: str | None, reason: str
) -> list[Member]:
    """Pauses or unpauses an interface in one queue or all its queues (QueuePause)."""
    device = pbx.devices.get(interface)
    found = device.members[::-1] if device else []  # newest queue first, as recorded
    targets = [m for m in found if queue is None or m.queue.name == queue]
    now = int(pbx.now_epoch())
    for member in targets:
        member.paused = paused
        member.reason = reason if paused else ""
        if paused:
            member.last_pause = now
        pbx.devstate(
            f"Queue:{member.queue.name}_pause_{interface}", "INUSE" if paused else "NOT_INUSE"
        )
        pbx.emit("QueueMemberPause", AGENT, member.body())
    return targets

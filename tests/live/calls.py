"""Calls on a live PBX, driven over AMI: a citizen on a Local channel and agents' Local phones.

``Caller.dial`` originates ``Local/cust@harness-caller`` into ``[incoming]`` (the shipped
dialplan). Its ``;1`` half is the call the PBX sees (the IVR, the queue); its ``;2`` half is the
citizen's phone. ``press`` sends each key (a DTMF frame, as the dialplan's SendDTMF does, via
AMI PlayDTMF on the phone half) when the IVR is listening: after Asterisk reports a command that
reads keys (``AGIExecStart`` of STREAM FILE with escape digits or WAIT FOR DIGIT), because
res_agi drops frames that arrive between commands.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field

from tests.live.ami import AmiDriver, Message

_numbers = itertools.count(1)


def next_number() -> str:
    """A distinct Turkish mobile number for each call of the run."""
    return f"0532{next(_numbers) + 7000000:07d}"


def _reads_keys(event: Message) -> bool:
    command = event.get("Command", "")
    if command.startswith("WAIT FOR DIGIT"):
        return True
    return command.startswith(("STREAM FILE", "SAY ")) and not command.rstrip().endswith('""')


@dataclass
class Caller:
    """One citizen's call; ``channel`` is the PBX side (``;1``), ``linkedid`` the call's id."""

    ami: AmiDriver = field(repr=False)
    number: str
    name: str
    channel: str = ""
    phone: str = ""
    linkedid: str = ""
    label: str = ""
    _since: int = 0
    keys: list[str] = field(default_factory=list)

    @classmethod
    async def dial(
        cls, ami: AmiDriver, number: str | None = None, name: str = "Vatandaş", label: str = ""
    ) -> Caller:
        """Places the call into ``[incoming]`` and waits until the PBX has it."""
        number = next_number() if number is None else number
        caller = cls(ami, number, name, label=label)
        since = ami.mark()
        callerid = f'"{name}" <{number}>'
        reply = await ami.action(
            "Originate",
            Channel="Local/cust@harness-caller",
            Context="incoming",
            Exten="s",
            Priority="1",
            CallerID=callerid,
            Async="true",
            Timeout="10000",
        )
        assert reply.get("Response") == "Success", reply
        response = await ami.wait_for(
            lambda e: (
                e.get("Event") == "OriginateResponse" and e.get("ActionID") == reply["_ActionID"]
            ),
            15,
            since,
        )
        assert response.get("Response") == "Success", response
        caller.channel = response["Channel"]
        caller.phone = caller.channel[:-1] + "2"
        caller.linkedid = response["Uniqueid"]
        caller._since = since
        return caller

    def mine(self, event: Message) -> bool:
        """True for an event of this call's PBX-side channel."""
        return event.get("Channel") == self.channel

    async def press(self, digits: str, within: float = 40.0) -> None:
        """Presses keys one by one, each when the IVR is reading keys."""
        for digit in digits:
            event = await self.ami.wait_for(
                lambda e: e.get("Event") == "AGIExecStart" and self.mine(e) and _reads_keys(e),
                within,
                self._since,
            )
            self._since = self.ami.events.index(event, self._since) + 1
            reply = await self.ami.action(
                "PlayDTMF", Channel=self.phone, Digit=digit, Duration="120"
            )
            assert reply.get("Response") == "Success", reply
            self.keys.append(digit)

    async def wait_prompt(self, sound: str, within: float = 40.0) -> None:
        """Waits until the IVR starts playing ``sound`` on this call."""
        # The IVR quotes every argument: STREAM FILE "callcenter/main-menu" "0123456789*#".
        played = re.compile(rf'^STREAM FILE "?{re.escape(sound)}"?(\s|$)')
        event = await self.ami.wait_for(
            lambda e: (
                e.get("Event") == "AGIExecStart"
                and self.mine(e)
                and played.match(e.get("Command", "")) is not None
            ),
            within,
            self._since,
        )
        # The next key may interrupt this very prompt.
        self._since = self.ami.events.index(event, self._since)

    async def wait_event(self, name: str, within: float = 60.0, **match: str) -> Message:
        """The next event ``name`` of this call's channel (with the given headers)."""
        return await self.ami.wait_for(
            lambda e: (
                e.get("Event") == name
                and self.mine(e)
                and all(e.get(k) == v for k, v in match.items())
            ),
            within,
            self._since,
        )

    async def wait_connected(self, within: float = 60.0) -> Message:
        """Waits until an agent answers; returns the AgentConnect event."""
        return await self.wait_event("AgentConnect", within)

    async def hang_up(self) -> None:
        """The citizen hangs up (their phone half)."""
        await self.ami.action("Hangup", Channel=self.phone)

    async def wait_ended(self, within: float = 90.0) -> None:
        """Waits until the PBX side of the call has hung up."""
        await self.ami.wait_for(
            lambda e: e.get("Event") == "Hangup" and self.mine(e), within, self._since
        )


async def set_global(ami: AmiDriver, name: str, value: str) -> None:
    """Sets a dialplan global (the Local agents' knobs: RD_9XXX, TALK_9XXX)."""
    reply = await ami.action("Setvar", Variable=name, Value=value)
    assert reply.get("Response") == "Success", reply


async def add_local_agent(ami: AmiDriver, ext: str, name: str, queues: list[str]) -> str:
    """Adds ``Local/<ext>@harness-agent/n`` (state ``Custom:<ext>``) to queues; its interface."""
    interface = f"Local/{ext}@harness-agent/n"
    await ami.action("Setvar", Variable=f"DEVICE_STATE(Custom:{ext})", Value="NOT_INUSE")
    for queue in queues:
        reply = await ami.action(
            "QueueAdd",
            Queue=queue,
            Interface=interface,
            MemberName=name,
            StateInterface=f"Custom:{ext}",
            Penalty="0",
        )
        assert reply.get("Response") == "Success", reply
    return interface


async def remove_local_agents(ami: AmiDriver) -> None:
    """Removes every dynamic member (the Local agents tests added) from every queue."""
    for member in await ami.list_action("QueueStatus"):
        if member.get("Event") == "QueueMember" and member.get("Membership") == "dynamic":
            reply = await ami.action(
                "QueueRemove", Queue=member["Queue"], Interface=member["Location"]
            )
            assert reply.get("Response") == "Success", reply


async def pause(ami: AmiDriver, interface: str, paused: bool, reason: str = "") -> None:
    """Pauses or unpauses a member in every queue, with a reason."""
    headers = {"Interface": interface, "Paused": "true" if paused else "false"}
    if reason:
        headers["Reason"] = reason
    reply = await ami.action("QueuePause", **headers)
    assert reply.get("Response") == "Success", reply


async def gather(*aws: object) -> list[object]:
    """Runs scenario coroutines together; the first failure fails the run."""
    return list(await asyncio.gather(*aws))  # type: ignore[call-overload]

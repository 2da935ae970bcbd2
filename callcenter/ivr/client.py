"""Asterisk's side of a FastAGI session, for the simulator and the tests.

``run_agi_session`` connects like Asterisk's ``AGI(agi://host:port/route,args)``, sends the
``agi_*`` environment, and answers every command the way Asterisk does, with a caller who
types the given entries: each entry is the keys typed for one question (``"2"``,
``"15062026"``; ``""`` stays silent until the question times out). The first key of an entry
interrupts the prompt being played, the others answer WAIT FOR DIGIT. When the entries run
out and the IVR still listens, or after ``hangup_after`` commands, the caller hangs up:
``HANGUP``, then ``511`` to every further command, as Asterisk does.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Iterable, Mapping

ENV_DEFAULTS = {
    "agi_network": "yes",
    "agi_channel": "PJSIP/trunk-00000001",
    "agi_language": "tr",
    "agi_type": "PJSIP",
    "agi_uniqueid": "1795884499.0",
    "agi_version": "22.10.1",
    "agi_callerid": "05321234567",
    "agi_calleridname": "Ayşe Yılmaz",
    "agi_callingpres": "0",
    "agi_callingani2": "0",
    "agi_callington": "0",
    "agi_callingtns": "0",
    "agi_dnid": "4442000",
    "agi_rdnis": "unknown",
    "agi_context": "incoming",
    "agi_extension": "4442000",
    "agi_priority": "4",
    "agi_enhanced": "0.0",
    "agi_accountcode": "",
    "agi_threadid": "140000000000000",
}
_LISTENING = ("STREAM FILE", "SAY NUMBER", "SAY DIGITS")
_DEAD = b"511 Command Not Permitted on a dead channel or intercepted\n"


def agi_environment(
    route: str, args: Iterable[str] = (), host: str = "callcenter", **values: str
) -> dict[str, str]:
    """An environment block as Asterisk 22 sends it for ``AGI(agi://host:4573/route,args)``."""
    env = {
        **ENV_DEFAULTS,
        "agi_network_script": route,
        "agi_request": f"agi://{host}:4573/{route}",
    }
    env.update({f"agi_{k}": v for k, v in values.items()})
    for i, arg in enumerate(args, start=1):
        env[f"agi_arg_{i}"] = arg
    return env


class _Caller:
    """Types the entries as the IVR listens, and knows when it has nothing more to say."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = [list(entry) for entry in entries]
        self.current: list[str] | None = None  # keys left in the entry being typed
        self.silent = False  # the entry is silence: it lasts until a wait times out

    def _next_entry(self) -> bool:
        if not self.entries:
            return False
        self.current = self.entries.pop(0)
        self.silent = not self.current
        return True

    def on_prompt(self) -> str | None:
        """A key interrupting a prompt, "" to let it play, None when the caller hangs up."""
        if self.current is not None and not self.current and not self.silent:
            self.current = None  # the last entry is complete: this prompt is a new question
        if self.current is None and not self._next_entry():
            return None
        assert self.current is not None
        return self.current.pop(0) if self.current else ""

    def on_wait(self) -> str | None:
        """A key for WAIT FOR DIGIT, "" for a timeout, None when the caller hangs up."""
        if self.current is None:
            if not self._next_entry():
                return None
            assert self.current is not None
        if self.current:
            return self.current.pop(0)
        self.current = None  # silence ends the entry
        return ""


def _answer(command: str, caller: _Caller) -> bytes | None:
    """Asterisk's answer to one command; None when the caller hangs up instead."""
    words = shlex.split(command)
    verb = " ".join(words[:2]).upper()
    if verb in _LISTENING or verb == "WAIT FOR":
        escape = words[3] if verb in _LISTENING and len(words) > 3 else ""
        if verb == "WAIT FOR":
            key = caller.on_wait()
        elif escape:
            key = caller.on_prompt()
        else:
            key = ""
        if key is None:
            return None
        code = ord(key) if key else 0
        extra = " endpos=8000" if verb == "STREAM FILE" else ""
        return f"200 result={code}{extra}\n".encode()
    if verb == "SET VARIABLE":
        return b"200 result=1\n"
    if words[:1] in (["EXEC"], ["ANSWER"], ["VERBOSE"]):
        return b"200 result=0\n"
    if words[:1] == ["HANGUP"]:
        return b"200 result=1\n"
    return b"510 Invalid or unknown command\n"


async def run_agi_session(
    host: str,
    port: int,
    env: Mapping[str, str],
    digits: Iterable[str],
    *,
    hangup_after: int | None = None,
    limit_s: float = 10.0,
    local_addr: tuple[str, int] | None = None,
) -> list[str]:
    """Plays Asterisk's side of one FastAGI session; returns the commands the IVR sent."""
    caller = _Caller(digits)
    commands: list[str] = []
    async with asyncio.timeout(limit_s):
        reader, writer = await asyncio.open_connection(host, port, local_addr=local_addr)
        try:
            block = "".join(f"{k}: {v}\n" for k, v in env.items()) + "\n"
            writer.write(block.encode("utf-8"))
            await writer.drain()
            hung_up = False
            while line := await reader.readline():
                command = line.decode("utf-8").rstrip("\n")
                commands.append(command)
                if hung_up:
                    writer.write(_DEAD)
                else:
                    answer = None
                    if hangup_after is None or len(commands) <= hangup_after:
                        answer = _answer(command, caller)
                    if answer is None:
                        hung_up = True
                        writer.write(b"HANGUP\n200 result=-1 endpos=0\n")
                    else:
                        writer.write(answer)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
    return commands


def variables_set(commands: Iterable[str]) -> dict[str, str]:
    """The channel variables an IVR session set, last value winning (from its commands)."""
    found: dict[str, str] = {}
    for command in commands:
        if command.startswith("SET VARIABLE "):
            words = shlex.split(command)
            if len(words) >= 4:
                found[words[2]] = words[3]
    return found


def user_events(commands: Iterable[str]) -> list[dict[str, str]]:
    """The UserEvents an IVR session raised, as header dictionaries."""
    events = []
    for command in commands:
        if command.startswith("EXEC UserEvent "):
            name, *pairs = shlex.split(command)[2].split(",")
            headers = {"UserEvent": name}
            for pair in pairs:
                key, _, value = pair.partition(":")
                headers[key.strip()] = value.strip()
            events.append(headers)
    return events

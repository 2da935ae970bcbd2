"""The AGI protocol as Asterisk speaks it over FastAGI: the environment block and commands.

Asterisk opens a TCP connection, sends ``agi_key: value`` lines ended by a blank line, then
answers each command line with ``200 result=<n> [(data)] [key=value]``. It sends a bare
``HANGUP`` line when the caller hangs up (and ``511`` to commands on a dead channel).

Not panoramisk's ``fast_agi``: its header loop reads until ``\\n\\n`` with no timeout and, on
a peer that sends half a header and disconnects, loops on ``read() == b""`` without ever
yielding (100 % CPU, the whole event loop stuck); its replies have no timeout, an empty or
garbage line raises inside its parser, and ``HANGUP`` is not told apart from an answer. Here
the header is read with ``readuntil(b"\\n\\n")`` under a timeout and a size limit, every reply
under a timeout, and every way a session can break ends in one of two exceptions.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

ESCAPE_ALL = "0123456789*#"
HEADER_END = b"\n\n"

_REPLY = re.compile(r"^(\d{3})(?:[ -](.*))?$")
_RESULT = re.compile(r"^result=(\S*)\s*(?:\((.*?)\))?\s*(.*)$")


class AgiHangup(Exception):
    """The caller hung up or Asterisk closed the connection: end the session quietly."""


class AgiError(Exception):
    """The peer said something that is not AGI, or refused a command of ours."""


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One parsed ``200 result=…`` answer."""

    code: int
    result: str  # "" for "result= (timeout)"
    data: str = ""  # the parenthesised part: "timeout", "dtmf"…
    extra: str = ""  # the rest: "endpos=1234"


def parse_reply(line: str) -> AgiReply:
    """Parses an answer line; raises AgiError on anything that is not one."""
    match = _REPLY.match(line)
    if match is None:
        raise AgiError(f"not an AGI answer: {line[:80]!r}")
    code, rest = int(match.group(1)), match.group(2) or ""
    result = _RESULT.match(rest)
    if result is None:
        return AgiReply(code, "", "", rest)
    return AgiReply(code, result.group(1), result.group(2) or "", result.group(3))


def parse_env(block: bytes) -> dict[str, str]:
    """Parses the environment block (``agi_key: value`` lines) into a dictionary."""
    env: dict[str, str] = {}
    for raw in block.decode("utf-8", "replace").split("\n"):
        key, sep, value = raw.partition(":")
        if sep and key.startswith("agi_"):
            env[key.strip()] = value.strip()
    return env


def quote(value: str) -> str:
    """One AGI command argument: double-quoted, backslash-escaped, on one line."""
    flat = " ".join(str(value).splitlines())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def digit_of(result: str) -> str:
    """The key in a STREAM FILE / WAIT FOR DIGIT result (an ASCII code), "" for none."""
    if not result.isdigit() or result == "0":
        return ""
    char = chr(int(result))
    return char if char in ESCAPE_ALL else ""


class AgiChannel:
    """One FastAGI session's channel: sends commands, reads and checks their answers."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        reply_timeout: float,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.env = env
        self.reply_timeout = reply_timeout
        self.hung_up = False
        self.commands = 0

    async def command(self, line: str, limit_s: float | None = None) -> AgiReply:
        """Sends one command and returns its ``200`` answer; raises AgiHangup or AgiError."""
        if self.hung_up:
            raise AgiHangup("the caller hung up")
        self.commands += 1
        try:
            self.writer.write(line.encode("utf-8") + b"\n")
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise AgiHangup(f"connection lost: {exc}") from None
        async with asyncio.timeout(limit_s if limit_s is not None else self.reply_timeout):
            reply = await self._read_reply()
        if self.hung_up:
            raise AgiHangup("the caller hung up")
        return reply

    async def _read_line(self) -> str:
        try:
            raw = await self.reader.readline()
        except (ConnectionError, OSError) as exc:
            raise AgiHangup(f"connection lost: {exc}") from None
        except ValueError as exc:  # a line longer than the stream's limit
            raise AgiError(f"answer too long: {exc}") from None
        if not raw.endswith(b"\n"):
            raise AgiHangup("Asterisk closed the connection")
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    async def _read_reply(self) -> AgiReply:
        while True:
            line = await self._read_line()
            if line == "HANGUP":
                # Sent when the channel hangs up; the answer to our command still follows.
                self.hung_up = True
                continue
            if line.startswith("520-"):
                usage = [line]
                while not line.startswith("520 "):
                    line = await self._read_line()
                    usage.append(line)
                raise AgiError("Asterisk refused a command: " + " | ".join(usage))
            reply = parse_reply(line)
            if reply.code == 100:  # "100 result=0 Trying..." precedes the real answer
                continue
            if reply.code == 511:
                raise AgiHangup("the channel is dead")
            if reply.code != 200:
                raise AgiError(f"Asterisk answered {line[:80]!r}")
            return reply

    # ---- the commands the IVR uses -------------------------------------------------------

    async def stream_file(self, sound: str, escape: str = "") -> str:
        """Plays a sound; returns the key that interrupted it ("" if none or not playable)."""
        reply = await self.command(f"STREAM FILE {quote(sound)} {quote(escape)}")
        # -1 means the file could not be played; a hang-up shows in the next command.
        return digit_of(reply.result)

    async def say_number(self, number: int, escape: str = "") -> str:
        """Says a number; returns the key that interrupted it."""
        reply = await self.command(f"SAY NUMBER {int(number)} {quote(escape)}")
        return digit_of(reply.result)

    async def say_digits(self, digits: str, escape: str = "") -> str:
        """Says digits one by one; returns the key that interrupted it."""
        clean = "".join(ch for ch in digits if ch.isdigit()) or "0"
        reply = await self.command(f"SAY DIGITS {clean} {quote(escape)}")
        return digit_of(reply.result)

    async def wait_for_digit(self, timeout_s: float) -> str:
        """Waits for one key; "" when the time runs out."""
        ms = max(1, int(timeout_s * 1000))
        reply = await self.command(f"WAIT FOR DIGIT {ms}", limit_s=timeout_s + self.reply_timeout)
        if reply.result == "-1":
            raise AgiHangup("the caller hung up while we waited for a key")
        return digit_of(reply.result)

    async def set_variable(self, name: str, value: str) -> None:
        """Sets a channel variable (or a writable function such as CHANNEL(language))."""
        await self.command(f"SET VARIABLE {name} {quote(value)}")

    async def user_event(self, name: str, headers: dict[str, str]) -> None:
        """Raises an AMI UserEvent on the channel (the call tracker reads its Result)."""
        body = ",".join(f"{k}: {v.replace(',', ' ')}" for k, v in headers.items())
        await self.command(f"EXEC UserEvent {quote(name + ',' + body)}")

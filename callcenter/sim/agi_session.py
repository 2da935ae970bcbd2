"""Asterisk's side of one call's FastAGI session, on simulated time.

The session sends the ``agi_*`` environment and answers each command as Asterisk 22 does
(``200 result=…``; ``HANGUP`` then ``511`` once the caller is gone), emitting on AMI what
Asterisk emits for it: VarSet for SET VARIABLE, DTMFBegin/DTMFEnd for every key the caller
presses, UserEvent for EXEC UserEvent.

Time: each command takes the simulated seconds the caller model gives it (a prompt's length,
the keys typed, a WAIT FOR DIGIT timeout), added to the call's own IVR clock; its answer and
its events wait for the simulator's clock to get there (a scheduler timer). The wall time the
service spends therefore only shows when it is longer than what the caller is hearing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from callcenter.ivr.client import agi_environment, user_events
from callcenter.sim.engine import DTMF, USER
from callcenter.sim.ivr_caller import IvrCaller, Reaction, endpos, say_seconds

if TYPE_CHECKING:
    from callcenter.sim.agi_ivr import AgiIvr, IvrRecord
    from callcenter.sim.dialplan import InboundCall

log = logging.getLogger(__name__)

_DEAD = b"511 Command Not Permitted on a dead channel or intercepted\n"
_UNKNOWN = b"510 Invalid or unknown command\n"
_DTMF_S = 0.1  # a key's tone, DTMFBegin to DTMFEnd


class AgiSession:
    """One call's AGI(): the socket to the service, the caller's keys, the AMI events."""

    def __init__(
        self, ivr: AgiIvr, call: InboundCall, record: IvrRecord, caller: IvrCaller
    ) -> None:
        self.ivr = ivr
        self.pbx = ivr.pbx
        self.call = call
        self.record = record
        self.caller = caller
        self.clock = self.pbx.sched.now  # the call's own IVR clock (simulated seconds)
        self.pending: list[str] | None = None  # keys of the entry still to type
        self.told_hangup = False
        self.finished = False
        self.waiting = False  # for the simulator's clock (not for the service)

    # ---- the connection -------------------------------------------------------------------

    async def run(self, host: str, port: int) -> None:
        """Connects, sends the environment, answers until the service ends the session."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.ivr.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            log.warning("AGI to %s:%s failed: %s", host, port, exc)
            self.finish("FAILURE")
            return
        status = "SUCCESS"
        try:
            writer.write(self._environment(host, port))
            await writer.drain()
            while True:
                line = await asyncio.wait_for(reader.readline(), self.ivr.idle_timeout)
                if not line.endswith(b"\n"):
                    break  # the service closed the session: AGI() returns
                writer.write(await self.answer(line.decode("utf-8", "replace").strip()))
                await writer.drain()
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("AGI session of %s broke: %r", self.call.linkedid, exc)
            status = "FAILURE"
        except Exception:
            # A fault of ours must not leave the call stuck in the IVR: Asterisk would go on.
            log.exception("AGI session of %s failed", self.call.linkedid)
            status = "FAILURE"
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        self.finish(status)

    def finish(self, status: str) -> None:
        """The dialplan goes on after AGI() once the call's IVR clock has got there."""
        if self.finished:
            return
        self.finished = True
        self.ivr.sessions.discard(self)
        self.pbx.sched.at(self.clock, self.ivr.after, self.call, self.record, status)
        self.ivr.wake()

    def _environment(self, host: str, port: int) -> bytes:
        call, c1 = self.call, self.call.c1
        env = agi_environment(
            "ivr",
            [call.linkedid],
            host=host,
            request=f"agi://{host}:{port}/ivr",
            channel=c1.name,
            type="Local",
            uniqueid=c1.uniqueid,
            callerid=c1.cid_num or "unknown",
            calleridname=c1.cid_name or "unknown",
            dnid=call.plan.did,
            extension=call.plan.did,
            context=c1.context,
            priority=str(c1.priority),
        )
        return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode("utf-8")

    # ---- commands -------------------------------------------------------------------------

    async def answer(self, command: str) -> bytes:
        """Asterisk's answer to one command, sent once its simulated time has come."""
        if self.told_hangup:
            return _DEAD
        try:
            words = shlex.split(command)
        except ValueError:
            return _UNKNOWN
        verb = " ".join(words[:2]).upper()
        arg = words[2] if len(words) > 2 else ""
        more = words[3:]
        if verb == "STREAM FILE":
            return await self._stream(arg, more[0] if more else "")
        if verb == "GET DATA":
            return await self._get_data(arg, more)
        if verb in ("SAY NUMBER", "SAY DIGITS"):
            return await self._say(verb, arg)
        if verb == "WAIT FOR" and arg.upper() == "DIGIT" and more:
            return await self._wait_for_digit(_int(more[0], 5000))
        if verb == "SET VARIABLE" and more:
            return await self._at(0.0, lambda: self._set(arg, more[0]))
        if verb == "GET VARIABLE":
            value = self.call.c1.variables.get(arg)
            return f"200 result=1 ({value})\n".encode() if value is not None else b"200 result=0\n"
        if words[:1] == ["EXEC"]:
            return await self._at(0.0, lambda: self._exec(command))
        if words[:1] in (["ANSWER"], ["NOOP"]):
            return b"200 result=0\n"
        if words[:1] == ["VERBOSE"]:
            return b"200 result=1\n"
        if words[:1] == ["HANGUP"]:
            return await self._at(0.0, self._hangup_command)
        if verb == "CHANNEL STATUS":
            return b"200 result=6\n"  # Up
        return _UNKNOWN

    async def _stream(self, sound: str, escape: str) -> bytes:
        seconds = self.ivr.menus.seconds(sound, self.caller.language)
        self.record.prompts.append(sound)
        played = f"200 result=0 endpos={endpos(seconds)}\n"
        if not escape:
            return await self._at(seconds, lambda: played.encode())
        self.pending = None  # a new question: what was left of the last entry is dropped
        reaction = self.caller.hear(sound, seconds)
        if reaction is None:
            return await self._at(seconds, lambda: played.encode())
        if reaction.hangup:
            return await self._hang_up(min(reaction.after_s, seconds))
        keys = list(reaction.keys)
        if keys and keys[0] in escape and reaction.after_s < seconds:
            key, self.pending = keys[0], keys[1:]
            reply = f"200 result={ord(key)} endpos={endpos(reaction.after_s)}\n"
            return await self._keys([key], reaction.after_s, reply)
        self.pending = keys  # typed after the prompt, into WAIT FOR DIGIT
        return await self._at(seconds, lambda: played.encode())

    async def _get_data(self, sound: str, args: list[str]) -> bytes:
        seconds = self.ivr.menus.seconds(sound, self.caller.language)
        timeout_s = _int(args[0], 5000) / 1000 if args else 5.0
        limit = _int(args[1], 1024) if len(args) > 1 else 1024
        self.record.prompts.append(sound)
        reaction: Reaction | None = self.caller.hear(sound, seconds)
        if reaction is not None and reaction.hangup:
            return await self._hang_up(min(reaction.after_s, seconds))
        typed = (reaction.keys if reaction else "").split("#", 1)[0][:limit]
        if not typed:
            return await self._at(seconds + timeout_s, lambda: b"200 result= (timeout)\n")
        assert reaction is not None
        return await self._keys(
            list(typed), min(reaction.after_s, seconds), f"200 result={typed}\n"
        )

    async def _say(self, verb: str, value: str) -> bytes:
        return await self._at(say_seconds(verb, value), lambda: b"200 result=0\n")

    async def _wait_for_digit(self, timeout_ms: int) -> bytes:
        if self.pending:
            key = self.pending.pop(0)
            return await self._keys([key], self.caller.key_gap(), f"200 result={ord(key)}\n")
        self.pending = None  # silence ends the entry
        return await self._at(timeout_ms / 1000, lambda: b"200 result=0\n")

    async def _hang_up(self, delay: float) -> bytes:
        def hang_up() -> bytes:
            self.record.end = "caller_hangup"
            self.told_hangup = True
            self.call.give_up()  # the phone hangs up in the IVR: the IVR channel follows
            return f"HANGUP\n200 result=-1 endpos={endpos(delay)}\n".encode()

        return await self._at(delay, hang_up)

    def _hangup_command(self) -> bytes:
        """The IVR hangs the channel up itself: the trunk side goes, the phone follows."""
        self.record.end = "hangup"
        self.told_hangup = True
        self.call.hangup_from_c1()
        return b"200 result=1\n"

    # ---- what Asterisk emits ----------------------------------------------------------------

    def _set(self, name: str, value: str) -> bytes:
        if "(" in name:
            # A dialplan function (CHANNEL(language)): written, but no VarSet event for it.
            if name.upper() == "CHANNEL(LANGUAGE)":
                self.caller.language = value
            return b"200 result=1\n"
        if name == "CC_TICKET":
            self.caller.note_ticket(value)
            self.record.reference = self.record.reference or self.caller.reference
        self.ivr.set_variable(self.call, self.record, name, value)
        return b"200 result=1\n"

    def _exec(self, command: str) -> bytes:
        for headers in user_events([command]):
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            self.pbx.chan_event("UserEvent", self.call.c1, extra, USER)
            if "Result" in headers:
                self.record.results.append(headers["Result"])
        return b"200 result=0\n"

    def _dtmf_begin(self, key: str) -> None:
        if not self.call.ended:
            body = f"Digit: {key}\r\nDirection: Received\r\n"
            self.pbx.chan_event("DTMFBegin", self.call.c1, body, DTMF)

    def _dtmf_end(self, key: str) -> None:
        if not self.call.ended:
            ms = int(_DTMF_S * 1000)
            body = f"Digit: {key}\r\nDurationMs: {ms}\r\nDirection: Received\r\n"
            self.pbx.chan_event("DTMFEnd", self.call.c1, body, DTMF)
            self.record.keys += key

    # ---- simulated time ---------------------------------------------------------------------

    async def _keys(self, keys: list[str], first_s: float, reply: str) -> bytes:
        """Presses keys (the first after ``first_s``, then one a gap), then answers."""
        delay = first_s
        for i, key in enumerate(keys):
            if i:
                delay += self.caller.key_gap()
            at = self.clock + delay
            self.pbx.sched.at(max(self.clock, at - _DTMF_S), self._dtmf_begin, key)
            self.pbx.sched.at(at, self._dtmf_end, key)
        return await self._at(delay, lambda: reply.encode())

    async def _at(self, delay: float, make: Callable[[], bytes]) -> bytes:
        """Waits until the call's IVR clock plus ``delay``, then builds the answer there."""
        self.clock += max(0.0, delay)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def fire() -> None:
            self.waiting = False
            if future.done():
                return  # the session was cancelled meanwhile
            try:
                if self.call.ended and not self.told_hangup:
                    self.told_hangup = True  # hung up elsewhere (an AMI Hangup, say)
                    future.set_result(b"HANGUP\n200 result=-1\n")
                else:
                    future.set_result(_DEAD if self.told_hangup else make())
            except Exception as exc:  # never into the scheduler: the session ends instead
                future.set_exception(exc)

        # Scheduler.at never goes back: an answer already due is sent at once.
        self.pbx.sched.at(self.clock, fire)
        self.waiting = True
        self.ivr.wake()
        return await future


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default

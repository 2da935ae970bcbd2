"""Callbacks the demo plugs into the simulator (dispositions, progress), all optional."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnsweredCallEnd:
    """An answered queue visit just ended: what a simulated agent knows when closing it."""

    linkedid: str
    uniqueid: str
    agent: str  # member name
    interface: str
    queue: str
    caller_number: str
    caller_name: str
    ivr_choice: str | None  # the IVR digit the caller pressed, if any
    category: str | None  # the municipal service category the caller came for
    talk_s: float
    ended_at: float  # epoch seconds (simulated)
    hangup_by: str  # caller, agent, transfer
    # The simulated agent's disposition: a request (ticket) or information given; set by
    # the traffic model when one drives the simulator, else None.
    request: bool | None = None


# The hook's signature: ``on_call_answered_end(linkedid, agent, info)``; it may return an
# awaitable (e.g. an HTTP call closing the call with a disposition), which is run as a task.
CallEndHook = Callable[[str, str, AnsweredCallEnd], Awaitable[None] | None]


@dataclass(slots=True)
class Hooks:
    """The simulator's outward callbacks; every one is optional."""

    on_call_answered_end: CallEndHook | None = None
    decide_request: Callable[[AnsweredCallEnd], bool] | None = None  # the disposition model
    on_call_ended: Callable[[Any], None] | None = None  # gets the InboundCall (progress)
    answered_listeners: list[Callable[[AnsweredCallEnd], None]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def call_answered_end(self, info: AnsweredCallEnd) -> None:
        """Runs the disposition hook; a failure is logged, never raised into the PBX."""
        if self.decide_request is not None:
            info = dataclasses.replace(info, request=self.decide_request(info))
        for listener in self.answered_listeners:
            listener(info)
        hook = self.on_call_answered_end
        if hook is None:
            return
        try:
            result = hook(info.linkedid, info.agent, info)
        except Exception:
            log.exception("on_call_answered_end failed for %s", info.linkedid)
            return
        if result is not None:
            task: asyncio.Task[None] = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    async def drain(self, grace_s: float = 2.0) -> None:
        """Waits a little for disposition tasks still running, then cancels the rest."""
        pending = set(self._tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    def call_ended(self, call: Any) -> None:
        """Tells the progress hook a call's last channel is gone."""
        if self.on_call_ended is not None:
            try:
                self.on_call_ended(call)
            except Exception:
                log.exception("on_call_ended failed")

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("on_call_answered_end task failed", exc_info=task.exception())

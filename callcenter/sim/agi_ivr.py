"""Calls on the IVR line through the service's FastAGI IVR, as Asterisk's ``AGI(agi://…)`` runs it.

When a simulated call reaches the IVR step, :class:`AgiIvr` opens a FastAGI session to the
service over a real socket (:mod:`callcenter.sim.agi_session`) and the simulated caller
(:mod:`callcenter.sim.ivr_caller`) presses the keys. Afterwards the dialplan goes on as the
reference configuration's ``[incoming]`` does (``asterisk_conf/extensions.conf``):
``Queue(${CC_QUEUE})``, a hang-up after self-service, or the general queue when the IVR made
no decision (no ``CC_IVR_END=hangup``, ``CC_QUEUE`` or ``CC_IVR_RESULT``), whatever
``AGISTATUS`` says. Each call's IVR is
logged in :attr:`AgiIvr.records`, to be held against the service's call record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from callcenter.ivr.menu import IvrMenu
from callcenter.sim.agi_session import AgiSession
from callcenter.sim.ivr_caller import CallerMix, IvrCaller, MenuMap
from callcenter.sim.workload import ISTANBUL

if TYPE_CHECKING:
    from callcenter.sim.dialplan import InboundCall
    from callcenter.sim.engine import Pbx

log = logging.getLogger(__name__)

FALLBACK_QUEUE = "genel"  # [globals] FALLBACK_QUEUE of the reference dialplan
ROUTE = "ivr"


@dataclass(slots=True)
class IvrRecord:
    """What the simulator saw of one call's IVR: keys, variables, result and where it went."""

    linkedid: str
    intent: str | None  # what the caller came for (the traffic model's category)
    plan: str  # the caller model's plan: route | agent | hangup
    started_at: float  # epoch seconds (simulated)
    keys: str = ""  # every key pressed, in order
    variables: dict[str, str] = field(default_factory=dict)  # CC_* as set on the channel
    results: list[str] = field(default_factory=list)  # UserEvent Result values
    prompts: list[str] = field(default_factory=list)
    reference: str | None = None  # a ticket reference read out to the caller (digits)
    status: str = ""  # AGISTATUS: SUCCESS | FAILURE | HANGUP
    end: str = ""  # queue | hangup | fallback | caller_hangup
    queue: str | None = None
    ended_at: float | None = None

    @property
    def through_ivr(self) -> bool:
        """Whether the service's IVR decided where the call went (not the fallback)."""
        return self.end not in ("", "fallback")


class AgiIvr:
    """The simulator's FastAGI link: one session per call reaching the IVR, and their log."""

    def __init__(
        self,
        pbx: Pbx,
        menu: IvrMenu,
        address: tuple[str, int],
        rng: random.Random,
        *,
        wake: Callable[[], None] | None = None,
        mix: CallerMix | None = None,
        keep: int = 10_000,
        connect_timeout: float = 5.0,
        idle_timeout: float = 60.0,
    ) -> None:
        self.pbx = pbx
        self.menus = MenuMap(menu)
        # Port 0: the service's IVR is not listening yet; calls meanwhile take the fallback.
        self.address = address
        self.rng = rng
        self.wake = wake or (lambda: None)  # the clock sleeps until its next timer otherwise
        self.mix = mix or CallerMix()
        self.keep = keep
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout  # wall seconds the service may take between commands
        self.records: OrderedDict[str, IvrRecord] = OrderedDict()
        self.references: deque[str] = deque(maxlen=1000)
        self.sessions: set[AgiSession] = set()  # until the dialplan goes on after AGI()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        """AGI sessions in progress."""
        return len(self.sessions)

    @property
    def busy(self) -> int:
        """Sessions waiting for the service rather than for simulated time."""
        # A manual clock (speed=None) advanced only while this is 0 makes every simulated
        # timing independent of how fast the service answers (the timing test does so).
        return sum(1 for session in self.sessions if not session.waiting)

    def start(self, call: InboundCall) -> None:
        """``[incoming]``: Set(CHANNEL(language)=tr), then AGI() to the service."""
        pbx, c1 = self.pbx, call.c1
        host, port = self.address
        # A caller of its own per call, seeded here in simulated-time order, so a seed
        # repeats the same callers however the sessions interleave in wall time.
        rng = random.Random(self.rng.getrandbits(64))
        caller = IvrCaller(
            self.menus,
            self.mix,
            rng,
            intent=call.plan.category,
            reaction_s=call.ivr_delay,
            today=datetime.fromtimestamp(pbx.now_epoch(), ISTANBUL).date(),
            references=self.references,
        )
        record = IvrRecord(call.linkedid, call.plan.category, caller.plan, pbx.now_epoch())
        self.records[call.linkedid] = record
        while len(self.records) > self.keep:
            self.records.popitem(last=False)
        pbx.newexten(c1, 5, "Set", "CHANNEL(language)=tr")
        pbx.newexten(c1, 6, "AGI", f"agi://{host}:{port}/{ROUTE},{call.linkedid}")
        session = AgiSession(self, call, record, caller)
        self.sessions.add(session)
        if not port:
            session.finish("FAILURE")
            return
        task = asyncio.get_running_loop().create_task(
            session.run(host, port), name=f"agi:{call.linkedid}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def after(self, call: InboundCall, record: IvrRecord, status: str) -> None:
        """The AGI returned: Queue(${CC_QUEUE}), hang up, or the fallback queue."""
        pbx, c1 = self.pbx, call.c1
        record.ended_at = pbx.now_epoch()
        if call.ended:
            record.status = "HANGUP"
            record.end = record.end or "caller_hangup"
            return
        record.status = status
        pbx.varset(c1, "AGISTATUS", status)
        # As [incoming] does: the IVR's own decision wins whatever AGISTATUS says; the
        # general queue only when it made none.
        end = c1.variables.get("CC_IVR_END", "")
        chosen = c1.variables.get("CC_QUEUE", "")
        served = c1.variables.get("CC_IVR_RESULT", "")
        pbx.newexten(c1, 5, "GotoIf", f"{int(end == 'hangup')}?bye")
        if end != "hangup":
            pbx.newexten(c1, 6, "GotoIf", f"{int(bool(chosen))}?to-queue,s,1")
        fallback = end != "hangup" and not chosen and not served
        if not fallback and not chosen:
            if end != "hangup":
                pbx.newexten(c1, 7, "GotoIf", "1?served")
                pbx.newexten(c1, 12, "Playback", "callcenter/goodbye")
            pbx.newexten(c1, 13, "Hangup")
            record.end = "hangup"
            call.hangup_from_c1()
            return
        if fallback:
            pbx.newexten(c1, 7, "GotoIf", "0?served")
            pbx.newexten(c1, 8, "NoOp", f"IVR made no decision (AGISTATUS={status}): to a person")
            pbx.newexten(c1, 9, "Set", f"CC_QUEUE={FALLBACK_QUEUE}")
            self.set_variable(call, record, "CC_QUEUE", FALLBACK_QUEUE)
            pbx.newexten(c1, 10, "Set", "CC_IVR_END=fallback")
            self.set_variable(call, record, "CC_IVR_END", "fallback")
            pbx.newexten(c1, 11, "Goto", "to-queue,s,1")
        queue = c1.variables.get("CC_QUEUE") or FALLBACK_QUEUE
        record.end, record.queue = ("fallback" if fallback else "queue"), queue
        c1.goto("to-queue", "s", 1)
        category = c1.variables.get("CC_CATEGORY", "")
        choice = c1.variables.get("CC_IVR_CHOICE", "")
        pbx.newexten(c1, 1, "NoOp", f"Queue {queue} category={category} choice={choice}")
        call.queue_after_ivr(queue)

    def set_variable(self, call: InboundCall, record: IvrRecord, name: str, value: str) -> None:
        """A channel variable set on the IVR channel (VarSet; CC_* are logged)."""
        self.pbx.varset(call.c1, name, value)
        if name.startswith("CC_"):
            record.variables[name] = value

    async def close(self) -> None:
        """Ends the sessions in progress (the simulator is stopping)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(tasks, timeout=5.0)

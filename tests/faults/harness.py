"""What the fault scenarios share: the simulator's own truth per call, a tap on the service's
stream, the comparison of the call log with that truth, and the figures each fault reports.

The truth is what the simulated Asterisk did (every call it finished, with its outcome, wait
and talk as it timed them); the call log is what the service wrote to PostgreSQL. A call is
*touched* by a fault when its life overlaps the fault's gap (simulated time during which the
service could not see the stream): such a call must be logged once and flagged
``reconstructed``; every other call must be logged once, unflagged and exact. A call whose
whole life lies inside a gap was never visible to the service and is counted apart.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.model import Anomaly, CallEnded, Effect
from callcenter.sim import Simulator
from callcenter.sim.actions import get

ROOT = Path(__file__).resolve().parent.parent.parent
# Seconds a per-call figure may differ from the simulator's: its events carry microsecond
# timestamps, so anything beyond rounding is a real difference.
TOLERANCE_S = 0.01
# The simulator's QUEUESTATUS-derived results, in the service's outcome vocabulary.
_SIM_OUTCOME = {
    "leaveempty": "exit_empty",
    "leaveunavail": "exit_empty",
    "joinempty": "join_empty",
    "joinunavail": "join_empty",
}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], limit_s: float, what: str
) -> float:
    """Polls ``predicate`` until true and returns the seconds it took; fails after ``limit_s``."""
    started = time.monotonic()
    deadline = started + limit_s
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s:g} s waiting for {what}")
        await asyncio.sleep(0.02)


# ---- the simulator's truth -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimCall:
    """One call as the simulator lived it (epoch seconds of simulated time)."""

    linkedid: str
    started: float
    ended: float
    outcome: str
    wait_s: float | None  # answered calls: from joining the queue to the answer
    talk_s: float | None  # answered calls


class Truth:
    """Records every call the simulator finishes and every AMI login; attach before it starts."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.ended: dict[str, SimCall] = {}
        previous = sim.pbx.hooks.on_call_ended

        def ended(call: Any) -> None:
            self._ended(call)
            if previous is not None:
                previous(call)

        # The workload chains the hook it finds at start, so the stats keep counting too.
        sim.pbx.hooks.on_call_ended = ended
        self._logins: list[float] = []
        action = sim.server._action

        async def spied(session: Any, headers: Any) -> None:
            await action(session, headers)
            if get(headers, "Action").lower() == "login" and session.authenticated:
                self._logins.append(sim.pbx.now_epoch())

        # The server looks the handler up on the instance, so this sees every action.
        sim.server._action = spied  # type: ignore[method-assign, assignment]

    def _ended(self, call: Any) -> None:
        result = str(call.result)
        answered = result == "answered"
        wait = None
        if answered and call.joined_at is not None and call.answered_at is not None:
            wait = call.answered_at - call.joined_at
        self.ended[call.linkedid] = SimCall(
            linkedid=call.linkedid,
            started=call.c1.created,
            ended=call.pbx.now_epoch(),
            outcome=_SIM_OUTCOME.get(result, result),
            wait_s=wait,
            talk_s=call.talk_s if answered else None,
        )

    def live(self) -> dict[str, float]:
        """Calls in progress now: linkedid -> start (epoch)."""
        return {lid: call.c1.created for lid, call in self.sim.pbx.calls.items()}

    def login_times(self) -> list[float]:
        """When (simulated epoch) each AMI login was answered: from then on events flow."""
        return self._logins

    def stop_arrivals(self) -> None:
        """No new caller from now on, so the run can end with every call finished."""
        # Arrivals all go through Pbx.originate; the calls in progress carry on untouched.
        self.sim.pbx.originate = lambda *_, **__: None  # type: ignore[method-assign]


# ---- a tap on an in-process service ----------------------------------------------------------


class Tap:
    """Watches an in-process Service's stream: resyncs, link losses and every CallEnded."""

    def __init__(self, service: Any) -> None:
        self.resyncs = 0
        self.link_downs = 0
        self.ended: Counter[str] = Counter()  # linkedid -> CallEnded effects seen
        self.closed_by_resync: set[str] = set()
        process = service.process

        def tapped(server: str, headers: Mapping[str, str], received_at: float) -> None:
            process(server, headers, received_at)
            # Counted after the tracker has reconciled, so a waiter sees the result.
            name = headers.get("Event")
            if name == "CallcenterResyncEnd":
                self.resyncs += 1
            elif name == "CallcenterLinkDown":
                self.link_downs += 1

        # The consumer looks the method up on the instance, so this sees every message.
        service.process = tapped
        service.subscribe(self._effects)

    def _effects(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, CallEnded):
                self.ended[effect.call.linkedid] += 1
            elif isinstance(effect, Anomaly) and effect.kind == "closed_by_resync":
                self.closed_by_resync.add(effect.linkedid or "")

    @property
    def twice(self) -> list[str]:
        """Calls the service finished more than once."""
        return sorted(lid for lid, n in self.ended.items() if n > 1)


# ---- the verdict -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gap:
    """Simulated time during which the service could not see the stream.

    A call alive during a gap must be flagged reconstructed; in a ``lenient`` one it may
    instead be exact (the stretch before a SIGKILL, whose records may or may not have been
    written before the process died).
    """

    start: float
    end: float
    lenient: bool = False

    def touches(self, call: SimCall) -> bool:
        """Whether the call was alive at some point of the gap."""
        return call.started <= self.end and call.ended >= self.start


@dataclass(slots=True)
class Verdict:
    """The call log compared with the simulator's truth."""

    calls: int = 0  # calls the simulator finished
    expected: set[str] = field(default_factory=set)  # their linkedids
    logged: int = 0  # rows in the call log
    touched: int = 0  # calls alive during a gap
    exact: int = 0  # untouched calls whose row equals the truth
    reconstructed: int = 0  # rows flagged reconstructed
    lost: list[str] = field(default_factory=list)  # finished, no row
    # Finished, no row, and never visible: the whole call fell inside one blind stretch, so
    # neither the stream nor the resync ever showed it (only CEL could; see reliability.md).
    invisible: list[str] = field(default_factory=list)
    phantoms: list[str] = field(default_factory=list)  # a row for a call that never ended
    unflagged: list[str] = field(default_factory=list)  # touched, yet not flagged
    wrongly_flagged: list[str] = field(default_factory=list)  # untouched, yet flagged
    inexact: list[str] = field(default_factory=list)  # untouched, differs from the truth

    def problems(self) -> list[str]:
        """Every way the log falls short, for an assertion message (empty when it is right)."""
        out = []
        for name in ("lost", "phantoms", "unflagged", "wrongly_flagged", "inexact"):
            items = getattr(self, name)
            if items:
                out.append(f"{len(items)} {name}: {items[:5]}")
        return out


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOLERANCE_S


def _merged(gaps: Iterable[Gap]) -> list[tuple[float, float]]:
    """The gaps as disjoint stretches (a SIGKILL's two adjacent gaps become one)."""
    out: list[tuple[float, float]] = []
    for gap in sorted(gaps, key=lambda g: g.start):
        if out and gap.start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], gap.end))
        else:
            out.append((gap.start, gap.end))
    return out


def compare(
    rows: Iterable[Mapping[str, Any]], truth: Mapping[str, SimCall], gaps: Iterable[Gap]
) -> Verdict:
    """Checks every finished call has exactly one row, flagged when touched, exact otherwise."""
    gaps = list(gaps)
    by_id = {str(r["linkedid"]): r for r in rows}
    v = Verdict(calls=len(truth), expected=set(truth), logged=len(by_id))
    blind = _merged(gaps)
    for lid in sorted(set(truth) - set(by_id)):
        call = truth[lid]
        inside = any(s <= call.started and call.ended <= e for s, e in blind)
        (v.invisible if inside else v.lost).append(lid)
    v.phantoms = sorted(set(by_id) - set(truth))
    v.reconstructed = sum(1 for r in by_id.values() if r["reconstructed"])
    for lid, call in sorted(truth.items()):
        row = by_id.get(lid)
        if row is None:
            continue
        touching = [g for g in gaps if g.touches(call)]
        if touching:
            v.touched += 1
            if row["reconstructed"]:
                continue
            if not all(g.lenient for g in touching):
                v.unflagged.append(lid)
                continue
        elif row["reconstructed"]:
            v.wrongly_flagged.append(lid)
            continue
        got = (row["outcome"], row["wait_s"], row["talk_s"])
        if call.outcome != row["outcome"] or (
            call.outcome == "answered"
            and not (_close(call.wait_s, row["wait_s"]) and _close(call.talk_s, row["talk_s"]))
        ):
            want = (call.outcome, call.wait_s, call.talk_s)
            v.inexact.append(f"{lid}: want {want}, got {got}")
            continue
        if not touching:
            v.exact += 1
    return v


async def call_rows(pool: Any, server: str) -> list[Mapping[str, Any]]:
    """The call log of one Asterisk server."""
    return list(
        await pool.fetch(
            "SELECT linkedid, outcome, wait_s, talk_s, reconstructed FROM calls WHERE server = $1",
            server,
        )
    )


# ---- figures ---------------------------------------------------------------------------------


@dataclass(slots=True)
class FaultReport:
    """One row of docs/reliability.md: a fault, how it went, and the evidence behind it."""

    fault: str
    injected: int = 0
    calls: int = 0  # calls the simulator finished during the run
    in_flight: list[int] = field(default_factory=list)  # calls in progress at each injection
    lost: int = 0
    invisible: int = 0  # calls whose whole life fell inside a blind stretch
    duplicates: int = 0
    recovery_s: list[float] = field(default_factory=list)
    verdict: Verdict | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """What went wrong (nothing, when the fault was survived)."""
        out = list(self.verdict.problems()) if self.verdict else []
        if self.duplicates:
            out.append(f"{self.duplicates} duplicates")
        return out

    def row(self) -> str:
        """The Markdown table row."""
        flight = (
            f"{sum(self.in_flight)} ({min(self.in_flight)}-{max(self.in_flight)} per fault)"
            if self.in_flight
            else "-"
        )
        if self.recovery_s:
            rec = sorted(self.recovery_s)
            median = rec[len(rec) // 2]
            recovery = f"median {median:.2f} s, max {rec[-1]:.2f} s"
        else:
            recovery = "-"
        return (
            f"| {self.fault} | {self.injected} | {self.calls} | {flight} | {self.lost} "
            f"| {self.duplicates} | {recovery} | {self.invisible} |"
        )


TABLE_HEAD = (
    "| Fault | Injected | Calls in run | Calls in flight at the fault | Lost | Duplicates "
    "| Recovery | Never visible |\n|---|---|---|---|---|---|---|---|"
)


def env_without_callcenter() -> dict[str, str]:
    """This process's environment minus settings that would leak into a child service."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CALLCENTER_") and k not in ("DATABASE_URL",)
    }

"""Reconciles the call log with Asterisk's own records (queue_log and CEL); pure.

AMI has no replay: what happens while the link is down is never sent. Asterisk writes
queue_log (every queue visit: outcome, agent, wait, talk) and CEL (every channel of every
call) whatever happens to the AMI link, so a call that crossed a gap takes Asterisk's
outcome, agent, wait and talk from them, and a call that began and ended inside a gap is
rebuilt from them. Such calls are flagged ``reconciled``. Calls are keyed by linkedid, as
everywhere; queue_log's callid is the queued channel's uniqueid, mapped to its linkedid
through CEL (without CEL the callid is taken as the linkedid, true for an inbound call).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from callcenter.events import is_withheld
from callcenter.model import Call, Offer, Visit
from callcenter.records import CelEvent, QueueLogEntry

# queue_log verbs that end a visit without an agent -> the tracker's outcome, and the index
# of the wait (seconds) in their data.
UNANSWERED = {
    "ABANDON": ("abandoned", 2),
    "EXITWITHTIMEOUT": ("timeout", 2),
    "EXITEMPTY": ("exit_empty", 2),
    "EXITWITHKEY": ("exit_key", 3),
    "WITHDRAW": ("withdrawn", 2),
}
# verb -> (hangup_by, index of the talk seconds in the data)
COMPLETED = {
    "COMPLETECALLER": ("caller", 1),
    "COMPLETEAGENT": ("agent", 1),
    "BLINDTRANSFER": ("transfer", 3),
    "ATTENDEDTRANSFER": ("transfer", 3),
}


def _known(value: str) -> str | None:
    """A caller ID value, or None for an empty, ``<unknown>`` or withheld one."""
    return None if not value or value == "<unknown>" or is_withheld(value) else value


# Whole-second queue_log figures against the tracker's milliseconds: this much is agreement.
_TOLERANCE_S = 1.0


@dataclass(slots=True)
class AsteriskVisit:
    """One queue visit as queue_log tells it."""

    queue: str
    entered_at: float
    position: int | None = None
    agent: str | None = None
    outcome: str | None = None
    wait: int | None = None
    talk: int | None = None
    hangup_by: str | None = None
    transferred_to: str | None = None
    exit_at: float | None = None  # when queue_log wrote the visit's last line
    no_answer: list[tuple[str, int | None]] = field(default_factory=list)  # agent, ring ms

    @property
    def done(self) -> bool:
        """Whether queue_log has written the visit's end."""
        return self.exit_at is not None and (self.outcome != "answered" or self.talk is not None)

    @property
    def answered_at(self) -> float | None:
        """When the agent answered, on the entry's clock (so the wait is queue_log's)."""
        if self.outcome != "answered" or self.wait is None:
            return None
        return self.entered_at + self.wait

    @property
    def left_at(self) -> float | None:
        """When the caller left the waiting line."""
        if self.wait is None:
            return None
        return self.entered_at + self.wait

    @property
    def ended_at(self) -> float | None:
        """When the visit ended (the end of talk for an answered one)."""
        answered = self.answered_at
        if answered is not None:
            return answered + self.talk if self.talk is not None else None
        return self.left_at


@dataclass(slots=True)
class AsteriskCall:
    """What queue_log and CEL say about one call (linkedid)."""

    linkedid: str
    uniqueid: str
    started_at: float | None = None
    ended_at: float | None = None  # CEL's LINKEDID_END
    last_at: float | None = None  # the latest record of any kind
    caller_number: str | None = None
    caller_name: str | None = None
    dialled: str | None = None
    hangup_cause: int | None = None
    ivr_path: list[str] = field(default_factory=list)
    ivr_digits: str = ""
    visits: list[AsteriskVisit] = field(default_factory=list)
    in_cel: bool = False

    @property
    def complete(self) -> bool:
        """Whether Asterisk has written the call's end (CEL), or every visit's (queue_log only)."""
        if self.in_cel:
            return self.ended_at is not None
        return bool(self.visits) and all(v.done for v in self.visits)

    @property
    def first_at(self) -> float | None:
        """When the call began: CEL's start, else its first queue entry (whole seconds)."""
        if self.started_at is not None:
            return self.started_at
        return min((v.entered_at for v in self.visits), default=None)


@dataclass(slots=True)
class AsteriskRecords:
    """The calls Asterisk recorded, by linkedid, built from queue_log entries and CEL events."""

    calls: dict[str, AsteriskCall] = field(default_factory=dict)
    has_queue_log: bool = False
    has_cel: bool = False
    # (linkedid, uniqueid) of caller channels in a bridge while CEL is folded: keys pressed
    # then go to the agent, not to the IVR.
    _bridged: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def build(
        cls,
        queue_log: Iterable[QueueLogEntry] = (),
        cel: Iterable[CelEvent] = (),
        *,
        with_queue_log: bool | None = None,
        with_cel: bool | None = None,
    ) -> AsteriskRecords:
        """Folds both sources into calls; either may be empty."""
        cel = list(cel)
        queue_log = list(queue_log)
        records = cls(
            has_queue_log=bool(queue_log) if with_queue_log is None else with_queue_log,
            has_cel=bool(cel) if with_cel is None else with_cel,
        )
        linked: dict[str, str] = {}  # uniqueid -> linkedid
        for event in sorted(cel, key=lambda e: e.ts):
            linked[event.uniqueid] = event.linkedid
            records._fold_cel(event)
        for entry in sorted(queue_log, key=lambda e: e.ts):
            records._fold_queue_log(entry, linked)
        return records

    def _call(self, linkedid: str, uniqueid: str | None = None) -> AsteriskCall:
        call = self.calls.get(linkedid)
        if call is None:
            call = self.calls[linkedid] = AsteriskCall(linkedid, uniqueid or linkedid)
        return call

    def _fold_cel(self, e: CelEvent) -> None:
        call = self._call(e.linkedid)
        call.in_cel = True
        call.last_at = max(call.last_at or e.ts, e.ts)
        if call.started_at is None or e.ts < call.started_at:
            call.started_at = e.ts
        if e.event == "LINKEDID_END":
            call.ended_at = e.ts
            return
        if e.uniqueid != call.linkedid:
            return  # agents' and Local halves' channels: the caller's is the linkedid
        # As on AMI: "<unknown>" and a withheld number's placeholder are no number (KVKK too).
        call.caller_number = call.caller_number or _known(e.cid_num)
        call.caller_name = call.caller_name or _known(e.cid_name)
        if not call.dialled and e.exten and e.exten.lstrip("+").isdigit():
            call.dialled = e.exten
        if e.context and (not call.ivr_path or call.ivr_path[-1] != e.context):
            call.ivr_path.append(e.context)
        key = (call.linkedid, e.uniqueid)
        if e.event == "DTMF" and key not in self._bridged:
            call.ivr_digits += str(e.extra.get("digit", ""))
        elif e.event == "HANGUP" and isinstance(e.extra.get("hangupcause"), int):
            call.hangup_cause = int(e.extra["hangupcause"])
        elif e.event == "BRIDGE_ENTER":
            self._bridged.add(key)
        elif e.event == "BRIDGE_EXIT":
            self._bridged.discard(key)

    def _fold_queue_log(self, e: QueueLogEntry, linked: dict[str, str]) -> None:
        if e.callid in ("NONE", "MANAGER", "") or e.queue in ("NONE", ""):
            return  # member actions and QUEUESTART
        linkedid = linked.get(e.callid, e.callid)
        call = self._call(linkedid, e.callid)
        call.uniqueid = e.callid
        call.last_at = max(call.last_at or e.ts, e.ts)
        if e.event == "ENTERQUEUE":
            call.visits.append(AsteriskVisit(e.queue, e.ts, position=e.int_arg(2)))
            return
        visit = next((v for v in reversed(call.visits) if v.queue == e.queue), None)
        if visit is None:
            return  # its ENTERQUEUE is before the window read
        if e.event == "CONNECT":
            visit.outcome, visit.agent, visit.wait = "answered", e.agent, e.int_arg(0)
        elif e.event in COMPLETED:
            visit.hangup_by, index = COMPLETED[e.event]
            visit.talk = e.int_arg(index)
            visit.exit_at = e.ts
            if e.event == "BLINDTRANSFER" and e.arg(0):
                visit.transferred_to = f"{e.arg(0)}@{e.arg(1)}" if e.arg(1) else e.arg(0)
        elif e.event in UNANSWERED and visit.outcome is None:
            visit.outcome, index = UNANSWERED[e.event]
            visit.wait = e.int_arg(index)
            visit.exit_at = e.ts
        elif e.event == "RINGNOANSWER":
            visit.no_answer.append((e.agent, e.int_arg(0)))

    def unseen(self, known: Iterable[str], since: float, until: float) -> list[AsteriskCall]:
        """Complete calls of the window [since, until] whose linkedid is not in ``known``."""
        skip = set(known)
        found = []
        for call in self.calls.values():
            first = call.first_at
            if call.linkedid in skip or first is None or not call.complete:
                continue
            if since <= first and (call.ended_at or call.last_at or first) <= until:
                found.append(call)
        return sorted(found, key=lambda c: c.first_at or 0.0)


def _visit_from(t: AsteriskVisit) -> Visit:
    """A call-log visit built from queue_log alone."""
    visit = Visit(queue=t.queue, entered_at=t.entered_at, position=t.position)
    _take(visit, t)
    return visit


def _take(visit: Visit, t: AsteriskVisit) -> None:
    """Makes a visit say what queue_log says: outcome, agent, wait, talk, who ended it."""
    if visit.entered_at is None or abs(visit.entered_at - t.entered_at) > _TOLERANCE_S:
        visit.entered_at = t.entered_at
    entered = visit.entered_at
    wait = t.wait
    if t.agent != visit.agent:
        visit.interface = None
    visit.agent = t.agent if t.outcome == "answered" else None
    visit.outcome = t.outcome
    visit.asterisk_wait_s = wait
    visit.left_at = entered + wait if wait is not None else t.exit_at
    if t.outcome == "answered":
        visit.answered_at = visit.left_at
        visit.talk_s = float(t.talk) if t.talk is not None else None
        visit.asterisk_talk_s = t.talk
        visit.hangup_by = t.hangup_by
        visit.transferred_to = t.transferred_to or visit.transferred_to
        if visit.answered_at is not None and t.talk is not None:
            visit.ended_at = visit.answered_at + t.talk
        else:
            visit.ended_at = t.exit_at
    else:
        visit.answered_at = None
        visit.talk_s = None
        visit.asterisk_talk_s = None
        visit.hangup_by = None
        visit.ended_at = visit.left_at
    for offer in visit.offers:
        if offer.result == "answered" and offer.agent != visit.agent:
            offer.result = "canceled"
    if t.outcome == "answered" and visit.agent and visit.answered_at is not None:
        if not any(o.result == "answered" for o in visit.offers):
            visit.offers.append(
                Offer(
                    agent=visit.agent,
                    interface="",
                    rang_at=visit.answered_at,
                    ended_at=visit.answered_at,
                    result="answered",
                    ring_s=None,
                )
            )


def _agrees(visit: Visit, t: AsteriskVisit) -> bool:
    """Whether the tracker's visit already says what queue_log says (within a second)."""
    if visit.outcome != t.outcome or visit.agent != (t.agent if t.outcome == "answered" else None):
        return False
    if visit.entered_at is None or abs(visit.entered_at - t.entered_at) > _TOLERANCE_S + 0.5:
        return False
    wait = visit.wait_s
    if t.wait is not None and (wait is None or abs(wait - t.wait) > _TOLERANCE_S):
        return False
    if t.outcome == "answered" and t.talk is not None:
        if visit.talk_s is None or abs(visit.talk_s - t.talk) > _TOLERANCE_S:
            return False
        if visit.hangup_by != t.hangup_by:
            return False
    return True


def _take_offers(visit: Visit, t: AsteriskVisit) -> None:
    """Adds the rings queue_log saw unanswered (RINGNOANSWER) that the tracker missed."""
    unmatched = [o for o in visit.offers if o.result == "no_answer"]
    for agent, ring_ms in t.no_answer:
        same = next((o for o in unmatched if o.agent == agent), None)
        if same is not None:
            unmatched.remove(same)
            continue
        other = next(
            (o for o in visit.offers if o.agent == agent and o.result in ("canceled", "ringing")),
            None,
        )
        ring_s = ring_ms / 1000 if ring_ms is not None else None
        if other is not None:
            other.result = "no_answer"
            other.ring_s = ring_s if ring_s is not None else other.ring_s
            continue
        visit.offers.append(
            Offer(
                agent=agent,
                interface="",
                rang_at=visit.entered_at or 0.0,
                result="no_answer",
                ring_s=ring_s,
            )
        )


def _settle_hangup_by(call: Call) -> None:
    """Who hung up, as the tracker settles it when a call ends."""
    answered = [v for v in call.visits if v.answered_at is not None]
    if answered:
        last = answered[-1]
        call.hangup_by = last.hangup_by if last.hangup_by in ("caller", "agent") else "caller"
    elif call.outcome in ("abandoned", "ivr_only"):
        call.hangup_by = "caller"
    else:
        call.hangup_by = "system"


def apply_records(call: Call, truth: AsteriskCall, *, with_queue_log: bool = True) -> bool:
    """Makes a finished call agree with Asterisk's records; returns whether anything changed.

    Visits are matched to queue_log's in order, queue by queue; a visit queue_log does not
    know is dropped and one the tracker missed is added. The call takes CEL's start and end
    when the tracker only inferred them.
    """
    before = call.to_dict()
    if with_queue_log:
        kept: list[Visit] = []
        pool = list(call.visits)
        for t in truth.visits:
            match = next((v for v in pool if v.queue == t.queue), None)
            if match is None:
                kept.append(_visit_from(t))
                continue
            pool.remove(match)
            if not _agrees(match, t):
                _take(match, t)
            _take_offers(match, t)
            kept.append(match)
        call.visits = kept
    if truth.in_cel:
        if truth.started_at is not None and truth.started_at < call.started_at - _TOLERANCE_S:
            call.started_at = truth.started_at
        if truth.ended_at is not None and (
            call.ended_at is None or abs(call.ended_at - truth.ended_at) > _TOLERANCE_S
        ):
            call.ended_at = truth.ended_at
        call.caller_number = call.caller_number or truth.caller_number
        call.caller_name = call.caller_name or truth.caller_name
        call.dialled = call.dialled or truth.dialled
        if call.hangup_cause is None:
            call.hangup_cause = truth.hangup_cause
    _settle_hangup_by(call)
    changed = call.to_dict() != before
    call.reconciled = True
    return changed


def call_from_records(server: str, truth: AsteriskCall) -> Call:
    """A call the service never saw (inside an AMI gap), rebuilt from Asterisk's records."""
    first = truth.first_at or 0.0
    call = Call(
        server=server,
        linkedid=truth.linkedid,
        uniqueid=truth.uniqueid,
        started_at=truth.started_at if truth.started_at is not None else first,
        caller_number=truth.caller_number,
        caller_name=truth.caller_name,
        dialled=truth.dialled,
        hangup_cause=truth.hangup_cause,
        ivr_path=list(truth.ivr_path),
        ivr_digits=truth.ivr_digits,
        reconstructed=True,
        reconciled=True,
    )
    call.visits = [_visit_from(t) for t in truth.visits]
    ends = [v.ended_at for v in call.visits if v.ended_at is not None]
    call.ended_at = truth.ended_at or (max(ends) if ends else truth.last_at)
    _settle_hangup_by(call)
    return call


@dataclass(slots=True)
class Reconciled:
    """What one reconciliation did: calls corrected, calls found, calls left as they were."""

    corrected: list[Call] = field(default_factory=list)
    confirmed: list[Call] = field(default_factory=list)
    found: list[Call] = field(default_factory=list)


def reconcile(
    calls: Iterable[Call],
    records: AsteriskRecords,
    server: str,
    window: tuple[float, float] | None = None,
) -> Reconciled:
    """Reconciles finished calls with Asterisk's records.

    Every call flagged ``reconstructed`` (it crossed a gap, or was resumed) that Asterisk
    recorded takes Asterisk's account; with a ``window``, the complete calls Asterisk recorded
    inside it that are not among ``calls`` are rebuilt and returned as found.
    """
    result = Reconciled()
    calls = list(calls)
    for call in calls:
        truth = records.calls.get(call.linkedid)
        if truth is None or not call.reconstructed:
            continue
        if apply_records(call, truth, with_queue_log=records.has_queue_log):
            result.corrected.append(call)
        else:
            result.confirmed.append(call)
    if window is not None:
        known = {c.linkedid for c in calls}
        for truth in records.unseen(known, *window):
            result.found.append(call_from_records(server, truth))
    return result

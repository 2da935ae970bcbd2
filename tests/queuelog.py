"""Reads Asterisk's queue_log: the ground truth for queue visits in the recorded traces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

_END = {"COMPLETECALLER", "COMPLETEAGENT", "BLINDTRANSFER", "ATTENDEDTRANSFER"}
# verb -> (outcome, index of the wait in the data)
_UNANSWERED = {
    "ABANDON": ("abandoned", 2),
    "EXITWITHTIMEOUT": ("timeout", 2),
    "EXITEMPTY": ("exit_empty", 2),
    "EXITWITHKEY": ("exit_key", 3),
    "WITHDRAW": ("withdrawn", 2),
}


@dataclass
class QlVisit:
    """One queue visit as queue_log tells it (whole seconds)."""

    callid: str
    queue: str
    entered: int
    agent: str | None = None
    outcome: str | None = None
    wait: int | None = None
    talk: int | None = None
    reason: str | None = None  # caller, agent, transfer
    ringnoanswer: list[str] = field(default_factory=list)
    # The queue the caller entered next while connected here or right after a transfer.
    transferred_to: str | None = None
    transferred: bool = False


def read_queue_log(path: Path) -> list[QlVisit]:
    """Parses queue_log lines into visits, in the order they entered the queue."""
    visits: list[QlVisit] = []
    open_: dict[tuple[str, str], QlVisit] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("|")
        epoch, callid, queue, agent, event, data = (
            int(parts[0]),
            parts[1],
            parts[2],
            parts[3],
            parts[4],
            parts[5:],
        )
        key = (callid, queue)
        if event == "ENTERQUEUE":
            # Sent on by its agent: the caller's visit still connected (a redirect) or the one
            # that just ended with BLINDTRANSFER/ATTENDEDTRANSFER.
            earlier = [v for v in visits if v.callid == callid and v.outcome == "answered"]
            if earlier and earlier[-1] is next(
                (v for v in reversed(visits) if v.callid == callid), None
            ):
                last = earlier[-1]
                if (last.callid, last.queue) in open_ or last.transferred:
                    last.transferred_to = queue
            visit = QlVisit(callid, queue, epoch)
            visits.append(visit)
            open_[key] = visit
        elif key in open_:
            visit = open_[key]
            if event == "CONNECT":
                visit.agent, visit.outcome, visit.wait = agent, "answered", int(data[0])
            elif event in _END:
                visit.talk = int(data[3] if event.endswith("TRANSFER") else data[1])
                visit.reason = {"COMPLETECALLER": "caller", "COMPLETEAGENT": "agent"}.get(
                    event, "transfer"
                )
                visit.transferred = visit.reason == "transfer"
                del open_[key]
            elif event in _UNANSWERED:
                visit.outcome, index = _UNANSWERED[event]
                visit.wait = int(data[index])
                del open_[key]
            elif event == "RINGNOANSWER":
                visit.ringnoanswer.append(agent)
    return visits

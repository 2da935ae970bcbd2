"""The wallboard's board: today's figures per queue, waits and agents, from recorded traces."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from callcenter.config import Settings
from callcenter.metrics.board import snapshot
from callcenter.metrics.today import Today
from callcenter.model import CallAnswered, Effect, Member, MemberChanged, QueueJoined
from callcenter.pipeline import Pipeline
from tests.metrics_support import TRACES, caller_numbers, trace_messages
from tests.queuelog import read_queue_log


class Board:
    """A trace fed to a pipeline and a ``Today``, with the board at any point."""

    def __init__(self, scenario: str, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.pipeline = Pipeline()
        self.today = Today(self.settings)
        self.now = 0.0
        self._messages = trace_messages(scenario)

    def run(self, until: Callable[[list[Effect]], bool] | None = None) -> None:
        for ts, text in self._messages:
            self.now = ts
            effects = self.pipeline.feed_text("pbx1", text, ts)
            for effect in effects:
                self.today.apply(effect)
            if until is not None and until(effects):
                return

    def board(self, now: float | None = None) -> dict[str, Any]:
        at = self.now if now is None else now
        return snapshot(self.pipeline.tracker, self.today, self.settings, at)


def _queue(board: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in board["queues"] if q["name"] == name)


def test_today_matches_queue_log_after_concurrent_calls() -> None:
    b = Board("concurrent")
    b.run()
    board = b.board()
    expected = read_queue_log(TRACES / "concurrent" / "queue_log")
    for queue in {v.queue for v in expected}:
        day = _queue(board, queue)["today"]
        mine = Counter(v.outcome for v in expected if v.queue == queue)
        assert day["offered"] == sum(mine.values())
        assert day["answered"] == mine["answered"]
        assert day["abandoned"] + day["short_abandoned"] == mine["abandoned"]
        assert day["asa_s"] is not None and day["aht_s"] is not None
        assert 0 <= day["service_level"] <= 1
    totals = board["totals"]
    assert totals["offered"] == len(expected)
    assert totals["waiting"] == 0


def test_a_caller_waits_then_is_answered_then_the_agent_is_back() -> None:
    b = Board("answered")
    b.run(lambda effects: any(isinstance(e, QueueJoined) for e in effects))
    waiting = b.board(b.now + 2.0)
    genel = _queue(waiting, "genel")
    assert genel["waiting"] == 1
    assert genel["today"]["offered"] == 1
    assert genel["today"]["answered"] == 0
    assert waiting["server_time"] - genel["oldest_entered_at"] >= 2.0

    b.run(lambda effects: any(isinstance(e, CallAnswered) for e in effects))
    genel = _queue(b.board(), "genel")
    assert genel["waiting"] == 0
    assert genel["today"]["answered"] == 1
    # Asterisk reports the member in the call a moment after the connect.
    b.run(lambda effects: any(isinstance(e, MemberChanged) and e.member.in_call for e in effects))
    talking = b.board()
    assert _queue(talking, "genel")["agents"]["on_call"] == 1
    zeynep = next(a for a in talking["agents"] if a["state"] == "on_call")
    assert zeynep["queues"] == ["genel"]

    b.run(
        lambda effects: any(
            isinstance(e, MemberChanged) and not e.member.in_call and e.member.last_call_end
            for e in effects
        )
    )
    after = b.board()
    assert any(a["state"] == "wrapup" for a in after["agents"])
    assert _queue(after, "genel")["agents"]["on_call"] == 0
    assert after["next_change"] is not None  # the wrap-up ends with no event: re-send then
    later = b.board(after["next_change"] + 0.1)
    assert not any(a["state"] in ("on_call", "wrapup") for a in later["agents"])
    assert _queue(later, "genel")["today"]["aht_s"] is not None


def test_the_board_shows_no_caller_number_or_call_id() -> None:
    for scenario in ("concurrent", "midcall_resync"):
        b = Board(scenario)
        b.run(lambda effects: any(isinstance(e, QueueJoined) for e in effects))
        text = json.dumps(b.board(), ensure_ascii=False)
        assert not any(n in text for n in caller_numbers(scenario))
        assert not re.search(r'"\d{9,}\.\d+"', text)


def test_a_new_day_starts_from_zero() -> None:
    b = Board("concurrent")
    b.run()
    assert b.board()["totals"]["offered"] > 0
    tomorrow = b.board(b.now + 86_400)
    assert tomorrow["totals"]["offered"] == 0
    assert tomorrow["totals"]["service_level"] is None


def _member(queue: str, status: int = 1, paused: bool = False, since: float = 10.0) -> Member:
    return Member(
        interface="PJSIP/1003",
        agent="Elif Şahin",
        queue=queue,
        status=status,
        paused=paused,
        paused_reason="Eğitim" if paused else "",
        since=since,
        server="pbx1",
    )


def _agent_state(*members: Member) -> dict[str, Any]:
    b = Board("answered")
    b.pipeline.tracker.members = {("pbx1", m.queue, m.interface): m for m in members}
    (agent,) = b.board(100.0)["agents"]
    return agent


def test_an_agent_in_several_queues_shows_what_matters() -> None:
    on_call = _agent_state(_member("genel", status=2, since=50.0), _member("sosyal", since=20.0))
    assert (on_call["state"], on_call["since"]) == ("on_call", 50.0)
    assert on_call["queues"] == ["genel", "sosyal"]
    partly = _agent_state(_member("genel", paused=True), _member("sosyal"))
    assert partly["state"] == "available"
    paused = _agent_state(_member("genel", paused=True), _member("sosyal", paused=True))
    assert (paused["state"], paused["reason"]) == ("paused", "Eğitim")

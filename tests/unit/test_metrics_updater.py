"""Effect-by-effect rules of the metrics: outcomes, late joins, wrap-up, lag, AMI and labels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from callcenter.app import Service
from callcenter.config import AsteriskServer, Settings
from callcenter.events import parse_message
from callcenter.metrics.exporter import Exporter, attach
from callcenter.model import Call, Member, MemberChanged, QueueJoined, Visit, VisitEnded
from callcenter.pipeline import Pipeline
from tests.metrics_support import FakeClock, scrape, series, trace_messages, value


def _exporter(settings: Settings | None = None) -> tuple[Exporter, FakeClock]:
    clock = FakeClock(1000.0)
    return Exporter(settings or Settings(), Pipeline(), clock), clock


def _visit(queue: str = "genel", **fields: object) -> tuple[Call, Visit]:
    call = Call(server="pbx1", linkedid="1.1", uniqueid="1.1", started_at=90.0)
    visit = Visit(queue=queue, entered_at=100.0, **fields)  # type: ignore[arg-type]
    call.visits.append(visit)
    return call, visit


@pytest.mark.parametrize(
    ("left_at", "expected"),
    [(103.0, "short_abandoned"), (105.0, "abandoned"), (140.0, "abandoned")],
)
def test_abandons_under_the_threshold_are_short(left_at: float, expected: str) -> None:
    exporter, _ = _exporter(Settings(short_abandon_seconds=5.0))
    call, visit = _visit(left_at=left_at, ended_at=left_at, outcome="abandoned")
    exporter.updater([QueueJoined(call, visit), VisitEnded(call, visit)])
    samples = scrape(exporter.registry)
    got = value(samples, "callcenter_queue_calls_exited_total", queue="genel", outcome=expected)
    assert got == 1
    assert value(samples, "callcenter_queue_calls_entered_total", queue="genel") == 1


def test_unknown_outcomes_are_other_and_series_start_at_zero() -> None:
    exporter, _ = _exporter()
    call, visit = _visit(left_at=101.0, ended_at=101.0, outcome="something_new")
    exporter.updater([QueueJoined(call, visit), VisitEnded(call, visit)])
    samples = scrape(exporter.registry)
    exits = series(samples, "callcenter_queue_calls_exited_total")
    assert exits[frozenset({("queue", "genel"), ("outcome", "other")})] == 1
    assert exits[frozenset({("queue", "genel"), ("outcome", "timeout")})] == 0


def test_a_visit_whose_join_was_missed_is_entered_when_it_ends() -> None:
    exporter, _ = _exporter()
    call, visit = _visit(left_at=130.0, ended_at=130.0, outcome="timeout")
    exporter.updater([VisitEnded(call, visit)])
    samples = scrape(exporter.registry)
    assert value(samples, "callcenter_queue_calls_entered_total", queue="genel") == 1
    exited = value(samples, "callcenter_queue_calls_exited_total", queue="genel", outcome="timeout")
    assert exited == 1


def _answered(end: float) -> tuple[Call, Visit]:
    return _visit(
        answered_at=110.0,
        left_at=110.0,
        ended_at=end,
        outcome="answered",
        agent="Zeynep Kaya",
        interface="PJSIP/1001",
        talk_s=end - 110.0,
        hold_s=4.0,
    )


def _member(status: int, since: float, paused: bool = False) -> Member:
    return Member(
        interface="PJSIP/1001",
        agent="Zeynep Kaya",
        queue="genel",
        status=status,
        paused=paused,
        last_call_end=150.0,
        since=since,
        server="pbx1",
    )


def test_wrapup_ends_at_the_next_ring() -> None:
    exporter, _ = _exporter(Settings(wrapup_seconds={"*": 10.0}))
    call, visit = _answered(150.0)
    exporter.updater([QueueJoined(call, visit), VisitEnded(call, visit)])
    exporter.updater([MemberChanged(_member(1, 150.2))])  # the call's own teardown: still wrap-up
    exporter.updater([MemberChanged(_member(6, 154.0))])  # rings again
    samples = scrape(exporter.registry)
    assert value(samples, "callcenter_agent_wrapup_seconds_count", queue="genel") == 1
    assert value(samples, "callcenter_agent_wrapup_seconds_sum", queue="genel") == 4.0
    assert value(samples, "callcenter_call_hold_seconds_sum", queue="genel") == 4.0
    assert value(samples, "callcenter_call_talk_seconds_sum", queue="genel") == 40.0


def test_wrapup_without_activity_counts_its_full_time_by_the_scrape() -> None:
    exporter, clock = _exporter(Settings(wrapup_seconds={"*": 10.0}))
    call, visit = _answered(150.0)
    exporter.updater([QueueJoined(call, visit), VisitEnded(call, visit)])
    clock.now = 155.0
    assert value(scrape(exporter.registry), "callcenter_agent_wrapup_seconds_count") == 0
    clock.now = 161.0  # no event since; the scrape itself closes the wrap-up
    samples = scrape(exporter.registry)
    assert value(samples, "callcenter_agent_wrapup_seconds_count", queue="genel") == 1
    assert value(samples, "callcenter_agent_wrapup_seconds_sum", queue="genel") == 10.0


def test_pause_reasons_are_bounded() -> None:
    exporter, _ = _exporter()
    tracker = exporter.collector.tracker
    for i in range(30):
        member = Member(
            interface=f"PJSIP/{2000 + i}",
            agent=f"Agent {i}",
            queue="genel",
            paused=True,
            paused_reason=f"reason {i}",
            server="pbx1",
        )
        tracker.members[("pbx1", "genel", member.interface)] = member
    paused = series(scrape(exporter.registry), "callcenter_agents_paused")
    reasons = {dict(labels)["reason"] for labels in paused}
    assert len(reasons) <= 21
    assert "other" in reasons
    assert sum(paused.values()) == 30


def test_ami_link_gauges_and_event_lag_from_the_service() -> None:
    settings = Settings(asterisk=(AsteriskServer(name="pbx1"), AsteriskServer(name="pbx2")))
    service = Service(settings)
    clock = FakeClock()
    exporter = attach(service, clock)
    service.clients["pbx1"] = SimpleNamespace(
        connected=True, reconnects=2, login_failures=1, last_message_at=None
    )
    fed = 0
    for ts, text in trace_messages("answered"):
        clock.now = ts + 0.25  # every message is handled a quarter second after it came
        service.process("pbx1", parse_message(text), ts)
        fed += 1
    samples = scrape(exporter.registry)
    assert value(samples, "callcenter_ami_connected", asterisk="pbx1") == 1
    assert value(samples, "callcenter_ami_connected", asterisk="pbx2") == 0
    assert value(samples, "callcenter_ami_reconnects_total", asterisk="pbx1") == 2
    assert value(samples, "callcenter_ami_login_failures_total", asterisk="pbx1") == 1
    last = value(samples, "callcenter_ami_last_event_timestamp_seconds", asterisk="pbx1")
    assert last == pytest.approx(ts)
    assert (
        "callcenter_ami_last_event_timestamp_seconds",
        frozenset({("asterisk", "pbx2")}),
    ) not in (samples)
    assert value(samples, "callcenter_ami_messages_total") == fed
    assert value(samples, "callcenter_event_queue_depth") == 0
    lagged = value(samples, "callcenter_event_lag_seconds_count")
    assert lagged > 0
    assert value(samples, "callcenter_event_lag_seconds_sum") == pytest.approx(lagged * 0.25)
    # A batch from the service's clock tick (a call finalised late) is not a lag sample.
    call, visit = _answered(150.0)
    service.dispatch([VisitEnded(call, visit)])
    after = scrape(exporter.registry)
    assert value(after, "callcenter_event_lag_seconds_count") == lagged
    assert value(after, "callcenter_build_info", version="0.1.0", python=_python()) == 1


def _python() -> str:
    import platform

    return platform.python_version()

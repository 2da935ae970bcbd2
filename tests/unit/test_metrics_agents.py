"""Agents counted once: ``callcenter_agents`` does not multiply an agent by their queues."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from callcenter.config import Settings
from callcenter.metrics.exporter import Exporter
from callcenter.model import Member
from callcenter.pipeline import Pipeline

QUEUES = ("genel", "sosyal-yardim", "depremzede", "sikayet-oneri", "cimer")


def _scrape(exporter: Exporter) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(exporter.render().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _member(queue: str, interface: str, agent: str, **state: object) -> Member:
    return Member(interface=interface, agent=agent, queue=queue, server="pbx1", **state)  # type: ignore[arg-type]


def test_eight_agents_in_five_queues_are_eight_agents() -> None:
    pipeline = Pipeline()
    members = pipeline.tracker.members
    # Six agents on a call, logged in to all five queues (30 memberships "on call").
    for i in range(6):
        for q in QUEUES:
            members[("pbx1", q, f"PJSIP/{100 + i}")] = _member(
                q, f"PJSIP/{100 + i}", f"Agent {i}", in_call=True, status=2
            )
    # One paused in both of their queues, one paused in one queue but free in the other.
    for q in QUEUES[:2]:
        members[("pbx1", q, "PJSIP/200")] = _member(
            q, "PJSIP/200", "Paused", paused=True, paused_reason="Çay molası"
        )
    members[("pbx1", "genel", "PJSIP/201")] = _member(
        "genel", "PJSIP/201", "Half", paused=True, paused_reason="Toplantı"
    )
    members[("pbx1", "depremzede", "PJSIP/201")] = _member("depremzede", "PJSIP/201", "Half")
    exporter = Exporter(Settings(), pipeline, clock=lambda: 1_800_000_000.0)
    got = _scrape(exporter)

    def agents(state: str) -> float:
        return got[("callcenter_agents", (("state", state),))]

    assert agents("on_call") == 6
    assert agents("paused") == 1
    assert agents("available") == 1
    assert sum(agents(s) for s in ("available", "ringing", "on_call", "wrapup", "paused")) == 8
    assert got[("callcenter_agents_paused_by_reason", (("reason", "Çay molası"),))] == 1
    assert ("callcenter_agents_paused_by_reason", (("reason", "Toplantı"),)) not in got
    # The queue breakdown stays: memberships per queue (30 on call across the five queues).
    on_call = sum(
        v
        for (name, labels), v in got.items()
        if name == "callcenter_queue_agents" and ("state", "on_call") in labels
    )
    assert on_call == 30

"""The screen-pop payload, built from recorded calls and a handed-in history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callcenter.model import AgentOffered, Call, CallAnswered, CallEnded, Effect, Visit
from callcenter.popup import (
    build_pop,
    caller_name,
    format_number,
    normalize_number,
    number_variants,
)
from callcenter.replay import open_trace, replay_lines, trace_t0

TRACES = Path(__file__).resolve().parents[1] / "traces"


def effects_of(scenario: str) -> list[Effect]:
    path = TRACES / scenario / "ami.jsonl.gz"
    with open_trace(path) as fh:
        return list(replay_lines(fh, "pbx1", trace_t0(path) or 0.0))


def pop_at_first(scenario: str, kind: type, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """Replays a trace and builds the pop when the first ``kind`` effect comes out.

    The records are mutable and keep changing as the replay goes on, so the pop must be built
    at the moment of the effect, as the live service does.
    """
    path = TRACES / scenario / "ami.jsonl.gz"
    with open_trace(path) as fh:
        for effect in replay_lines(fh, "pbx1", trace_t0(path) or 0.0):
            if isinstance(effect, kind):
                offer = getattr(effect, "offer", None)
                pop = build_pop(effect.call, effect.visit, offer, **kwargs)  # type: ignore[attr-defined]
                return pop, effect
    raise AssertionError(f"no {kind.__name__} in {scenario}")


def first(effects: list[Effect], kind: type) -> Any:
    return next(e for e in effects if isinstance(e, kind))


@pytest.mark.parametrize(
    "raw",
    ["05321234567", "5321234567", "905321234567", "+905321234567", "0532 123 45 67"],
)
def test_turkish_mobile_numbers_in_every_spelling(raw: str) -> None:
    formatted = format_number(raw, "TR")
    assert formatted["e164"] == "+905321234567"
    assert formatted["national"] == "0532 123 45 67"
    assert formatted["valid"] is True
    assert normalize_number(raw) == "+905321234567"
    assert "05321234567" in number_variants(raw)


@pytest.mark.parametrize("raw", [None, "", "anonymous", "<unknown>"])
def test_withheld_numbers_have_no_formats(raw: str | None) -> None:
    formatted = format_number(raw)
    assert formatted["e164"] is None and formatted["national"] is None
    assert normalize_number(raw) is None
    assert number_variants(raw) == []


def test_internal_extension_is_kept_as_is() -> None:
    assert format_number("1001")["e164"] is None
    assert normalize_number("1001") == "1001"


def test_ringing_pop_from_a_recorded_call() -> None:
    history = [
        {
            "server": "pbx1",
            "linkedid": "1700000000.1",
            "started_at": "2026-11-20T09:00:00.000Z",
            "outcome": "answered",
            "agent": "Elif Şahin",
            "queue": "genel",
            "caller_name": None,
        }
    ]
    tickets = [{"reference": "2026-000042", "category": "masa-sandalye", "status": "open"}]
    pop, offered = pop_at_first(
        "answered", AgentOffered, stage="ringing", recent_calls=history, open_tickets=tickets
    )
    assert pop["stage"] == "ringing"
    assert pop["caller"]["e164"] == "+905321234567"
    assert pop["caller"]["national"] == "0532 123 45 67"
    assert pop["caller"]["name"] == "Ayşe Yılmaz"
    assert pop["queue"] == "genel"
    assert pop["agent"]["name"] == "Zeynep Kaya"
    # The wait so far is measured at the ring, from the event times: no clock.
    expected = round(offered.offer.rang_at - offered.visit.entered_at, 3)
    assert pop["wait_s"] == expected
    assert pop["recent_calls"][0]["agent"] == "Elif Şahin"
    assert pop["open_tickets"][0]["reference"] == "2026-000042"
    assert pop["ivr"]["path"] == offered.call.ivr_path


def test_ivr_digits_reach_the_pop() -> None:
    pop, _ = pop_at_first("ivr_to_queue", AgentOffered)
    assert pop["ivr"]["digits"] == "1"
    assert "ivr" in pop["ivr"]["path"]


def test_connected_and_ended_stages() -> None:
    connected, answered = pop_at_first("answered", CallAnswered, stage="connected")
    assert connected["stage"] == "connected"
    assert connected["wait_s"] == answered.visit.wait_s
    ended = first(effects_of("answered"), CallEnded)
    final = build_pop(ended.call, stage="ended")
    assert final["outcome"] == "answered"
    assert final["talk_s"] is not None and final["talk_s"] > 0
    assert final["hangup_by"] == "caller"


def test_current_call_left_out_of_history() -> None:
    call = Call("pbx1", "1.1", "1.1", 0.0, caller_number="05321234567")
    history = [
        {"server": "pbx1", "linkedid": "1.1", "outcome": "answered"},
        {"server": "pbx1", "linkedid": "0.9", "outcome": "abandoned"},
    ]
    pop = build_pop(call, stage="ringing", recent_calls=history)
    assert [c["outcome"] for c in pop["recent_calls"]] == ["abandoned"]


def test_name_falls_back_to_tickets_then_earlier_calls() -> None:
    call = Call("pbx1", "1.1", "1.1", 0.0, caller_number="05321234567", caller_name="05321234567")
    earlier = [{"caller_name": "Mehmet Öz"}]
    assert caller_name(call, earlier, []) == ("Mehmet Öz", "history")
    assert caller_name(call, earlier, [{"caller_name": "Mehmet Öztürk"}]) == (
        "Mehmet Öztürk",
        "ticket",
    )
    call.caller_name = "<unknown>"
    assert caller_name(call, [], []) == (None, None)


def test_waiting_caller_wait_is_measured_at_the_ring() -> None:
    call = Call("pbx1", "1.1", "1.1", 100.0, caller_number="05321234567")
    visit = Visit(queue="genel", entered_at=100.0)
    call.visits.append(visit)
    from callcenter.model import Offer

    offer = Offer(agent="a", interface="Local/1001@agents/n", rang_at=112.5)
    assert build_pop(call, visit, offer)["wait_s"] == 12.5


def test_unknown_stage_is_refused() -> None:
    call = Call("pbx1", "1.1", "1.1", 0.0)
    with pytest.raises(ValueError):
        build_pop(call, stage="later")

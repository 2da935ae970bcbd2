"""Menu navigation on the packaged menu: keys, back, agent, retries, language, flows."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.ivr import prompts
from callcenter.ivr.engine import IvrSession
from callcenter.ivr.menu import IvrMenu, load_menu
from callcenter.ivr.steps import (
    CallInfo,
    Done,
    Hangup,
    Keys,
    LookupStatus,
    Play,
    RecordSurvey,
    Step,
    ToQueue,
)

MENU = load_menu()
CALL = CallInfo(today=date(2026, 6, 1), linkedid="1795884499.0", caller_number="05321234567")


def session(menu: IvrMenu = MENU, **kwargs: object) -> tuple[IvrSession, Step]:
    ivr = IvrSession(menu, CALL, **kwargs)  # type: ignore[arg-type]
    return ivr, ivr.start()


def press(ivr: IvrSession, *entries: str) -> Step:
    """Feeds entries ("" = silence) and returns the last step."""
    step: Step | None = None
    for entry in entries:
        step = ivr.feed(Keys(entry, timed_out=entry == ""))
    assert step is not None
    return step


def played(step: Step) -> list[str]:
    return [s.sound for s in step.say if isinstance(s, Play)]


def test_start_sets_the_language_and_plays_the_main_menu() -> None:
    _, step = session()
    assert dict(step.variables) == {
        "CHANNEL(language)": "tr",
        "CC_LANG": "tr",
        "CC_IVR_PATH": "main",
    }
    assert played(step) == ["callcenter/main-menu"]
    assert step.ask is not None and step.ask.max_digits == 1


def test_a_submenu_option_ends_in_its_queue_with_the_trail_in_variables() -> None:
    ivr, _ = session()
    step = press(ivr, "1")
    assert played(step) == ["callcenter/menu-sosyal"]
    assert dict(step.variables)["CC_IVR_PATH"] == "main>sosyal"
    end = press(ivr, "2")
    assert end.end == ToQueue("sosyal-yardim")
    assert played(end) == ["callcenter/transfer-agent"]
    assert dict(end.variables) == {
        "CC_IVR_CHOICE": "Eğitim yardımı",
        "CC_CATEGORY": "sosyal-yardim",
        "CC_QUEUE": "sosyal-yardim",
        "CC_SURVEY": "1",
        "CC_IVR_END": "queue",
    }
    assert ivr.path == ["main", "sosyal"]
    assert ivr.feed(Keys("3")) is end  # an ended session stays ended


def test_zero_reaches_the_menus_agent_queue_everywhere() -> None:
    ivr, _ = session()
    assert press(ivr, "0").end == ToQueue("genel")
    ivr, _ = session()
    end = press(ivr, "1", "0")
    assert end.end == ToQueue("sosyal-yardim")
    assert dict(end.variables)["CC_IVR_CHOICE"] == "agent"


def test_star_goes_back_and_replays_the_top_menu() -> None:
    ivr, _ = session()
    assert played(press(ivr, "5", "*")) == ["callcenter/main-menu"]
    assert played(press(ivr, "*")) == ["callcenter/main-menu"]
    assert press(ivr, "4").end == ToQueue("depremzede")


def test_wrong_keys_and_silence_are_retried_then_sent_to_an_agent() -> None:
    ivr, _ = session()
    step = press(ivr, "7")
    assert played(step) == ["callcenter/invalid", "callcenter/main-menu"]
    step = press(ivr, "")
    assert played(step) == ["callcenter/no-input", "callcenter/main-menu"]
    end = press(ivr, "8")
    assert end.end == ToQueue("genel")
    assert dict(end.variables)["CC_IVR_CHOICE"] == "no_choice"


def test_a_good_key_after_a_wrong_one_in_a_new_menu_starts_counting_again() -> None:
    ivr, _ = session()
    press(ivr, "7", "7", "1")  # two wrong keys, then the social-aid submenu
    step = press(ivr, "9", "9")
    assert played(step) == ["callcenter/invalid", "callcenter/menu-sosyal"]


def test_hangup_on_failure_when_the_file_says_so() -> None:
    ivr, _ = session(replace(MENU, on_failure="hangup"))
    end = press(ivr, "", "", "")
    assert end.end == Hangup()
    assert played(end) == ["callcenter/goodbye"]
    assert dict(end.variables)["CC_IVR_END"] == "hangup"


def test_nine_switches_to_english_and_back() -> None:
    ivr, _ = session()
    step = press(ivr, "9")
    assert dict(step.variables) == {"CHANNEL(language)": "en", "CC_LANG": "en"}
    assert played(step) == ["callcenter/main-menu"]
    assert dict(press(ivr, "9").variables)["CC_LANG"] == "tr"


def test_the_status_flow_returns_to_the_menu_on_star() -> None:
    ivr, _ = session()
    step = press(ivr, "3")
    assert dict(step.variables)["CC_FLOW"] == "request_status"
    assert played(step) == [prompts.STATUS_ENTER]
    step = press(ivr, "4217")
    assert step.request == LookupStatus("2026-004217")
    step = ivr.feed(Done("in_progress"))
    assert played(step)[-2:] == ["callcenter/status-in-progress", "callcenter/after-flow"]
    assert step.events == (("request_status", "status_read"),)
    assert dict(step.variables)["CC_TICKET"] == "2026-004217"
    assert dict(step.variables)["CC_IVR_RESULT"] == "status_read"
    assert ivr.results == [("request_status", "status_read")]
    assert played(press(ivr, "*")) == ["callcenter/main-menu"]


def test_after_a_flow_silence_says_goodbye_and_zero_reaches_an_agent() -> None:
    ivr, _ = session()
    press(ivr, "3", "4217")
    ivr.feed(Done("resolved"))
    assert press(ivr, "").end == Hangup()
    ivr, _ = session()
    press(ivr, "3", "4217")
    ivr.feed(Done("resolved"))
    assert press(ivr, "0").end == ToQueue("genel")


def test_zero_inside_a_flow_reaches_the_flows_queue() -> None:
    ivr, _ = session()
    press(ivr, "2", "1")  # table-and-chair, wedding
    end = press(ivr, "0")
    assert end.end == ToQueue("masa-sandalye")
    assert ivr.hangup() == []


def test_a_flow_that_gives_up_sends_the_caller_to_its_queue() -> None:
    ivr, _ = session()
    end = press(ivr, "3", "", "", "")
    assert end.end == ToQueue("genel")
    assert end.events == (("request_status", "no_reference"),)


def test_the_survey_route_starts_in_the_callers_language_and_saves_on_hangup() -> None:
    params = {"kind": "after_call", "queue": "genel", "agent": "Zeynep Kaya"}
    ivr, step = session(flow="survey", params=params, language="en")
    assert dict(step.variables)["CC_LANG"] == "en"
    assert played(step) == [prompts.SURVEY_INTRO, prompts.SURVEY_Q1]
    press(ivr, "5")
    [request] = ivr.hangup()
    assert isinstance(request, RecordSurvey)
    assert request.answer.score == 5 and request.answer.resolved is None
    assert request.answer.language == "en" and request.answer.agent == "Zeynep Kaya"
    assert ivr.hangup() == []  # saved once


def test_menu_keys_only_take_keys() -> None:
    ivr, _ = session()
    with pytest.raises(ValueError):
        ivr.feed(Done("x"))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="0123456789*#", max_size=10).map(lambda d: Keys(d)),
            st.just(Keys("", timed_out=True)),
            st.sampled_from([Done(None), Done("open"), Done("2026-000001")]),
        ),
        max_size=40,
    )
)
def test_any_input_gives_well_formed_steps_and_the_call_ends(replies: list[object]) -> None:
    """Whatever the caller presses, every step is valid and a session cannot loop forever."""
    ivr, step = session()
    for reply in replies:
        if step.end is not None:
            break
        if step.ask is not None and not isinstance(reply, Keys):
            reply = Keys("")
        if step.request is not None and isinstance(reply, Keys):
            reply = Done("2026-000009")
        step = ivr.feed(reply)  # type: ignore[arg-type]
    # Silence from here on ends the call within a bounded number of steps.
    for _ in range(60):
        if step.end is not None:
            break
        step = ivr.feed(Keys("", timed_out=True) if step.ask else Done("resolved"))
    assert step.end is not None


def test_a_post_call_survey_writes_its_own_names_not_the_ivrs_trail() -> None:
    params = {"kind": "after_call", "queue": "genel", "agent": "Zeynep Kaya"}
    ivr, step = session(flow="survey", params=params, language="tr")
    written = dict(step.variables)
    end = press(ivr, "", "", "")
    written.update(end.variables)
    assert written == {
        "CHANNEL(language)": "tr",
        "CC_LANG": "tr",
        "CC_SURVEY_FLOW": "survey",
        "CC_SURVEY_RESULT": "survey_no_answer",
        "CC_SURVEY_END": "hangup",
    }
    assert end.events == (("survey", "survey_no_answer"),)
    # The IVR itself still writes its trail.
    ivr, _ = session()
    assert dict(press(ivr, "3", "", "", "").variables)["CC_IVR_END"] == "queue"

"""Self-service flows as pure state machines: status, table-and-chair, survey."""

from __future__ import annotations

from datetime import date

import pytest

from callcenter.ivr import prompts as p
from callcenter.ivr.flows import (
    Flow,
    FlowEnd,
    TableChair,
    make_flow,
    parse_event_date,
    parse_reference,
)
from callcenter.ivr.menu import load_menu
from callcenter.ivr.steps import (
    CallInfo,
    Done,
    Failed,
    Keys,
    LookupStatus,
    OpenTicket,
    Play,
    RecordSurvey,
    Step,
    SurveyAnswer,
)

MENU = load_menu()
TODAY = date(2026, 6, 1)
CALL = CallInfo(today=TODAY, linkedid="1795884499.0", caller_number="05321234567")


def flow(name: str, **params: str) -> Flow:
    return make_flow(MENU.flows[name], CALL, MENU.roles, 3, params)


def keys(digits: str) -> Keys:
    return Keys(digits, timed_out=digits == "")


def sounds(step: Step | FlowEnd) -> list[object]:
    return list(step.say)


def said(*words: str) -> list[Play]:
    """Building blocks by short name: said("2", "100") is callcenter/say/2, callcenter/say/100."""
    return [Play(w if "/" in w else f"callcenter/say/{w}") for w in words]


PAUSE = "callcenter/say/pause"
# 2026-004217 as a Turkish reader says it: "iki bin yirmi altı, tire, sıfır sıfır dört, iki
# yüz on yedi" (never Asterisk's SAY DIGITS, which speaks English for tr).
REF_4217_TR = said(
    "2", "1000", "20", "6", PAUSE, "dash", PAUSE, "0", "0", "4", PAUSE, "2", "100", "10", "7"
)


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("2026004217", "2026-004217"),
        ("4217", "2026-004217"),
        ("1", "2026-000001"),
        ("0000000", None),
        ("12345678", None),
        ("", None),
        ("42*7", None),
    ],
)
def test_parse_reference(digits: str, expected: str | None) -> None:
    assert parse_reference(digits, TODAY) == expected


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("15062026", date(2026, 6, 15)),
        ("01062026", TODAY),  # today is fine: a funeral may be today
        ("1506", date(2026, 6, 15)),
        ("3105", None),  # 31 May is past and next year's is more than 60 days away
        ("31072026", date(2026, 7, 31)),
        ("01082026", None),  # 61 days ahead
        ("30022026", None),
        ("150620", None),
        ("31052026", None),
    ],
)
def test_parse_event_date(digits: str, expected: date | None) -> None:
    assert parse_event_date(digits, TODAY, 60) == expected


def test_ddmm_wraps_to_next_year_near_new_year() -> None:
    assert parse_event_date("0501", date(2026, 12, 20), 60) == date(2027, 1, 5)


def test_status_found() -> None:
    f = flow("request_status")
    step = f.start()
    assert sounds(step) == [Play(p.STATUS_ENTER)]
    assert isinstance(step, Step) and step.ask is not None and step.ask.max_digits == 10
    assert f.feed(keys("2026004217")) == Step(request=LookupStatus("2026-004217"))
    end = f.feed(Done("resolved"))
    assert end == FlowEnd(
        "status_read",
        "menu",
        (Play(p.STATUS_INTRO), *REF_4217_TR, Play("callcenter/status-resolved")),
        (("CC_TICKET", "2026-004217"), ("CC_TICKET_STATUS", "resolved")),
    )


def test_status_unknown_to_the_menu_file_uses_the_default_sound() -> None:
    f = flow("request_status")
    f.start()
    f.feed(keys("5"))
    end = f.feed(Done("archived"))
    assert isinstance(end, FlowEnd) and Play("callcenter/status-in-progress") in end.say


def test_status_not_found_is_retried_then_an_agent() -> None:
    f = flow("request_status")
    f.start()
    f.feed(keys("5"))
    again = f.feed(Done(None))
    assert sounds(again) == [Play(p.STATUS_NOT_FOUND), Play(p.STATUS_ENTER)]
    f.feed(keys("6"))
    f.feed(Done(None))
    f.feed(keys("7"))
    end = f.feed(Done(None))
    assert isinstance(end, FlowEnd) and (end.result, end.then) == ("reference_not_found", "agent")


def test_status_bad_entry_and_desk_failure() -> None:
    f = flow("request_status")
    f.start()
    again = f.feed(keys("12345678"))
    assert sounds(again) == [Play("callcenter/invalid"), Play(p.STATUS_ENTER)]
    f.feed(keys("42"))
    end = f.feed(Failed("database down"))
    assert isinstance(end, FlowEnd) and end.then == "agent"
    assert end.say == (Play("callcenter/technical-problem"),)


def table_chair_until_confirm(f: Flow) -> Step:
    f.start()
    neighbourhood = f.feed(keys("15062026"))
    assert sounds(neighbourhood) == [Play(p.TC_ENTER_NEIGHBOURHOOD)]
    step = f.feed(keys("16"))
    assert isinstance(step, Step)
    return step


def test_table_chair_reads_back_confirms_and_opens_a_ticket() -> None:
    f = flow("masa_sandalye", event="düğün", language="tr")
    assert isinstance(f, TableChair)
    confirm = table_chair_until_confirm(f)
    assert sounds(confirm) == [
        Play(p.TC_READBACK),
        *said("10", "5", "callcenter/month-06", "2", "1000", "20", "6"),  # on beş Haziran …
        Play("callcenter/mahalle-16"),
        Play(p.TC_CONFIRM),
    ]
    opening = f.feed(keys("1"))
    assert isinstance(opening, Step) and isinstance(opening.request, OpenTicket)
    assert opening.request.category == "masa-sandalye"
    assert dict(opening.request.fields) == {
        "event_date": "2026-06-15",
        "neighbourhood": "Sarıgazi",
        "neighbourhood_code": "16",
        "event": "düğün",
        "language": "tr",
    }
    assert "Sarıgazi" in opening.request.note
    read = f.feed(Done("2026-004217"))
    assert sounds(read) == [Play(p.TC_OPENED), *REF_4217_TR, Play(p.TC_REPEAT)]
    assert isinstance(read, Step) and read.variables == (("CC_TICKET", "2026-004217"),)
    assert sounds(f.feed(keys("1"))) == sounds(read)  # heard again
    assert sounds(f.feed(keys("1"))) == sounds(read)
    end = f.feed(keys("1"))  # two repeats are enough
    assert end == FlowEnd("ticket_opened", "menu", variables=(("CC_TICKET", "2026-004217"),))


def test_table_chair_star_lists_the_neighbourhoods_and_one_digit_codes_work() -> None:
    f = flow("masa_sandalye")
    f.start()
    f.feed(keys("15062026"))
    listing = f.feed(keys("*"))
    listed = sounds(listing)
    assert listed[:2] == [*said("1"), Play("callcenter/mahalle-01")]
    assert listed[-4:] == [*said("10", "9"), Play("callcenter/mahalle-19")] + [
        Play(p.TC_ENTER_NEIGHBOURHOOD)
    ]
    # 1-10 are one word ("bir" … "on"), 11-19 two ("on bir"): 28 words, 19 names, the question.
    assert len(listed) == 28 + 19 + 1
    confirm = f.feed(keys("5"))
    assert Play("callcenter/mahalle-05") in sounds(confirm)


def test_table_chair_corrections_restart_at_the_date_then_an_agent() -> None:
    f = flow("masa_sandalye")
    table_chair_until_confirm(f)
    assert sounds(f.feed(keys("2"))) == [Play(p.TC_ENTER_DATE)]
    f.feed(keys("16062026"))
    f.feed(keys("3"))
    f.feed(keys("2"))
    f.feed(keys("16062026"))
    f.feed(keys("3"))
    end = f.feed(keys("2"))
    assert isinstance(end, FlowEnd) and (end.result, end.then) == ("too_many_corrections", "agent")


def test_table_chair_invalid_date_and_neighbourhood_are_retried() -> None:
    f = flow("masa_sandalye")
    f.start()
    assert sounds(f.feed(keys("31022026"))) == [
        Play("callcenter/invalid"),
        Play(p.TC_INVALID_DATE),
        Play(p.TC_ENTER_DATE),
    ]
    assert sounds(f.feed(keys(""))) == [Play("callcenter/no-input"), Play(p.TC_ENTER_DATE)]
    end = f.feed(keys("99999999"))
    assert isinstance(end, FlowEnd) and (end.result, end.then) == ("invalid_date", "agent")
    f = flow("masa_sandalye")
    f.start()
    f.feed(keys("15062026"))
    again = f.feed(keys("42"))
    assert Play(p.TC_INVALID_NEIGHBOURHOOD) in sounds(again)


def test_table_chair_desk_failure_sends_to_an_agent() -> None:
    f = flow("masa_sandalye")
    table_chair_until_confirm(f)
    f.feed(keys("1"))
    end = f.feed(Failed("tickets down"))
    assert isinstance(end, FlowEnd) and (end.result, end.then) == ("ticket_failed", "agent")


def test_survey_two_questions_and_store() -> None:
    f = flow("survey", kind="after_call", queue="genel", agent="Zeynep Kaya", language="tr")
    assert sounds(f.start()) == [Play(p.SURVEY_INTRO), Play(p.SURVEY_Q1)]
    assert sounds(f.feed(keys("4"))) == [Play(p.SURVEY_Q2)]
    record = f.feed(keys("2"))
    assert isinstance(record, Step) and isinstance(record.request, RecordSurvey)
    assert record.request.answer == SurveyAnswer(
        kind="after_call",
        score=4,
        resolved=False,
        language="tr",
        caller_number="05321234567",
        linkedid="1795884499.0",
        queue="genel",
        agent="Zeynep Kaya",
    )
    assert f.feed(Done()) == FlowEnd("survey_completed", "hangup", (Play(p.SURVEY_THANKS),))
    assert f.hangup() is None


def test_survey_second_question_is_optional() -> None:
    f = flow("survey")
    f.start()
    f.feed(keys("5"))
    record = f.feed(keys(""))
    assert isinstance(record, Step) and isinstance(record.request, RecordSurvey)
    assert record.request.answer.resolved is None


def test_survey_without_a_score_stores_nothing() -> None:
    f = flow("survey")
    f.start()
    assert sounds(f.feed(keys("7"))) == [Play("callcenter/invalid"), Play(p.SURVEY_Q1)]
    f.feed(keys(""))
    end = f.feed(keys("9"))
    assert isinstance(end, FlowEnd) and end.result == "survey_no_answer"
    assert f.hangup() is None


def test_callback_survey_reads_the_reference_and_links_the_ticket() -> None:
    f = flow("survey", kind="callback", callback_id="42", ticket_reference="2026-000042")
    assert sounds(f.start()) == [
        Play(p.SURVEY_CALLBACK_INTRO),
        *said("2", "1000", "20", "6", PAUSE, "dash", PAUSE, "0", "0", "0", PAUSE, "0", "40", "2"),
        Play(p.SURVEY_Q1),
    ]
    f.feed(keys("3"))
    request = f.hangup()  # hung up before the second answer: the score is kept
    assert isinstance(request, RecordSurvey)
    assert (request.answer.kind, request.answer.callback_id) == ("callback", 42)
    assert request.answer.ticket_reference == "2026-000042"


def test_a_survey_store_failure_still_thanks_the_caller() -> None:
    f = flow("survey")
    f.start()
    f.feed(keys("1"))
    f.feed(keys("1"))
    end = f.feed(Failed("db"))
    assert isinstance(end, FlowEnd) and end.say == (Play(p.SURVEY_THANKS),)


def test_english_callers_hear_english_number_rules() -> None:
    f = flow("masa_sandalye", event="düğün", language="en")
    confirm = table_chair_until_confirm(f)
    # "June fifteenth, twenty twenty-six"
    assert sounds(confirm)[1:5] == said("callcenter/month-06", "ord-15", "20", "20")
    assert sounds(confirm)[5] == Play("callcenter/say/6")
    f.feed(keys("1"))
    read = f.feed(Done("2026-004217"))
    assert sounds(read)[1:-1] == said(
        "20", "20", "6", PAUSE, "dash", PAUSE, "0", "0", "4", PAUSE, "2", "1", "7"
    )

"""AGI wire format, the simulated Asterisk caller, the call-back dialer's pure parts, metrics."""

from __future__ import annotations

import shlex
from datetime import datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from callcenter.ivr.agi import AgiError, AgiReply, digit_of, parse_env, parse_reply, quote
from callcenter.ivr.client import _answer, _Caller, agi_environment, user_events, variables_set
from callcenter.ivr.dialer import dial_number, originate_action, within_hours
from callcenter.ivr.menu import CallbackConfig
from callcenter.ivr.server import call_info
from callcenter.ivr.stats import IvrCollector, IvrStats
from callcenter.ivr.surveys import Callback


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("200 result=0 endpos=16000", AgiReply(200, "0", "", "endpos=16000")),
        ("200 result=49 endpos=1200", AgiReply(200, "49", "", "endpos=1200")),
        ("200 result= (timeout)", AgiReply(200, "", "timeout", "")),
        ("200 result=123 (timeout)", AgiReply(200, "123", "timeout", "")),
        ("200 result=-1", AgiReply(200, "-1", "", "")),
        ("200 result=1", AgiReply(200, "1", "", "")),
        ("510 Invalid or unknown command", AgiReply(510, "", "", "Invalid or unknown command")),
        ("100 result=0 Trying...", AgiReply(100, "0", "", "Trying...")),
    ],
)
def test_parse_reply(line: str, reply: AgiReply) -> None:
    assert parse_reply(line) == reply


@pytest.mark.parametrize("line", ["", "hello", "HTTP/1.1 200 OK", "20 result=1", "\x00\x01"])
def test_garbage_is_not_a_reply(line: str) -> None:
    with pytest.raises(AgiError):
        parse_reply(line)


def test_parse_env_keeps_agi_keys_and_survives_bad_bytes() -> None:
    block = b"agi_network: yes\nagi_calleridname: Ay\xc5\x9fe\nagi_arg_1: a: b\nnoise\nx: y\n\n"
    assert parse_env(block) == {
        "agi_network": "yes",
        "agi_calleridname": "Ayşe",
        "agi_arg_1": "a: b",
    }
    assert parse_env(b"agi_callerid: \xff\xfe\n\n")["agi_callerid"] == "\ufffd\ufffd"


@pytest.mark.parametrize(
    "value", ["", "plain", 'a "quoted" \\ value', "Düğün / nişan", "two\nlines"]
)
def test_quote_round_trips_through_an_agi_style_parser(value: str) -> None:
    assert shlex.split(f"SET VARIABLE X {quote(value)}")[3] == value.replace("\n", " ")


def test_digit_of() -> None:
    assert [digit_of(r) for r in ("0", "49", "35", "42", "-1", "", "65")] == [
        "",
        "1",
        "#",
        "*",
        "",
        "",
        "",
    ]


def test_call_info_from_the_environment() -> None:
    from datetime import date

    env = agi_environment("survey", ["1795884499.0", "genel", "Zeynep Kaya"], callerid="unknown")
    call = call_info(env, date(2026, 6, 1))
    assert call.linkedid == "1795884499.0" and call.caller_number is None
    assert call.args == ("1795884499.0", "genel", "Zeynep Kaya")
    assert call_info(agi_environment("ivr"), date(2026, 6, 1)).linkedid == "1795884499.0"


def test_the_simulated_caller_types_entries_as_asterisk_would_deliver_them() -> None:
    caller = _Caller(["2", "15", "", "7"])
    stream = 'STREAM FILE "callcenter/main-menu" "0123456789*#"'
    assert _answer(stream, caller) == b"200 result=50 endpos=8000\n"  # "2" interrupts
    assert _answer(stream, caller) == b"200 result=49 endpos=8000\n"  # "1" of the next entry
    assert _answer("WAIT FOR DIGIT 3000", caller) == b"200 result=53\n"
    assert _answer("WAIT FOR DIGIT 3000", caller) == b"200 result=0\n"  # end of the entry
    assert _answer(stream, caller) == b"200 result=0 endpos=8000\n"  # silence: plays through
    assert _answer('SAY DIGITS 123 "0123456789*#"', caller) == b"200 result=0\n"
    assert _answer("WAIT FOR DIGIT 5000", caller) == b"200 result=0\n"  # silence times out
    assert _answer('STREAM FILE "x" ""', caller) == b"200 result=0 endpos=8000\n"  # not listening
    assert _answer("WAIT FOR DIGIT 5000", caller) == b"200 result=55\n"
    assert _answer("WAIT FOR DIGIT 5000", caller) == b"200 result=0\n"
    assert _answer(stream, caller) is None  # nothing more to say: the caller hangs up
    assert _answer('SET VARIABLE CC_X "1"', caller) == b"200 result=1\n"
    assert _answer('EXEC UserEvent "X,Result: y"', caller) == b"200 result=0\n"
    assert _answer("GET FULL VARIABLE x", caller).startswith(b"510")  # type: ignore[union-attr]


def test_variables_and_events_from_commands() -> None:
    commands = [
        'SET VARIABLE CC_IVR_CHOICE "Düğün / nişan"',
        'SET VARIABLE CC_TICKET "2026-000001"',
        'SET VARIABLE CC_TICKET "2026-000002"',
        'EXEC UserEvent "CallcenterIvr,Flow: masa_sandalye,Result: ticket_opened"',
    ]
    assert variables_set(commands) == {
        "CC_IVR_CHOICE": "Düğün / nişan",
        "CC_TICKET": "2026-000002",
    }
    assert user_events(commands) == [
        {"UserEvent": "CallcenterIvr", "Flow": "masa_sandalye", "Result": "ticket_opened"}
    ]


def test_dial_number_for_the_trunk() -> None:
    assert dial_number("+905321234567") == "05321234567"
    assert dial_number("05321234567") == "05321234567"
    assert dial_number("+4930123456") == "004930123456"
    assert dial_number("abc 123") == "123"


def test_within_hours_on_working_days() -> None:
    config = CallbackConfig(hours=(10, 19))
    assert within_hours(datetime(2026, 6, 1, 10, 0), config)  # a Monday
    assert not within_hours(datetime(2026, 6, 1, 19, 0), config)
    assert not within_hours(datetime(2026, 6, 1, 9, 59), config)
    assert not within_hours(datetime(2026, 6, 6, 12, 0), config)  # a Saturday


def test_originate_action() -> None:
    config = CallbackConfig(caller_id='"Sancaktepe" <4441000>')
    action = originate_action(Callback(7, "+905321234567", 1, "2026-000007"), config)
    assert action == {
        "Action": "Originate",
        "Channel": "PJSIP/05321234567@trunk",
        "Context": "survey-callback",
        "Exten": "s",
        "Priority": "1",
        "Timeout": "30000",
        "Async": "true",
        "Variable": ["CC_CALLBACK_ID=7", "CC_TICKET=2026-000007"],
        "CallerID": '"Sancaktepe" <4441000>',
    }


def test_the_collector_exports_bounded_counters() -> None:
    stats = IvrStats(active=2)
    stats.sessions["ivr"] += 3
    stats.broken["header_incomplete"] += 1
    stats.flow_results[("masa_sandalye", "ticket_opened")] += 1
    stats.surveys[("after_call", 4)] += 2
    registry = CollectorRegistry()
    registry.register(IvrCollector(stats))
    text = generate_latest(registry).decode()
    assert "callcenter_ivr_sessions_active 2.0" in text
    assert 'callcenter_ivr_sessions_total{route="ivr"} 3.0' in text
    assert 'callcenter_ivr_broken_sessions_total{reason="header_incomplete"} 1.0' in text
    assert 'callcenter_ivr_broken_sessions_total{reason="timeout"} 0.0' in text
    assert (
        'callcenter_ivr_flow_results_total{flow="masa_sandalye",result="ticket_opened"} 1.0' in text
    )
    assert 'callcenter_ivr_surveys_total{kind="after_call",score="4"} 2.0' in text

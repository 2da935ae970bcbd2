"""Logging set-up: phone numbers masked by default, JSON parses, context and stdlib logs merged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from callcenter.logs import configure_logging, mask_number, mask_numbers_processor, mask_value


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leaves structlog, the root logger and the context vars as the test found them."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.configure(**config)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("05321234567", "0532***4567"),
        ("+905321234567", "+9053***4567"),
        ("5321234567", "532***567"),
        ("2123456", "21***56"),  # 7 digits: at least three are always hidden
        ('"Ayşe Yılmaz" <05321234567>', '"Ayşe Yılmaz" <0532***4567>'),
        ("Local/05321234567@from-trunk;1", "Local/0532***4567@from-trunk;1"),
        ("05321234567,05559876543", "0532***4567,0555***6543"),
        ("tel:+905321234567.", "tel:+9053***4567."),
        # Not phone numbers: too short, ids, timestamps, channel suffixes, glued to words.
        ("123456", "123456"),
        ("4441000", "44***00"),  # a 7-digit DID is indistinguishable from a number: masked
        ("1718030610.10", "1718030610.10"),
        ("Uniqueid 1795884362.123456", "Uniqueid 1795884362.123456"),
        ("Local/1001@agents-00000012;1", "Local/1001@agents-00000012;1"),
        ("callers-0000000a;2", "callers-0000000a;2"),
        ("ext05321234567", "ext05321234567"),
        ("", ""),
    ],
)
def test_mask_number(text: str, masked: str) -> None:
    assert mask_number(text) == masked


def test_mask_value_walks_nested_values_but_not_keys() -> None:
    value = {"05321234567": ["+905321234567", ("05321234567", 5321234567)], "n": None}
    assert mask_value(value) == {
        "05321234567": ["+9053***4567", ("0532***4567", 5321234567)],
        "n": None,
    }


def test_processor_masks_every_value() -> None:
    event = {"event": "call from 05321234567", "caller": {"num": "05321234567"}}
    out = mask_numbers_processor(None, "info", event)
    assert out == {"event": "call from 0532***4567", "caller": {"num": "0532***4567"}}


def test_json_output_parses_masks_numbers_and_merges_context() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    structlog.contextvars.bind_contextvars(server="pbx1", linkedid="1795884362.12", queue="genel")

    structlog.get_logger("callcenter.test").info(
        "caller joined 05321234567", caller={"number": "+905321234567"}, agent="1001"
    )

    (line,) = json_lines(stream)
    assert line["event"] == "caller joined 0532***4567"
    assert line["caller"] == {"number": "+9053***4567"}
    assert (line["server"], line["linkedid"], line["queue"], line["agent"]) == (
        "pbx1",
        "1795884362.12",
        "genel",
        "1001",
    )
    assert line["level"] == "info"
    assert line["logger"] == "callcenter.test"
    assert "timestamp" in line
    assert "05321234567" not in stream.getvalue()


def test_numbers_are_visible_when_masking_is_off() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", mask_numbers=False, stream=stream)
    structlog.get_logger("t").info("caller", number="05321234567")
    assert json_lines(stream)[0]["number"] == "05321234567"


def test_exception_text_is_masked() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    try:
        raise ValueError("no such subscriber 05321234567")
    except ValueError:
        structlog.get_logger("t").exception("lookup failed")

    (line,) = json_lines(stream)
    assert "ValueError: no such subscriber 0532***4567" in str(line["exception"])
    assert "05321234567" not in stream.getvalue()


def test_stdlib_loggers_go_through_the_same_chain() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    structlog.contextvars.bind_contextvars(server="pbx1")

    logging.getLogger("panoramisk.manager").warning("dialing %s", "05321234567")

    (line,) = json_lines(stream)
    assert line["event"] == "dialing 0532***4567"
    assert line["logger"] == "panoramisk.manager"
    assert line["server"] == "pbx1"


def test_level_filters_both_structlog_and_stdlib() -> None:
    stream = io.StringIO()
    configure_logging("json", "warning", stream=stream)
    structlog.get_logger("t").info("hidden")
    logging.getLogger("lib").info("hidden too")
    structlog.get_logger("t").warning("shown")
    assert [line["event"] for line in json_lines(stream)] == ["shown"]


def test_console_format_is_readable_and_masked() -> None:
    stream = io.StringIO()
    configure_logging("console", "debug", stream=stream)
    structlog.get_logger("t").debug("caller", number="05321234567")
    text = stream.getvalue()
    assert "caller" in text and "number=0532***4567" in text
    assert "\x1b[" not in text  # no colours when the stream is not a terminal


def test_reconfiguring_replaces_the_handler_instead_of_adding_one() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", stream=first)
    configure_logging("json", "info", stream=second)
    structlog.get_logger("t").info("once")
    assert first.getvalue() == ""
    assert len(json_lines(second)) == 1


def test_capture_logs_still_works_after_configuration() -> None:
    configure_logging("json", "info", stream=io.StringIO())
    with capture_logs() as logs:
        structlog.get_logger("t").info("seen", agent="1001")
    assert logs == [{"event": "seen", "agent": "1001", "log_level": "info"}]


@pytest.mark.parametrize(("fmt", "level"), [("xml", "info"), ("json", "loud")])
def test_bad_settings_are_rejected(fmt: str, level: str) -> None:
    with pytest.raises(ValueError):
        configure_logging(fmt, level, stream=io.StringIO())

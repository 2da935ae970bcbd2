"""KVKK: no caller's number in a /metrics scrape or in the service's logs after a trace replay.

tests/unit/test_metrics.py checks the exporter's label values directly; here the whole app is
served over HTTP and every byte of the scrape is searched, and the log lines are the rendered
ones (the service's own logging set-up), not the event dicts before masking.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import aiohttp
import pytest
import structlog

from callcenter.app import Service
from callcenter.config import Settings
from callcenter.events import parse_message
from callcenter.logs import configure_logging
from callcenter.metrics import http as metrics_http
from callcenter.web import wallboard
from tests.metrics_support import caller_numbers, parse, serving, trace_messages

SCENARIOS = ("concurrent", "transfer", "ivr_to_queue", "midcall_resync", "queue_timeout")
# Bad input that makes the service log text around a number (garbage, unknown calls, orphans).
NOISY = [
    "CallerIDNum 05321110001 without a colon",
    "Event: Hangup\r\nChannel: PJSIP/05321110002-00000001\r\nUniqueid: 9.1\r\nLinkedid: 9.1",
    "Event: AgentConnect\r\nQueue: genel\r\nCallerIDNum: 05321110003",
    "Event: QueueCallerJoin\r\nChannel: PJSIP/+905321110004-2\r\nUniqueid: 8.1\r\nQueue: genel",
]
NOISY_NUMBERS = {"05321110001", "05321110002", "05321110003", "905321110004"}


def _numbers() -> set[str]:
    numbers = set(NOISY_NUMBERS)
    for scenario in SCENARIOS:
        numbers |= caller_numbers(scenario)
    assert numbers
    return numbers


@pytest.fixture
def rendered_logs() -> Iterator[io.StringIO]:
    """The service's logging set-up (JSON, masking on, debug level) writing into a buffer."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    settings = Settings()
    configure_logging("json", "debug", settings.mask_numbers, stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        structlog.configure(**saved)


async def test_no_number_in_a_scrape_or_a_log_line_after_replays(
    rendered_logs: io.StringIO,
) -> None:
    service = Service(Settings(wallboard_requires_token=False))
    async with serving(service, [metrics_http.setup, wallboard.setup]) as base:
        for scenario in SCENARIOS:
            for ts, text in trace_messages(scenario):
                service.process("pbx1", parse_message(text), ts)
        for i, text in enumerate(NOISY):
            service.process("pbx1", parse_message(text), 1_800_000_000.0 + i)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 200
                scrape = await resp.text()
    numbers = _numbers()
    samples = parse(scrape)
    assert samples, "the scrape is empty"
    for (name, labels), _ in samples.items():
        for key, label in labels:
            assert not any(n in label for n in numbers), f"{name}{{{key}={label!r}}}"
    # Not in a label, and nowhere else in the exposition either (help texts, exemplars).
    assert not any(n in scrape for n in numbers)

    lines = [json.loads(line) for line in rendered_logs.getvalue().splitlines() if line]
    events = {line["event"] for line in lines}
    # The noisy input was logged (so masking had something to do) ...
    assert {"ami_garbage", "ami_bad_event", "call_anomaly"} <= events, events
    text = rendered_logs.getvalue()
    # ... and no digit run of a caller's number survived it.
    for number in numbers:
        assert number not in text, number
    assert re.search(r"0532\*\*\*000[1-4]", text), "expected masked numbers in the log"

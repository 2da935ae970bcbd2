"""The survey after the agent call must not overwrite the IVR's record (issue 11, fix 5).

Real FastAGI sessions (the IVR, then the survey on the same channel after the agent hung up)
run over sockets; the variables and UserEvents they set become the AMI events Asterisk emits
for them, replayed inside a real Asterisk trace (``agent_hangup``: the agent hangs up first,
the case that sends the caller to the survey): before the caller joins the queue for the IVR,
between AgentComplete and the caller's hang-up for the survey.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from callcenter import events
from callcenter.ivr.client import agi_environment, run_agi_session, user_events, variables_set
from callcenter.ivr.desk import MemoryDesk
from callcenter.ivr.menu import load_menu
from callcenter.ivr.server import SURVEY_EVENT, USER_EVENT, FastAgiServer
from callcenter.model import Call, CallEnded
from callcenter.pipeline import Pipeline
from callcenter.replay import iter_trace, trace_t0

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "tests" / "traces" / "agent_hangup" / "ami.jsonl.gz"
TODAY = date(2026, 12, 1)
# What the IVR's trail is made of: a post-call flow must never write these.
TRAIL = re.compile(r"^CC_(IVR_\w+|QUEUE|FLOW|CATEGORY|TICKET\w*|SURVEY)$")


@pytest.fixture
async def agi() -> AsyncIterator[tuple[FastAgiServer, MemoryDesk]]:
    desk = MemoryDesk()
    await desk.open_ticket(
        category="sosyal-yardim", caller_number=None, channel="phone", linkedid=None,
        note="", fields={},
    )  # fmt: skip
    server = FastAgiServer(load_menu(), desk, today=lambda: TODAY, reply_timeout=5.0)
    await server.start("127.0.0.1", 0)
    try:
        yield server, desk
    finally:
        await server.close()


def _caller_headers(messages: list[tuple[float, str]]) -> dict[str, str]:
    """The caller channel's identity headers, as Asterisk puts them on its events."""
    for _, text in messages:
        h = events.parse_message(text)
        if h.get("Event") == "QueueCallerJoin":
            keys = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                    "Language", "Context", "Exten", "Priority", "Uniqueid", "Linkedid")  # fmt: skip
            return {k: h[k] for k in keys if k in h}
    raise AssertionError("no caller in the trace")


def _as_ami(commands: list[str], channel: dict[str, str]) -> list[dict[str, str]]:
    """The AMI events Asterisk emits for a session's SET VARIABLE and EXEC UserEvent."""
    out = [
        {"Event": "VarSet", **channel, "Variable": name, "Value": value}
        for name, value in variables_set(commands).items()
        if "(" not in name  # CHANNEL(language) is a function: no VarSet
    ]
    out += [{"Event": "UserEvent", **channel, **h} for h in user_events(commands)]
    return out


def replay_with(ivr: list[str], survey: list[str]) -> Call:
    """The agent_hangup trace with the two sessions' events where Asterisk emits them."""
    with gzip.open(TRACE, "rt", encoding="utf-8") as fh:
        messages = list(iter_trace(fh, trace_t0(TRACE) or 0.0))
    channel = _caller_headers(messages)
    pipe = Pipeline()
    ended: list[Call] = []
    for ts, text in messages:
        name = events.parse_message(text).get("Event")
        injected = []
        if name == "QueueCallerJoin":
            injected = _as_ami(ivr, channel)
        for headers in injected:
            pipe.feed_headers("pbx1", headers, ts - 0.001)
        effects = pipe.feed_text("pbx1", text, ts)
        if name == "AgentComplete":
            for headers in _as_ami(survey, {**channel, "Context": "survey"}):
                effects += pipe.feed_headers("pbx1", headers, ts)
        ended += [e.call for e in effects if isinstance(e, CallEnded)]
    [call] = [c for c in ended if c.linkedid == channel["Linkedid"]]
    return call


@pytest.mark.parametrize(
    ("entries", "result"),
    [
        (["3", "1", "0"], "status_read"),  # status of 2026-000001, then 0 for an agent
        (["2", "1", "%DATE%", "16", "1", "", "0"], "ticket_opened"),  # table-and-chair, then 0
    ],
)
async def test_the_survey_keeps_the_ivrs_result_end_and_queue(
    agi: tuple[FastAgiServer, MemoryDesk], entries: list[str], result: str
) -> None:
    server, _ = agi
    when = (TODAY + timedelta(days=10)).strftime("%d%m%Y")
    entries = [when if e == "%DATE%" else e for e in entries]
    linkedid = "1795884404.0"
    ivr = await run_agi_session(
        "127.0.0.1", server.port, agi_environment("ivr", [linkedid]), entries
    )
    assert variables_set(ivr)["CC_IVR_END"] == "queue"
    # The caller says nothing to the survey: three silences, "survey_no_answer".
    env = agi_environment("survey", [linkedid, "genel", "Zeynep Kaya"], language="tr")
    survey = await run_agi_session("127.0.0.1", server.port, env, ["", "", ""])
    said = variables_set(survey)
    assert not [name for name in said if TRAIL.match(name)], said
    assert said["CC_SURVEY_RESULT"] == "survey_no_answer" and said["CC_SURVEY_END"] == "hangup"
    assert [e["UserEvent"] for e in user_events(survey)] == [SURVEY_EVENT]
    assert [e["UserEvent"] for e in user_events(ivr)] == [USER_EVENT]

    call = replay_with(ivr, survey)
    assert call.ivr_result == result
    assert call.ivr_vars["CC_IVR_END"] == "queue"
    assert call.ivr_vars["CC_IVR_RESULT"] == result
    assert call.ivr_vars["CC_QUEUE"] == "genel"
    assert call.ivr_vars["CC_SURVEY_RESULT"] == "survey_no_answer"
    # Asterisk's own record of the visit is untouched by either session.
    [visit] = call.visits
    assert (visit.queue, visit.outcome, visit.hangup_by) == ("genel", "answered", "agent")


def test_the_old_names_would_have_overwritten_the_record() -> None:
    """The replay bites: a survey that wrote the IVR's names replaces the IVR's result."""
    ivr = ['SET VARIABLE CC_IVR_END "queue"', 'SET VARIABLE CC_IVR_RESULT "status_read"',
           'EXEC UserEvent "CallcenterIvr,Flow: request_status,Result: status_read"']  # fmt: skip
    survey = ['SET VARIABLE CC_IVR_END "hangup"',
              'EXEC UserEvent "CallcenterIvr,Flow: survey,Result: survey_no_answer"']  # fmt: skip
    call = replay_with(ivr, survey)
    assert (call.ivr_result, call.ivr_vars["CC_IVR_END"]) == ("survey_no_answer", "hangup")
    renamed = [survey[0].replace("CC_IVR_END", "CC_SURVEY_END"),
               survey[1].replace("CallcenterIvr", SURVEY_EVENT)]  # fmt: skip
    call = replay_with(ivr, renamed)
    assert (call.ivr_result, call.ivr_vars["CC_IVR_END"]) == ("status_read", "queue")


def _context(conf: str, name: str) -> str:
    return conf.split(f"[{name}]", 1)[1].split("\n[", 1)[0]


def test_a_transfer_does_not_rewrite_the_ivrs_queue() -> None:
    conf = (ROOT / "asterisk_conf" / "extensions.conf").read_text(encoding="utf-8")
    code = "\n".join(line.split(";", 1)[0] for line in conf.splitlines())
    # CC_QUEUE is the IVR's choice (and the fallback's, when the IVR made none); the queue an
    # agent transfers to is CC_TRANSFER_QUEUE, so the caller's record keeps what they chose.
    for context in ("agent-phones", "transfer-queue"):
        assert "CC_QUEUE" not in _context(code, context), context
    phones = _context(code, "agent-phones")
    assert phones.count("Set(CC_TRANSFER_QUEUE=") == 5
    assert "Queue(${CC_TRANSFER_QUEUE}," in _context(code, "transfer-queue")

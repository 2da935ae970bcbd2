"""Self-service flows as pure state machines: request status, table-and-chair, survey.

A flow answers each reply with a ``Step`` (say, then ask or request) or, when it is over,
with a ``FlowEnd`` that tells the menu engine what happened and where the caller goes next
(an agent, back to the menu, or goodbye). The agent key is handled by the engine; a flow
sees every other key. Dates come from ``CallInfo.today`` (the driver's clock), never a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Protocol

from callcenter.ivr import prompts as p
from callcenter.ivr import say
from callcenter.ivr.menu import FlowConfig
from callcenter.ivr.steps import (
    Ask,
    CallInfo,
    Done,
    Failed,
    Keys,
    LookupStatus,
    OpenTicket,
    Play,
    RecordSurvey,
    Reply,
    Request,
    Sound,
    Step,
    SurveyAnswer,
)

Variables = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class FlowEnd:
    """A flow is over: its result, where the caller goes next, and what to say first."""

    result: str  # becomes the call's ivr_result (UserEvent Result) and CC_IVR_RESULT
    then: str  # agent | menu | hangup
    say: tuple[Sound, ...] = ()
    variables: Variables = ()


class Flow(Protocol):
    """What the engine needs from a flow."""

    config: FlowConfig

    def start(self) -> Step | FlowEnd:
        """The first step."""
        ...

    def feed(self, reply: Reply) -> Step | FlowEnd:
        """The next step after the caller's keys or a request's answer."""
        ...

    def hangup(self) -> Request | None:
        """What must still be done when the caller hangs up here (e.g. store answers)."""
        ...


def parse_reference(digits: str, today: date) -> str | None:
    """A keyed ticket reference: ten digits are YYYYNNNNNN, up to six are this year's number."""
    if not digits.isdigit():
        return None
    if len(digits) == 10:
        return f"{digits[:4]}-{digits[4:]}"
    if len(digits) <= 6 and int(digits) > 0:
        return f"{today.year}-{int(digits):06d}"
    return None


def parse_event_date(digits: str, today: date, max_days_ahead: int) -> date | None:
    """A keyed date DDMMYYYY (or DDMM: the next such day), from today up to max_days_ahead."""
    if not digits.isdigit() or len(digits) not in (4, 8):
        return None
    day, month = int(digits[:2]), int(digits[2:4])
    try:
        if len(digits) == 8:
            when = date(int(digits[4:]), month, day)
        else:
            when = date(today.year, month, day)
            if when < today:
                when = date(today.year + 1, month, day)
    except ValueError:
        return None
    if not today <= when <= today + timedelta(days=max_days_ahead):
        return None
    return when


def _plays(names: list[str]) -> tuple[Play, ...]:
    """Building-block sounds (callcenter.ivr.say) as steps to play, in order."""
    return tuple(Play(name) for name in names)


class _Base:
    """Attempt counting shared by the flows."""

    def __init__(
        self,
        config: FlowConfig,
        call: CallInfo,
        roles: Mapping[str, str],
        max_attempts: int,
        params: Mapping[str, str],
    ) -> None:
        self.config = config
        self.call = call
        self.roles = roles
        self.max_attempts = max(1, max_attempts)
        self.params = params
        self.attempts = 0
        # Numbers, dates and references are said by this language's rules (callcenter.ivr.say).
        self.language = params.get("language") or call.language or "tr"
        self.setup()

    def setup(self) -> None:
        """Prepares the flow's own state from its settings."""

    def invalid(self, keys: Keys) -> Play:
        """The prompt for silence or a wrong entry."""
        return Play(self.roles["timeout" if keys.timed_out else "invalid"])

    def retry(self, keys: Keys, again: Step, give_up: str) -> Step | FlowEnd:
        """Asks again after a wrong or missing entry, or gives up to an agent."""
        self.attempts += 1
        if self.attempts >= self.max_attempts:
            return FlowEnd(give_up, "agent")
        return replace(again, say=(self.invalid(keys), *again.say))

    def hangup(self) -> Request | None:
        """Nothing to save by default."""
        return None


class RequestStatus(_Base):
    """The caller keys a ticket reference and hears its status."""

    def setup(self) -> None:
        self.reference: str | None = None
        statuses = self.config.settings.get("statuses", {})
        self.statuses: Mapping[str, str] = statuses if isinstance(statuses, Mapping) else {}

    def ask(self, *before: Sound) -> Step:
        return Step(
            say=(*before, Play(p.STATUS_ENTER)),
            ask=Ask(max_digits=10, timeout_s=8.0, interdigit_s=4.0),
        )

    def start(self) -> Step | FlowEnd:
        return self.ask()

    def feed(self, reply: Reply) -> Step | FlowEnd:
        if isinstance(reply, Keys):
            reference = parse_reference(reply.digits, self.call.today)
            if reference is None:
                return self.retry(reply, self.ask(), "no_reference")
            self.reference = reference
            return Step(request=LookupStatus(reference))
        if isinstance(reply, Failed) or self.reference is None:
            return FlowEnd("lookup_failed", "agent", (Play(self.roles["technical_problem"]),))
        if reply.value is None:
            self.attempts += 1
            if self.attempts >= self.max_attempts:
                return FlowEnd("reference_not_found", "agent", (Play(p.STATUS_NOT_FOUND),))
            return self.ask(Play(p.STATUS_NOT_FOUND))
        status = reply.value
        sound = self.statuses.get(status) or self.statuses.get("*", p.STATUS_NOT_FOUND)
        return FlowEnd(
            "status_read",
            "menu",
            (
                Play(p.STATUS_INTRO),
                *_plays(say.reference(self.reference, self.language)),
                Play(sound),
            ),
            (("CC_TICKET", self.reference), ("CC_TICKET_STATUS", status)),
        )


class TableChair(_Base):
    """Table-and-chair request: date and neighbourhood by keypad, read back, confirm, ticket."""

    MAX_CORRECTIONS = 2
    MAX_REPEATS = 2

    def setup(self) -> None:
        self.state = "date"
        self.when: date | None = None
        self.code: str | None = None
        self.reference: str | None = None
        self.corrections = 0
        self.repeats = 0
        hoods = self.config.settings.get("neighbourhoods", {})
        self.neighbourhoods: Mapping[str, str] = hoods if isinstance(hoods, Mapping) else {}
        self.max_days = int(self.config.settings.get("max_days_ahead", 60))

    def ask_date(self, *before: Sound) -> Step:
        self.state = "date"
        return Step(
            say=(*before, Play(p.TC_ENTER_DATE)),
            ask=Ask(max_digits=8, timeout_s=10.0, interdigit_s=4.0),
        )

    def ask_neighbourhood(self, *before: Sound) -> Step:
        self.state = "neighbourhood"
        return Step(
            say=(*before, Play(p.TC_ENTER_NEIGHBOURHOOD)),
            ask=Ask(max_digits=2, timeout_s=8.0, interdigit_s=3.0),
        )

    def ask_confirm(self) -> Step:
        assert self.when is not None and self.code is not None
        self.state = "confirm"
        return Step(
            say=(
                Play(p.TC_READBACK),
                *_plays(say.say_date(self.when, self.language)),
                Play(p.neighbourhood(self.code)),
                Play(p.TC_CONFIRM),
            ),
            ask=Ask(max_digits=1, timeout_s=6.0),
        )

    def read_reference(self) -> Step:
        assert self.reference is not None
        self.state = "reference"
        return Step(
            say=(
                Play(p.TC_OPENED),
                *_plays(say.reference(self.reference, self.language)),
                Play(p.TC_REPEAT),
            ),
            ask=Ask(max_digits=1, timeout_s=5.0),
            variables=(("CC_TICKET", self.reference),),
        )

    def neighbourhood_list(self) -> tuple[Sound, ...]:
        said: list[Sound] = []
        for code in sorted(self.neighbourhoods):
            said += [*_plays(say.number(int(code), self.language)), Play(p.neighbourhood(code))]
        return tuple(said)

    def start(self) -> Step | FlowEnd:
        return self.ask_date()

    def feed(self, reply: Reply) -> Step | FlowEnd:
        if isinstance(reply, Failed):
            return FlowEnd("ticket_failed", "agent", (Play(self.roles["technical_problem"]),))
        if isinstance(reply, Done):
            self.reference = reply.value or ""
            return self.read_reference()
        return getattr(self, f"_on_{self.state}")(reply)

    def _on_date(self, keys: Keys) -> Step | FlowEnd:
        when = parse_event_date(keys.digits, self.call.today, self.max_days)
        if when is None:
            if keys.timed_out:
                return self.retry(keys, self.ask_date(), "no_date")
            return self.retry(keys, self.ask_date(Play(p.TC_INVALID_DATE)), "invalid_date")
        self.when = when
        return self.ask_neighbourhood()

    def _on_neighbourhood(self, keys: Keys) -> Step | FlowEnd:
        if keys.digits == "*":
            return self.ask_neighbourhood(*self.neighbourhood_list())
        code = f"{int(keys.digits):02d}" if keys.digits.isdigit() else ""
        if code not in self.neighbourhoods:
            invalid = self.ask_neighbourhood(Play(p.TC_INVALID_NEIGHBOURHOOD))
            return self.retry(keys, invalid, "invalid_neighbourhood")
        self.code = code
        return self.ask_confirm()

    def _on_confirm(self, keys: Keys) -> Step | FlowEnd:
        assert self.when is not None and self.code is not None
        if keys.digits == "1":
            name = self.neighbourhoods[self.code]
            event = self.params.get("event", "")
            note = f"IVR masa-sandalye talebi: {event} {self.when.isoformat()}, {name} Mahallesi"
            fields = (
                ("event_date", self.when.isoformat()),
                ("neighbourhood", name),
                ("neighbourhood_code", self.code),
                ("event", event),
                ("language", self.params.get("language", "")),
            )
            self.state = "opening"
            return Step(request=OpenTicket(self.config.category, note.replace("  ", " "), fields))
        if keys.digits == "2":
            self.corrections += 1
            if self.corrections > self.MAX_CORRECTIONS:
                return FlowEnd("too_many_corrections", "agent")
            return self.ask_date()
        return self.retry(keys, self.ask_confirm(), "not_confirmed")

    def _on_reference(self, keys: Keys) -> Step | FlowEnd:
        if keys.digits == "1" and self.repeats < self.MAX_REPEATS:
            self.repeats += 1
            return self.read_reference()
        assert self.reference is not None
        return FlowEnd("ticket_opened", "menu", variables=(("CC_TICKET", self.reference),))


class Survey(_Base):
    """Satisfaction survey: a 1-5 score and an optional yes/no second question."""

    def setup(self) -> None:
        self.state = "score"
        self.score: int | None = None
        self.recorded = False
        self.second = bool(self.config.settings.get("second_question", True))
        self.kind = self.params.get("kind", "after_call")

    def ask_score(self, *before: Sound) -> Step:
        self.state = "score"
        return Step(say=(*before, Play(p.SURVEY_Q1)), ask=Ask(max_digits=1, timeout_s=6.0))

    def intro(self) -> tuple[Sound, ...]:
        reference = self.params.get("ticket_reference", "")
        if self.kind == "callback" and reference:
            return (Play(p.SURVEY_CALLBACK_INTRO), *_plays(say.reference(reference, self.language)))
        return (Play(p.SURVEY_INTRO),)

    def answer(self, resolved: bool | None) -> SurveyAnswer:
        assert self.score is not None
        callback = self.params.get("callback_id", "")
        return SurveyAnswer(
            kind=self.kind,
            score=self.score,
            resolved=resolved,
            language=self.params.get("language", "tr"),
            caller_number=self.call.caller_number,
            linkedid=self.call.linkedid or None,
            queue=self.params.get("queue") or None,
            agent=self.params.get("agent") or None,
            ticket_reference=self.params.get("ticket_reference") or None,
            callback_id=int(callback) if callback.isdigit() else None,
        )

    def record(self, resolved: bool | None) -> Step:
        self.state = "recording"
        self.recorded = True
        return Step(request=RecordSurvey(self.answer(resolved)))

    def start(self) -> Step | FlowEnd:
        return self.ask_score(*self.intro())

    def feed(self, reply: Reply) -> Step | FlowEnd:
        thanks = (Play(p.SURVEY_THANKS),)
        if isinstance(reply, Done):
            return FlowEnd("survey_completed", "hangup", thanks)
        if isinstance(reply, Failed):
            return FlowEnd("survey_not_stored", "hangup", thanks)
        if self.state == "score":
            if reply.digits in ("1", "2", "3", "4", "5"):
                self.score = int(reply.digits)
                if not self.second:
                    return self.record(None)
                self.state = "resolved"
                return Step(say=(Play(p.SURVEY_Q2),), ask=Ask(max_digits=1, timeout_s=6.0))
            self.attempts += 1
            if self.attempts >= self.max_attempts:
                return FlowEnd("survey_no_answer", "hangup", (Play(self.roles["goodbye"]),))
            return self.ask_score(self.invalid(reply))
        # The second question is optional: any other key or silence skips it.
        return self.record({"1": True, "2": False}.get(reply.digits))

    def hangup(self) -> Request | None:
        """Stores the score if the caller hung up before the (optional) second answer."""
        if self.score is not None and not self.recorded:
            self.recorded = True
            return RecordSurvey(self.answer(None))
        return None


_KINDS: dict[str, type[RequestStatus] | type[TableChair] | type[Survey]] = {
    "request_status": RequestStatus,
    "table_chair": TableChair,
    "survey": Survey,
}


def make_flow(
    config: FlowConfig,
    call: CallInfo,
    roles: Mapping[str, str],
    max_attempts: int,
    params: Mapping[str, str] | None = None,
) -> Flow:
    """Builds the flow a menu option or an AGI route asked for."""
    return _KINDS[config.kind](config, call, roles, max_attempts, dict(params or {}))

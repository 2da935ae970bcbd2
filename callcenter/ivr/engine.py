"""Menu navigation as a pure state machine: one ``IvrSession`` per call.

It plays menus, reads keys, counts silences and wrong keys (then sends the caller to an agent
or says goodbye, as the menu file says), keeps "0 for an agent" and "* for back" in every
menu, switches language, runs self-service flows and ends in a queue or a hang-up. It leaves
its trail in channel variables the call record and the screen-pop read:

``CC_LANG``, ``CC_IVR_PATH`` (menus visited, ``main>sosyal``), ``CC_IVR_CHOICE`` (what the
caller chose, as the menu labels it), ``CC_CATEGORY`` (the service category), ``CC_FLOW``,
``CC_IVR_RESULT`` (a flow's outcome, also sent as UserEvent ``Result``), ``CC_TICKET``,
``CC_QUEUE`` and ``CC_IVR_END`` (queue | hangup: what the dialplan does after the AGI),
``CC_SURVEY`` (1 when the caller gets the survey after the agent hangs up).

A session started on a flow (the survey after the agent call, the survey call-back) runs on a
channel whose trail is already written: it must not overwrite the IVR's decision, so it
writes ``CC_SURVEY_RESULT``, ``CC_SURVEY_END``, ``CC_SURVEY_FLOW``… instead
(``POST_CALL_NAMES``) and leaves ``CC_IVR_*``, ``CC_QUEUE`` and ``CC_TICKET`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from callcenter.ivr.flows import Flow, FlowEnd, make_flow
from callcenter.ivr.menu import IvrMenu, Menu, Option
from callcenter.ivr.steps import (
    Ask,
    CallInfo,
    Hangup,
    Keys,
    Play,
    Reply,
    Request,
    Sound,
    Step,
    ToQueue,
)

Variables = tuple[tuple[str, str], ...]

# What a post-call session writes instead of the IVR's trail (None: not written at all).
POST_CALL_NAMES: dict[str, str | None] = {
    "CC_FLOW": "CC_SURVEY_FLOW",
    "CC_IVR_RESULT": "CC_SURVEY_RESULT",
    "CC_IVR_END": "CC_SURVEY_END",
    "CC_IVR_CHOICE": "CC_SURVEY_CHOICE",
    "CC_IVR_PATH": None,
    "CC_CATEGORY": None,
    "CC_QUEUE": None,
    "CC_SURVEY": None,
    "CC_TICKET": None,
    "CC_TICKET_STATUS": None,
}


def _post_call(step: Step) -> Step:
    """The step with the IVR's trail variables renamed (or dropped) for a post-call flow."""
    renamed = []
    for name, value in step.variables:
        new = POST_CALL_NAMES.get(name, name)
        if new is not None:
            renamed.append((new, value))
    if tuple(renamed) == step.variables:
        return step
    return Step(
        say=step.say,
        ask=step.ask,
        request=step.request,
        end=step.end,
        variables=tuple(renamed),
        events=step.events,
    )


class IvrSession:
    """One caller's way through the menus; feed it replies, it answers with steps."""

    def __init__(
        self,
        menu: IvrMenu,
        call: CallInfo,
        *,
        flow: str | None = None,
        params: Mapping[str, str] | None = None,
        language: str | None = None,
    ) -> None:
        self.ivr = menu
        self.call = call
        # A survey after the agent call keeps the language the caller chose in the IVR.
        self.language = language if language in menu.languages else menu.default_language
        self.path: list[str] = []
        self.results: list[tuple[str, str]] = []  # (flow, result) of every flow run
        self.ended: Step | None = None
        self._entry = (flow, dict(params or {}))
        self.post_call = flow is not None  # a survey: the IVR's trail is not ours to write
        self._stack: list[Menu] = []
        self._menu: Menu | None = None
        self._attempts = 0
        self._flow: Flow | None = None
        self._flow_agent = True  # whether the flow's current question lets 0 reach an agent
        self._after_flow = False

    # ---- public API -----------------------------------------------------------------------

    def start(self) -> Step:
        """The first step: the language, then the start menu (or the flow asked for)."""
        variables = self._language_vars()
        name, params = self._entry
        if name is not None:
            return _post_call(self._start_flow(name, params, variables))
        return self._enter(self.ivr.menus[self.ivr.start], variables=variables)

    def feed(self, reply: Reply) -> Step:
        """The next step after the caller's keys or a request's answer."""
        step = self._feed(reply)
        return _post_call(step) if self.post_call else step

    def _feed(self, reply: Reply) -> Step:
        if self.ended is not None:
            return self.ended
        if self._flow is not None:
            if isinstance(reply, Keys) and self._flow_agent and reply.digits == self.ivr.agent_key:
                queue = self._flow.config.queue
                self._flow = None
                return self._to_queue(queue, variables=(("CC_IVR_CHOICE", "agent"),))
            return self._from_flow(self._flow.feed(reply))
        if not isinstance(reply, Keys):
            raise ValueError(f"a menu expects keys, not {reply!r}")
        if self._after_flow:
            return self._on_after_flow(reply)
        return self._on_menu_keys(reply)

    def hangup(self) -> list[Request]:
        """What must still be done now that the caller has hung up."""
        if self._flow is None:
            return []
        request = self._flow.hangup()
        self._flow = None
        return [request] if request is not None else []

    # ---- menus ----------------------------------------------------------------------------

    def _language_vars(self) -> Variables:
        return (("CHANNEL(language)", self.language), ("CC_LANG", self.language))

    def _enter(self, menu: Menu, before: tuple[Sound, ...] = (), variables: Variables = ()) -> Step:
        """Plays a menu (entering it or again) and waits for one key."""
        if self._menu is not menu:
            self._attempts = 0
            self.path.append(menu.name)
            variables = (*variables, ("CC_IVR_PATH", ">".join(self.path)))
        self._menu = menu
        self._after_flow = False
        return Step(
            say=(*before, Play(menu.prompt)),
            ask=Ask(max_digits=1, timeout_s=menu.timeout_s),
            variables=variables,
        )

    def _on_menu_keys(self, keys: Keys) -> Step:
        menu = self._menu
        assert menu is not None
        if keys.digits == self.ivr.agent_key:
            return self._to_queue(menu.agent_queue, menu.category, (("CC_IVR_CHOICE", "agent"),))
        if keys.digits == self.ivr.back_key:
            if self._stack:
                return self._enter(self._stack.pop())
            return self._enter(menu)
        option = menu.options.get(keys.digits) if keys.digits else None
        if option is None:
            return self._wrong(menu, keys)
        return self._choose(menu, option)

    def _wrong(self, menu: Menu, keys: Keys) -> Step:
        """Silence or a key the menu does not have: say so and ask again, or give up."""
        self._attempts += 1
        if self._attempts >= menu.max_attempts:
            if self.ivr.on_failure == "agent":
                choice = (("CC_IVR_CHOICE", "no_choice"),)
                return self._to_queue(menu.agent_queue, menu.category, choice)
            return self._hangup()
        role = "timeout" if keys.timed_out else "invalid"
        return self._enter(menu, (Play(self.ivr.roles[role]),))

    def _choose(self, menu: Menu, option: Option) -> Step:
        choice: Variables = (("CC_IVR_CHOICE", option.label or option.target),)
        category = option.category or menu.category
        if option.action == "menu":
            self._stack.append(menu)
            return self._enter(self.ivr.menus[option.target])
        if option.action == "queue":
            return self._to_queue(option.target, category, choice)
        if option.action == "flow":
            params = {**option.params, "label": option.label}
            return self._start_flow(option.target, params, (*choice, ("CC_CATEGORY", category)))
        if option.action == "language":
            # The same key again (announced in the other language) goes back to the default.
            same = self.language == option.target
            self.language = self.ivr.default_language if same else option.target
            self._attempts = 0
            return self._enter(menu, variables=self._language_vars())
        return self._hangup()

    def _on_after_flow(self, keys: Keys) -> Step:
        if keys.digits == self.ivr.agent_key:
            return self._to_queue(self.ivr.agent_queue, variables=(("CC_IVR_CHOICE", "agent"),))
        if keys.digits == self.ivr.back_key:
            self._stack.clear()
            self._menu = None
            return self._enter(self.ivr.menus[self.ivr.start])
        return self._hangup()

    # ---- endings --------------------------------------------------------------------------

    def _to_queue(self, queue: str, category: str = "", variables: Variables = ()) -> Step:
        extra: Variables = (("CC_CATEGORY", category),) if category else ()
        survey = "1" if self.ivr.survey_after_call else "0"
        step = Step(
            say=(Play(self.ivr.roles["transfer"]),),
            end=ToQueue(queue),
            variables=(
                *variables,
                *extra,
                ("CC_QUEUE", queue),
                ("CC_SURVEY", survey),
                ("CC_IVR_END", "queue"),
            ),
        )
        self.ended = step
        return step

    def _hangup(self, say: tuple[Sound, ...] | None = None, variables: Variables = ()) -> Step:
        goodbye = (Play(self.ivr.roles["goodbye"]),) if say is None else say
        step = Step(say=goodbye, end=Hangup(), variables=(*variables, ("CC_IVR_END", "hangup")))
        self.ended = step
        return step

    # ---- flows ----------------------------------------------------------------------------

    def _start_flow(self, name: str, params: Mapping[str, str], variables: Variables) -> Step:
        config = self.ivr.flows[name]
        attempts = self._menu.max_attempts if self._menu else 3
        params = {**params, "language": self.language}
        self._flow = make_flow(config, self.call, self.ivr.roles, attempts, params)
        first = self._from_flow(self._flow.start())
        return Step(
            say=first.say,
            ask=first.ask,
            request=first.request,
            end=first.end,
            variables=(*variables, ("CC_FLOW", name), *first.variables),
            events=first.events,
        )

    def _from_flow(self, out: Step | FlowEnd) -> Step:
        if isinstance(out, Step):
            self._flow_agent = out.ask.agent if out.ask is not None else False
            return out
        flow = self._flow
        assert flow is not None
        self._flow = None
        self.results.append((flow.config.name, out.result))
        variables = (*out.variables, ("CC_IVR_RESULT", out.result))
        event = ((flow.config.name, out.result),)
        if out.then == "agent":
            step = self._to_queue(flow.config.queue, flow.config.category, variables)
            step = Step(
                say=(*out.say, *step.say), end=step.end, variables=step.variables, events=event
            )
        elif out.then == "hangup":
            step = self._hangup(out.say or None, variables)
            step = Step(say=step.say, end=step.end, variables=step.variables, events=event)
        else:
            self._after_flow = True
            return Step(
                say=(*out.say, Play(self.ivr.roles["after_flow"])),
                ask=Ask(max_digits=1, timeout_s=6.0),
                variables=variables,
                events=event,
            )
        self.ended = step
        return step

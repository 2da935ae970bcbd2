"""The simulated caller in the service's IVR: which keys to press, read from the menu file.

The traffic model says what a caller wants (a service category, by its Turkish name); here
the keys leading there are found in the menu file (:mod:`callcenter.ivr.menu`) and each prompt
the IVR plays gets the caller's answer: a menu key (pressed once the caller has heard it
announced), a ticket reference, an event date and a neighbourhood, a confirmation, or
silence. Some callers key 0 for an agent at once, some press a wrong key or switch language
first, some hang up while the menu plays. Prompt lengths come from their recorded text: they
are how simulated time passes in the IVR.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import MutableSequence
from dataclasses import dataclass
from datetime import date, timedelta

from callcenter.ivr import prompts as p
from callcenter.ivr import say
from callcenter.ivr.menu import IvrMenu, Menu, Option

# The traffic model's intents -> the ticket category codes the menu file uses.
CATEGORY_CODES = {
    "Bilgi ve yönlendirme": "bilgi-rehberlik",
    "Sosyal yardım": "sosyal-yardim",
    "Başvuru durumu": "bilgi-rehberlik",
    "Masa-sandalye": "masa-sandalye",
    "Çözüm ofisleri": "cozum-ofisi",
    "Depremzede başvuruları": "depremzede",
    "Şikâyet ve öneri": "sikayet-oneri",
    "CİMER / Açık Kapı": "cimer-acik-kapi",
    "Muhtarlık işleri": "muhtarlik",
}
# Intents served by a self-service flow rather than a queue: the flow kind to look for.
FLOW_KINDS = {"Başvuru durumu": "request_status", "Masa-sandalye": "table_chair"}
_CHARS_PER_S = 14.0  # an announcer reading Turkish prompts at a calm pace
_SAMPLE_RATE = 8000  # endpos= in STREAM FILE answers counts 8 kHz samples


@dataclass(frozen=True, slots=True)
class CallerMix:
    """How simulated callers behave in the IVR; every share is per call."""

    agent_p: float = 0.08  # key 0 for an agent at the first menu
    hangup_p: float = 0.03  # hang up while the first menu plays
    wrong_key_p: float = 0.05  # press a key the first menu does not have, then the right one
    english_p: float = 0.02  # switch the menu to English first
    after_flow_agent_p: float = 0.2  # after self-service, 0 for an agent (else hang up)
    known_reference_p: float = 0.7  # a status caller keys a reference read out earlier
    key_gap_s: tuple[float, float] = (0.3, 0.9)  # between two keys of one entry
    event_days: tuple[int, int] = (3, 40)  # a table-and-chair event this many days ahead


@dataclass(frozen=True, slots=True)
class Reaction:
    """A caller's answer to one prompt: the keys of the entry and when the first is pressed."""

    keys: str  # "" stays silent until the question times out
    after_s: float  # seconds of the prompt heard before the first key (its length: no barge-in)
    hangup: bool = False  # the caller hangs up after ``after_s`` instead


@dataclass(frozen=True, slots=True)
class Route:
    """The keys from the start menu to one option, by menu name."""

    keys: dict[str, str]
    option: Option
    menu: Menu


class MenuMap:
    """The menu file as callers use it: where each option is, and how long prompts last."""

    def __init__(self, menu: IvrMenu) -> None:
        self.menu = menu
        self.by_prompt = {m.prompt: name for name, m in menu.menus.items()}
        self.routes = self._routes()

    def _routes(self) -> list[Route]:
        """Every option reachable from the start menu, with the keys leading to it."""
        menus = self.menu.menus
        out: list[Route] = []
        todo: list[tuple[str, dict[str, str]]] = [(self.menu.start, {})]
        seen = {self.menu.start}
        while todo:
            name, keys = todo.pop(0)
            for key, option in menus[name].options.items():
                here = {**keys, name: key}
                out.append(Route(here, option, menus[name]))
                if option.action == "menu" and option.target not in seen:
                    seen.add(option.target)
                    todo.append((option.target, here))
        return out

    def route(self, intent: str | None, rng: random.Random) -> Route | None:
        """A way to what the caller wants (a flow or a queue of its category), or None."""
        kind = FLOW_KINDS.get(intent or "")
        flows = self.menu.flows
        if kind is not None:
            found = [
                r
                for r in self.routes
                if r.option.action == "flow" and flows[r.option.target].kind == kind
            ]
        else:
            code = CATEGORY_CODES.get(intent or "", "bilgi-rehberlik")
            found = [
                r
                for r in self.routes
                if r.option.action == "queue" and (r.option.category or r.menu.category) == code
            ]
        return rng.choice(found) if found else None

    def text(self, sound: str, language: str) -> str:
        """A prompt's recorded text in the language (Turkish, or any, if it has none)."""
        texts = self.menu.recordings.get(sound) or say.VOCABULARY.get(sound) or {}
        return texts.get(language) or texts.get(self.menu.default_language) or ""

    def seconds(self, sound: str, language: str) -> float:
        """How long a prompt plays: its text read aloud; a name or a month is short."""
        if sound == say.PAUSE:
            return say.PAUSE_S
        text = self.text(sound, language)
        if sound.startswith(say.PREFIX) and text:
            return round(max(0.4, len(text) / _CHARS_PER_S), 3)  # one number word
        if text:
            return round(max(1.0, len(text) / _CHARS_PER_S), 3)
        return 1.2 if sound.startswith("callcenter/mahalle-") else 1.5

    def key_heard_s(self, sound: str, language: str, key: str) -> float:
        """Seconds into a menu prompt by which a key has been announced ("… için 2'ye")."""
        text = self.text(sound, language)
        for pattern in (f"{key}'", f"press {key}"):
            at = text.find(pattern)
            if at >= 0:
                return round((at + len(pattern)) / _CHARS_PER_S, 3)
        return self.seconds(sound, language)


def say_seconds(verb: str, value: str) -> float:
    """How long SAY NUMBER (a few words) or SAY DIGITS (one word a digit) takes."""
    if verb == "SAY NUMBER":
        return round(0.6 + 0.3 * len(value.lstrip("-")), 3)
    return round(0.55 * max(1, len(value)), 3)


def endpos(seconds: float) -> int:
    """The sample offset STREAM FILE reports after ``seconds`` of a prompt."""
    return int(seconds * _SAMPLE_RATE)


class IvrCaller:
    """One caller in the IVR: decides each prompt's answer from what they want."""

    def __init__(
        self,
        menus: MenuMap,
        mix: CallerMix,
        rng: random.Random,
        *,
        intent: str | None,
        reaction_s: float,
        today: date,
        references: MutableSequence[str],
    ) -> None:
        self.menus = menus
        self.mix = mix
        self.rng = rng
        self.intent = intent
        self.reaction_s = reaction_s  # how long a caller takes to press once they know the key
        self.today = today
        self.references = references  # references read out to callers of this run
        self.route = menus.route(intent, rng)
        draw = rng.random()
        if self.route is None or draw < mix.agent_p:
            self.plan = "agent"
        elif draw < mix.agent_p + mix.hangup_p:
            self.plan = "hangup"
        else:
            self.plan = "route"
        draw = rng.random()
        self.detour = (
            "english"
            if draw < mix.english_p
            else "wrong"
            if draw < mix.english_p + mix.wrong_key_p
            else ""
        )
        self.language = menus.menu.default_language
        self.heard: list[str] = []
        self.menus_heard: Counter[str] = Counter()
        self.reference: str | None = None  # the reference this caller wrote down

    def key_gap(self) -> float:
        """Seconds between two keys of one entry."""
        return round(self.rng.uniform(*self.mix.key_gap_s), 3)

    def note_ticket(self, reference: str) -> None:
        """A caller whose table-and-chair request was opened writes its reference down.

        The IVR sets CC_TICKET just before it reads the reference out (from its own number
        prompts), after the caller confirmed the request.
        """
        if p.TC_CONFIRM in self.heard and self.reference is None:
            digits = "".join(ch for ch in reference if ch.isdigit())
            self.reference = digits
            self.references.append(digits)

    def hear(self, sound: str, seconds: float) -> Reaction | None:
        """The caller's answer to a prompt they may interrupt; None lets it play unanswered."""
        self.heard.append(sound)
        name = self.menus.by_prompt.get(sound)
        if name is not None:
            return self._menu(name, sound, seconds)
        agent = self.menus.menu.agent_key
        if sound == p.STATUS_ENTER:
            if p.STATUS_NOT_FOUND in self.heard:
                return Reaction(agent, seconds)  # not found once: ask a person instead
            return Reaction(self._reference(), seconds)
        if sound == p.TC_ENTER_DATE:
            if p.TC_INVALID_DATE in self.heard:
                return Reaction(agent, seconds)
            days = self.rng.randint(*self.mix.event_days)
            return Reaction(f"{self.today + timedelta(days=days):%d%m%Y}", seconds)
        if sound == p.TC_ENTER_NEIGHBOURHOOD:
            codes = self._neighbourhoods()
            if p.TC_INVALID_NEIGHBOURHOOD in self.heard or not codes:
                return Reaction(agent, seconds)
            return Reaction(self.rng.choice(codes), seconds)
        if sound == p.TC_CONFIRM:
            return Reaction("1", seconds)
        if sound == p.TC_REPEAT:
            return Reaction("", seconds)  # the reference is written down: no need to repeat
        if sound == self.menus.menu.roles.get("after_flow"):
            wants_agent = self.rng.random() < self.mix.after_flow_agent_p
            return Reaction(agent if wants_agent else "", seconds)
        return None

    def _menu(self, name: str, sound: str, seconds: float) -> Reaction:
        self.menus_heard[name] += 1
        times = self.menus_heard[name]
        menu = self.menus.menu.menus[name]
        agent = self.menus.menu.agent_key
        if self.plan == "hangup":
            return Reaction("", round(self.rng.uniform(1.0, max(1.0, seconds)), 3), hangup=True)
        first = name == self.menus.menu.start and times == 1
        if first and self.detour == "english":
            key = next((k for k, o in menu.options.items() if o.action == "language"), None)
            if key is not None:
                self.language = menu.options[key].target
                return self._press(sound, key, seconds)
        if first and self.detour == "wrong":
            spare = [k for k in "123456789" if k not in menu.options and k != agent]
            if spare:
                return Reaction(self.rng.choice(spare), min(seconds, self.reaction_s))
        key = self.route.keys.get(name) if self.route is not None else None
        if self.plan == "agent" or key is None or times > 3:
            key = agent  # wanted a person, got lost, or heard this menu too often
        return self._press(sound, key, seconds)

    def _press(self, sound: str, key: str, seconds: float) -> Reaction:
        """The key, pressed a reaction time after it was announced (or when the prompt ends)."""
        heard = self.menus.key_heard_s(sound, self.language, key)
        return Reaction(key, round(min(seconds, heard + self.reaction_s), 3))

    def _reference(self) -> str:
        if self.references and self.rng.random() < self.mix.known_reference_p:
            return self.rng.choice(list(self.references))
        return f"{self.rng.randint(1, 999)}#"  # this year's serial number, ended by #

    def _neighbourhoods(self) -> list[str]:
        if self.route is not None and self.route.option.action == "flow":
            flow = self.menus.menu.flows[self.route.option.target]
            hoods = flow.settings.get("neighbourhoods", {})
            return sorted(hoods) if isinstance(hoods, dict) else []
        return []

"""The IVR menu file (TOML): its model, and a loader that refuses a bad file naming the line.

The file declares the queues the IVR may route to, the menus (a prompt and keys leading to a
submenu, a queue, a self-service flow, a language or a hang-up), the flows' settings, and the
``[prompts]`` recording script (every sound with its Turkish and English text). Errors are all
collected, each with the line it is about, so an operator fixes the file in one go.
``python -m callcenter.ivr.menu FILE`` checks a file; ``--prompts`` prints the recording list.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.ivr import prompts as sounds
from callcenter.ivr import say
from callcenter.ivr.tomlines import LineIndex

DEFAULT_MENU = Path(__file__).with_name("menus") / "default.toml"
KEYS = "0123456789*#"
ACTIONS = ("menu", "queue", "flow", "language", "hangup")
FLOW_KINDS = tuple(sounds.FLOW_PROMPTS)
Path_ = tuple[str, ...]  # a TOML table/key path, e.g. ("menus", "main", "options", "1")


class MenuError(ValueError):
    """A menu file cannot be used; ``issues`` holds (line, message) for every problem."""

    def __init__(self, source: str, issues: list[tuple[int | None, str]]) -> None:
        self.source = source
        self.issues = sorted(issues, key=lambda issue: (issue[0] or 0, issue[1]))
        text = "\n".join(f"{source}:{line or '?'}: {message}" for line, message in self.issues)
        super().__init__(text)


@dataclass(frozen=True, slots=True)
class Option:
    """What one key of a menu does."""

    key: str
    action: str  # one of ACTIONS
    target: str  # menu name, queue, flow name or language; "" for hangup
    label: str = ""  # what agents read (Turkish); also CC_IVR_CHOICE
    category: str = ""  # the service category (ticket category, CC_CATEGORY)
    label_en: str = ""  # the label in English (the agent page's English view)
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Menu:
    """One menu: its prompt, keys, and the rules for silence and wrong keys."""

    name: str
    prompt: str
    options: Mapping[str, Option]
    timeout_s: float
    max_attempts: int
    agent_queue: str
    label: str = ""  # the menu's name for agents; else the label of the key leading to it
    category: str = ""
    label_en: str = ""


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """A self-service flow's settings; ``queue`` is where its caller goes for an agent."""

    name: str
    kind: str
    queue: str
    category: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallbackConfig:
    """How resolved tickets' callers are called back for the survey."""

    enabled: bool = False
    dial: str = "PJSIP/{number}@trunk"
    context: str = "survey-callback"
    caller_id: str = ""
    hours: tuple[int, int] = (10, 19)  # local hours [start, end) when calls are placed
    max_attempts: int = 3
    retry_minutes: int = 120


@dataclass(frozen=True, slots=True)
class IvrMenu:
    """A validated menu file."""

    start: str
    languages: tuple[str, ...]
    agent_key: str
    back_key: str
    agent_queue: str
    on_failure: str  # agent | hangup, after max_attempts wrong or silent answers
    survey_after_call: bool
    survey_flow: str
    roles: Mapping[str, str]  # engine prompt role -> sound
    queues: Mapping[str, str]  # queue -> what agents and screens call it
    menus: Mapping[str, Menu]
    flows: Mapping[str, FlowConfig]
    recordings: Mapping[str, Mapping[str, str]]  # sound -> language -> text
    callbacks: CallbackConfig = CallbackConfig()
    source: str = ""

    @property
    def default_language(self) -> str:
        """The language callers hear first (the first one listed)."""
        return self.languages[0]


_TOP = {"ivr", "queues", "menus", "flows", "prompts", "callbacks"}
_IVR = {
    "start",
    "languages",
    "agent_key",
    "back_key",
    "agent_queue",
    "timeout_s",
    "max_attempts",
    "on_failure",
    "survey_after_call",
    "survey_flow",
    "prompts",
}
_MENU = {
    "prompt",
    "options",
    "timeout_s",
    "max_attempts",
    "agent_queue",
    "label",
    "label_en",
    "category",
}
_OPTION = {*ACTIONS, "label", "label_en", "category", "params"}
_FLOW = {
    "request_status": {"statuses"},
    "table_chair": {"neighbourhoods", "max_days_ahead"},
    "survey": {"second_question"},
}
_CALLBACKS = {"enabled", "dial", "context", "caller_id", "hours", "max_attempts", "retry_minutes"}


class _Loader:
    """Builds an IvrMenu from parsed TOML, collecting every problem with its line."""

    def __init__(
        self,
        data: dict[str, Any],
        text: str,
        known_queues: Collection[str] | None,
        known_categories: Collection[str] | None,
    ) -> None:
        self.data = data
        self.index = LineIndex(text)
        self.known_queues = known_queues
        self.known_categories = known_categories
        self.issues: list[tuple[int | None, str]] = []
        self.used_sounds: dict[str, tuple[str, ...]] = {}  # sound -> where it is used

    def err(self, path: tuple[str, ...], message: str) -> None:
        self.issues.append((self.index.line_of(path), message))

    def table(self, value: Any, path: tuple[str, ...]) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.err(path, f"{'.'.join(path)} must be a table")
        return {}

    def unknown(self, table: Mapping[str, Any], allowed: Collection[str], path: Path_) -> None:
        for key in table:
            if key not in allowed:
                where = ".".join(path) or "the top level"
                self.err((*path, key), f"unknown key {key!r} in {where}")

    def value(
        self, table: Mapping[str, Any], key: str, path: Path_, kind: type, default: Any
    ) -> Any:
        raw = table.get(key, default)
        ok = isinstance(raw, kind) and not (kind is int and isinstance(raw, bool))
        if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        if not ok:
            self.err((*path, key), f"{key} must be a {kind.__name__}, got {raw!r}")
            return default
        return raw

    def category(self, table: Mapping[str, Any], path: Path_) -> str:
        """A category setting, checked against the ticket categories when they are known."""
        category = self.value(table, "category", path, str, "")
        known = self.known_categories
        if category and known is not None and category not in known:
            self.err(
                (*path, "category"), f"unknown category {category!r} (known: {', '.join(known)})"
            )
        return str(category)

    def use_sound(self, sound: str, path: Path_) -> None:
        self.used_sounds.setdefault(sound, path)

    # ---- sections -------------------------------------------------------------------------

    def load(self, source: str) -> IvrMenu:
        self.unknown(self.data, _TOP, ())
        ivr = self.table(self.data.get("ivr", {}), ("ivr",))
        self.unknown(ivr, _IVR, ("ivr",))
        queues = self.queues()
        languages = self.languages(ivr)
        recordings = self.recordings(languages)
        agent_key = self.key_setting(ivr, "agent_key", "0")
        back_key = self.key_setting(ivr, "back_key", "*")
        agent_queue = self.value(ivr, "agent_queue", ("ivr",), str, "genel")
        self.check_queue(agent_queue, ("ivr", "agent_queue"), queues)
        timeout_s = self.value(ivr, "timeout_s", ("ivr",), float, 5.0)
        attempts = self.value(ivr, "max_attempts", ("ivr",), int, 3)
        on_failure = self.value(ivr, "on_failure", ("ivr",), str, "agent")
        if on_failure not in ("agent", "hangup"):
            self.err(
                ("ivr", "on_failure"), f"on_failure must be agent or hangup, not {on_failure!r}"
            )
        roles = self.roles(ivr)
        flows = self.flows(queues)
        menus = self.menus(
            queues, flows, languages, (agent_key, back_key), timeout_s, attempts, agent_queue
        )
        start = self.value(ivr, "start", ("ivr",), str, "main")
        if menus and start not in menus:
            self.err(("ivr", "start"), f"start menu {start!r} is not defined")
        elif menus:
            self.reachability(start, menus)
        elif not self.data.get("menus"):
            self.err(("ivr",), "the file defines no [menus.*]")
        survey_flow = self.value(ivr, "survey_flow", ("ivr",), str, "survey")
        after_call = self.value(ivr, "survey_after_call", ("ivr",), bool, False)
        if (after_call or "survey_flow" in ivr) and flows.get(survey_flow, None) is None:
            self.err(("ivr", "survey_flow"), f"survey flow {survey_flow!r} is not defined")
        elif survey_flow in flows and flows[survey_flow].kind != "survey":
            self.err(("ivr", "survey_flow"), f"flow {survey_flow!r} is not a survey")
        callbacks = self.callbacks()
        self.check_recordings(recordings)
        if self.issues:
            raise MenuError(source, self.issues)
        return IvrMenu(
            start=start,
            languages=languages,
            agent_key=agent_key,
            back_key=back_key,
            agent_queue=agent_queue,
            on_failure=on_failure,
            survey_after_call=after_call,
            survey_flow=survey_flow,
            roles=roles,
            queues=queues,
            menus=menus,
            flows=flows,
            recordings=recordings,
            callbacks=callbacks,
            source=source,
        )

    def queues(self) -> dict[str, str]:
        table = self.table(self.data.get("queues", {}), ("queues",))
        queues: dict[str, str] = {}
        for name, label in table.items():
            if not isinstance(label, str):
                self.err(("queues", name), f"queue {name!r}: the value is its label (a string)")
                continue
            if self.known_queues is not None and name not in self.known_queues:
                self.err(("queues", name), f"queue {name!r} is not configured in Asterisk")
            queues[name] = label
        if not queues:
            self.err(("queues",), "no [queues] declared: the IVR could route nowhere")
        return queues

    def languages(self, ivr: Mapping[str, Any]) -> tuple[str, ...]:
        raw = ivr.get("languages", ["tr", "en"])
        if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
            self.err(("ivr", "languages"), "languages must be a non-empty list of codes")
            return ("tr",)
        return tuple(raw)

    def key_setting(self, ivr: Mapping[str, Any], name: str, default: str) -> str:
        key = self.value(ivr, name, ("ivr",), str, default)
        if len(key) != 1 or key not in KEYS or key == "#":
            self.err(("ivr", name), f"{name} must be one keypad key other than #, not {key!r}")
        return str(key)

    def check_queue(self, queue: str, path: Path_, queues: Mapping[str, str]) -> None:
        if queue not in queues:
            known = ", ".join(sorted(queues)) or "none"
            self.err(path, f"unknown queue {queue!r} (declared in [queues]: {known})")

    def roles(self, ivr: Mapping[str, Any]) -> dict[str, str]:
        table = self.table(ivr.get("prompts", {}), ("ivr", "prompts"))
        self.unknown(table, sounds.ROLES, ("ivr", "prompts"))
        roles: dict[str, str] = {}
        for role in sounds.ROLES:
            sound = table.get(role)
            if not isinstance(sound, str) or not sound:
                self.err(("ivr", "prompts"), f"missing prompt: [ivr.prompts] needs {role} = ...")
                continue
            roles[role] = sound
            self.use_sound(sound, ("ivr", "prompts", role))
        return roles

    def recordings(self, languages: tuple[str, ...]) -> dict[str, dict[str, str]]:
        table = self.table(self.data.get("prompts", {}), ("prompts",))
        out: dict[str, dict[str, str]] = {}
        for sound, texts in table.items():
            path = ("prompts", sound)
            if not isinstance(texts, dict):
                self.err(path, f"prompt {sound!r}: give its text per language, {{ tr = ... }}")
                continue
            self.unknown(texts, languages, path)
            for language in languages:
                if not isinstance(texts.get(language), str) or not texts[language].strip():
                    self.err(path, f"missing prompt: {sound!r} has no {language} text")
            out[sound] = {k: v for k, v in texts.items() if isinstance(v, str)}
        return out

    def check_recordings(self, recordings: Mapping[str, Any]) -> None:
        for sound, path in self.used_sounds.items():
            if sound not in recordings:
                self.err(path, f"missing prompt: {sound!r} is not in [prompts] (nothing to record)")

    def flows(self, queues: Mapping[str, str]) -> dict[str, FlowConfig]:
        out: dict[str, FlowConfig] = {}
        for name, raw in self.table(self.data.get("flows", {}), ("flows",)).items():
            path = ("flows", name)
            table = self.table(raw, path)
            kind = table.get("kind")
            if kind not in _FLOW:
                self.err((*path, "kind"), f"flow {name!r}: kind must be one of {FLOW_KINDS}")
                continue
            self.unknown(table, {"kind", "queue", "category", *_FLOW[kind]}, path)
            queue = self.value(table, "queue", path, str, "genel")
            self.check_queue(queue, (*path, "queue"), queues)
            category = self.category(table, path)
            settings = {k: v for k, v in table.items() if k in _FLOW[kind]}
            for sound in sounds.FLOW_PROMPTS[kind]:
                self.use_sound(sound, path)
            if kind == "request_status":
                self.statuses(settings, path)
            elif kind == "table_chair":
                self.neighbourhoods(settings, path)
                self.value(settings, "max_days_ahead", path, int, 60)
            else:
                self.value(settings, "second_question", path, bool, True)
            out[name] = FlowConfig(name, kind, queue, category, settings)
        return out

    def statuses(self, settings: Mapping[str, Any], path: Path_) -> None:
        table = self.table(settings.get("statuses", {}), (*path, "statuses"))
        if "*" not in table:
            self.err((*path, "statuses"), 'statuses needs a "*" entry for any other status')
        for status, sound in table.items():
            if isinstance(sound, str):
                self.use_sound(sound, (*path, "statuses", status))
            else:
                self.err((*path, "statuses", status), f"status {status!r}: give a sound name")

    def neighbourhoods(self, settings: Mapping[str, Any], path: Path_) -> None:
        table = self.table(settings.get("neighbourhoods", {}), (*path, "neighbourhoods"))
        if not table:
            self.err((*path, "neighbourhoods"), 'neighbourhoods: list them as "01" = "Name"')
        for code, name in table.items():
            if not (len(code) == 2 and code.isdigit() and code != "00") or not isinstance(
                name, str
            ):
                self.err(
                    (*path, "neighbourhoods", code), f'neighbourhood {code!r}: use "NN" = name'
                )

    def menus(
        self,
        queues: Mapping[str, str],
        flows: Mapping[str, FlowConfig],
        languages: tuple[str, ...],
        reserved: tuple[str, str],
        timeout_s: float,
        attempts: int,
        agent_queue: str,
    ) -> dict[str, Menu]:
        raw_menus = self.table(self.data.get("menus", {}), ("menus",))
        out: dict[str, Menu] = {}
        for name, raw in raw_menus.items():
            path = ("menus", name)
            table = self.table(raw, path)
            self.unknown(table, _MENU, path)
            prompt = table.get("prompt")
            if not isinstance(prompt, str) or not prompt:
                self.err(path, f"missing prompt: menu {name!r} has no prompt = ...")
                prompt = ""
            else:
                self.use_sound(prompt, (*path, "prompt"))
            queue = self.value(table, "agent_queue", path, str, agent_queue)
            self.check_queue(queue, (*path, "agent_queue"), queues)
            options: dict[str, Option] = {}
            raw_options = self.table(table.get("options", {}), (*path, "options"))
            if not raw_options:
                self.err(path, f"menu {name!r} has no options")
            for key, spec in raw_options.items():
                option = self.option(name, key, spec, raw_menus, queues, flows, languages, reserved)
                if option is not None:
                    options[key] = option
            out[name] = Menu(
                name=name,
                prompt=prompt,
                options=options,
                timeout_s=self.value(table, "timeout_s", path, float, timeout_s),
                max_attempts=self.value(table, "max_attempts", path, int, attempts),
                agent_queue=queue,
                label=self.value(table, "label", path, str, ""),
                category=self.category(table, path),
                label_en=self.value(table, "label_en", path, str, ""),
            )
        return out

    def option(
        self,
        menu: str,
        key: str,
        spec: Any,
        menus: Mapping[str, Any],
        queues: Mapping[str, str],
        flows: Mapping[str, FlowConfig],
        languages: tuple[str, ...],
        reserved: tuple[str, str],
    ) -> Option | None:
        path = ("menus", menu, "options", key)
        where = f"menu {menu!r} option {key!r}"
        if len(key) != 1 or key not in KEYS:
            self.err(path, f"{where} is unreachable: a keypad has no key {key!r}")
            return None
        if key in reserved or key == "#":
            role = {reserved[0]: "the agent key", reserved[1]: "the back key"}.get(
                key, "the end key"
            )
            self.err(path, f"{where} is unreachable: {key} is {role} in every menu")
            return None
        table = self.table(spec, path)
        self.unknown(table, _OPTION, path)
        actions = [a for a in ACTIONS if a in table]
        if len(actions) != 1:
            self.err(path, f"{where}: give exactly one of {', '.join(ACTIONS)}")
            return None
        action = actions[0]
        target = "" if action == "hangup" else table[action]
        if action != "hangup" and not isinstance(target, str):
            self.err(path, f"{where}: {action} must name something")
            return None
        if action == "menu" and target not in menus:
            self.err(path, f"{where}: unknown menu {target!r}")
        elif action == "queue":
            self.check_queue(target, path, queues)
        elif action == "flow" and target not in flows:
            self.err(path, f"{where}: unknown flow {target!r}")
        elif action == "language" and target not in languages:
            self.err(path, f"{where}: language {target!r} is not in [ivr] languages")
        params = self.table(table.get("params", {}), (*path, "params"))
        return Option(
            key=key,
            action=action,
            target=target,
            label=self.value(table, "label", path, str, ""),
            category=self.category(table, path),
            label_en=self.value(table, "label_en", path, str, ""),
            params={str(k): str(v) for k, v in params.items()},
        )

    def reachability(self, start: str, menus: Mapping[str, Menu]) -> None:
        seen = {start}
        todo = [start]
        while todo:
            for option in menus[todo.pop()].options.values():
                if option.action == "menu" and option.target in menus and option.target not in seen:
                    seen.add(option.target)
                    todo.append(option.target)
        for name in menus:
            if name not in seen:
                self.err(("menus", name), f"menu {name!r} is unreachable: no key leads to it")

    def callbacks(self) -> CallbackConfig:
        path = ("callbacks",)
        table = self.table(self.data.get("callbacks", {}), path)
        self.unknown(table, _CALLBACKS, path)
        base = CallbackConfig()
        dial = self.value(table, "dial", path, str, base.dial)
        if "{number}" not in dial:
            self.err((*path, "dial"), "dial must contain {number}")
        hours = table.get("hours", list(base.hours))
        if not (
            isinstance(hours, list)
            and len(hours) == 2
            and all(isinstance(h, int) and 0 <= h <= 24 for h in hours)
            and hours[0] < hours[1]
        ):
            self.err((*path, "hours"), "hours must be [start, end] local hours, e.g. [10, 19]")
            hours = list(base.hours)
        return CallbackConfig(
            enabled=self.value(table, "enabled", path, bool, base.enabled),
            dial=dial,
            context=self.value(table, "context", path, str, base.context),
            caller_id=self.value(table, "caller_id", path, str, base.caller_id),
            hours=(hours[0], hours[1]),
            max_attempts=self.value(table, "max_attempts", path, int, base.max_attempts),
            retry_minutes=self.value(table, "retry_minutes", path, int, base.retry_minutes),
        )


def parse_menu(
    text: str,
    source: str = "<menu>",
    known_queues: Collection[str] | None = None,
    known_categories: Collection[str] | None = None,
) -> IvrMenu:
    """Parses and validates menu text; raises MenuError naming the line of every problem.

    ``known_queues`` (queues.conf, or what Asterisk reports) and ``known_categories`` (the
    ticket categories) are checked when given.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)".
        line = None
        marker = "at line "
        if marker in str(exc):
            digits = str(exc).split(marker, 1)[1].split(",", 1)[0].rstrip(")")
            line = int(digits) if digits.isdigit() else None
        raise MenuError(source, [(line, f"not valid TOML: {exc}")]) from None
    return _Loader(data, text, known_queues, known_categories).load(source)


def load_menu(
    path: str | Path | None = None,
    known_queues: Collection[str] | None = None,
    known_categories: Collection[str] | None = None,
) -> IvrMenu:
    """Reads and validates a menu file (the packaged default when ``path`` is empty)."""
    file = Path(path) if path else DEFAULT_MENU
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise MenuError(str(file), [(None, f"cannot read the menu file: {exc}")]) from None
    return parse_menu(text, str(file), known_queues, known_categories)


def recording_list(menu: IvrMenu) -> Iterator[tuple[str, Mapping[str, str]]]:
    """Every sound to record with its text per language, neighbourhoods and numbers included.

    The number building blocks (``callcenter/say/…``, see ``callcenter.ivr.say``) come after
    the menu file's own script; a menu file may override their text.
    """
    yield from sorted(menu.recordings.items())
    for sound, texts in say.VOCABULARY.items():
        if sound not in menu.recordings:
            yield sound, {lang: texts.get(lang) or texts["tr"] for lang in menu.languages}
    for flow in menu.flows.values():
        for code, name in sorted(flow.settings.get("neighbourhoods", {}).items()):
            texts = {lang: f"{name} Mahallesi" for lang in menu.languages}
            if "en" in texts:
                texts["en"] = f"{name} neighbourhood"
            yield sounds.neighbourhood(code), texts


def main(argv: list[str] | None = None) -> int:
    """Checks a menu file; with --prompts prints the recording list as tab-separated text."""
    args = sys.argv[1:] if argv is None else argv
    path = next((a for a in args if not a.startswith("--")), None)
    try:
        menu = load_menu(path)
    except MenuError as exc:
        print(exc, file=sys.stderr)
        return 1
    if "--prompts" in args:
        for sound, texts in recording_list(menu):
            print("\t".join([sound, *(texts.get(lang, "") for lang in menu.languages)]))
    else:
        print(f"{menu.source}: ok ({len(menu.menus)} menus, {len(menu.flows)} flows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

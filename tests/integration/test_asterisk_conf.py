"""asterisk_conf/ agrees with the service: queues, AMI user, AGI address, secrets, prompts."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callcenter.categories import DEFAULT_CATEGORIES
from callcenter.config import Settings, load_settings, per_queue
from callcenter.events import is_noise
from callcenter.ivr.menu import IvrMenu, load_menu

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "asterisk_conf"
ENTRYPOINT = ROOT / "docker" / "asterisk" / "entrypoint.sh"
PLACEHOLDER = re.compile(r"^\{\{[A-Z0-9_]+\}\}$")
AGI_ROUTES = {"ivr", "survey", "survey-callback"}


@dataclass
class Section:
    """One [section] of an Asterisk configuration file, templates applied."""

    name: str
    template: bool
    parents: list[str]
    entries: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        found = [v for k, v in self.entries if k == key]
        return found[-1] if found else None

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.entries if k == key]


def parse_conf(name: str) -> list[Section]:
    """Parses an Asterisk .conf file (comments, `=`/`=>`, templates, `(!)`)."""
    sections: list[Section] = []
    by_name: dict[str, Section] = {}
    for raw in (CONF / name).read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(?<!\\);.*", "", raw).strip()
        if not line or line.startswith("#"):
            continue
        header = re.match(r"^\[([^\]]+)\](?:\((.*)\))?$", line)
        if header:
            options = [o.strip() for o in (header.group(2) or "").split(",") if o.strip()]
            section = Section(header.group(1), "!" in options, [o for o in options if o != "!"])
            for parent in section.parents:
                section.entries += by_name[parent].entries
            sections.append(section)
            by_name.setdefault(section.name, section)
            continue
        key, _, value = line.partition("=")
        sections[-1].entries.append((key.strip(), value.lstrip(">").strip()))
    return sections


def concrete(name: str) -> dict[str, Section]:
    return {s.name: s for s in parse_conf(name) if not s.template and s.name != "general"}


def endpoints(name: str) -> dict[str, Section]:
    """PJSIP endpoints by name (an endpoint, its auth and its aor may share a name)."""
    return {s.name: s for s in parse_conf(name) if not s.template and s.get("type") == "endpoint"}


@pytest.fixture(scope="module")
def queues() -> dict[str, Section]:
    return concrete("queues.conf")


@pytest.fixture(scope="module")
def dialplan() -> dict[str, Section]:
    return {s.name: s for s in parse_conf("extensions.conf")}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(str(ROOT / "docker" / "callcenter.toml"), env={})


@pytest.fixture(scope="module")
def menu() -> IvrMenu:
    return load_menu()


def applications(dialplan: dict[str, Section], app: str) -> list[str]:
    """The argument strings of every call of dialplan application ``app``."""
    found = []
    for section in dialplan.values():
        for key, value in section.entries:
            if key in ("exten", "same"):
                found += re.findall(rf"\b{app}\((.*)\)\s*$", value)
    return found


def test_every_queue_the_dialplan_or_the_menu_names_exists(
    queues: dict[str, Section], dialplan: dict[str, Section], menu: IvrMenu
) -> None:
    named = set()
    for args in applications(dialplan, "Queue"):
        first = args.split(",")[0]
        if "$" not in first:
            named.add(first)
    named |= {
        m.group(1)
        for m in (re.search(r"CC_QUEUE=([\w-]+)", a) for a in applications(dialplan, "Set"))
        if m
    }
    named.add(dialplan["globals"].get("FALLBACK_QUEUE") or "")
    named |= set(menu.queues) | {menu.agent_queue}
    named |= {m.agent_queue for m in menu.menus.values()}
    named |= {
        o.target for m in menu.menus.values() for o in m.options.values() if o.action == "queue"
    }
    named |= {f.queue for f in menu.flows.values()}
    assert named <= set(queues), named - set(queues)
    # And the IVR offers every queue Asterisk has.
    assert set(menu.queues) == set(queues)
    load_menu(known_queues=set(queues), known_categories=[c.code for c in DEFAULT_CATEGORIES])


def test_queues_carry_the_service_level_and_wrap_up_the_service_assumes(
    queues: dict[str, Section], settings: Settings
) -> None:
    for name, queue in queues.items():
        assert float(queue.get("servicelevel") or 0) == per_queue(
            settings.service_level_seconds, name
        )
        assert float(queue.get("wrapuptime") or 0) == per_queue(settings.wrapup_seconds, name)
        # The dialplan's survey test and the tracker rely on these.
        assert queue.get("setinterfacevar") == "yes" and queue.get("ringinuse") == "no"


def test_queue_members_are_agents_with_softphones(
    queues: dict[str, Section], dialplan: dict[str, Section]
) -> None:
    phones = endpoints("pjsip.conf")
    assert any(v.startswith("_10XX") for k, v in dialplan["agents"].entries if k == "exten")
    for queue in queues.values():
        members = queue.all("member")
        assert members, f"{queue.name} has no members"
        for member in members:
            interface, _penalty, name, state = (part.strip() for part in member.split(","))
            ext = re.fullmatch(r"Local/(10\d\d)@agents/n", interface)
            assert ext, interface
            assert state == f"PJSIP/{ext.group(1)}"
            assert f'"{name}"' in (phones[ext.group(1)].get("callerid") or "")


def test_the_agi_address_is_the_services(dialplan: dict[str, Section], settings: Settings) -> None:
    base = dialplan["globals"].get("CC_AGI")
    assert base == f"agi://callcenter:{settings.fastagi_port}"
    assert settings.fastagi_host == "0.0.0.0"
    calls = applications(dialplan, "AGI")
    routes = {re.match(r"\$\{CC_AGI\}/([\w-]+)", c).group(1) for c in calls}  # type: ignore[union-attr]
    assert routes == AGI_ROUTES
    for call in calls:  # the linkedid first: the server reads it as agi_arg_1
        assert call.split(",")[1] == "${CHANNEL(linkedid)}"


def test_the_dialplan_follows_what_the_ivr_leaves_on_the_channel(
    dialplan: dict[str, Section], menu: IvrMenu
) -> None:
    text = (CONF / "extensions.conf").read_text(encoding="utf-8")
    for variable in ("CC_IVR_END", "CC_QUEUE", "CC_SURVEY", "CC_CALLBACK_ID", "CC_TICKET"):
        assert "${" + variable + "}" in text
    assert '"${CC_IVR_END}" = "hangup"' in text
    assert '"${CC_SURVEY}" = "1"' in text
    # The dialer originates into a context that runs the call-back survey.
    context = dialplan[menu.callbacks.context]
    assert any("/survey-callback," in v for _, v in context.entries)
    trunk = endpoints("pjsip_trunk.conf")
    assert (
        menu.callbacks.dial.split("@")[1] == "trunk" and trunk["trunk"].get("context") in dialplan
    )
    for section in parse_conf("pjsip.conf"):
        if section.get("type") == "endpoint" and section.get("context"):
            assert section.get("context") in dialplan
    for target in applications(dialplan, "Goto"):
        parts = target.split(",")
        if len(parts) == 3 and "$" not in parts[0]:  # Goto(context,exten,priority)
            assert parts[0] in dialplan, target


def test_the_ami_user_is_the_services_and_least_privileged(settings: Settings) -> None:
    manager = {s.name: s for s in parse_conf("manager.conf")}
    server = settings.asterisk[0]
    assert (server.host, server.port) == ("asterisk", int(manager["general"].get("port") or 0))
    user = manager[server.username]
    assert PLACEHOLDER.match(user.get("secret") or "")
    assert set((user.get("read") or "").split(",")) == {
        "system",
        "call",
        "agent",
        "user",
        "dtmf",
        "dialplan",
    }
    write = set((user.get("write") or "").split(","))
    assert write == {"agent", "reporting", "originate"}
    assert user.get("deny") == "0.0.0.0/0.0.0.0"
    assert "172.28.0.0/255.255.255.0" in user.all("permit")
    assert manager["general"].get("webenabled") == "no"


def test_the_varset_filter_keeps_exactly_what_the_service_reads() -> None:
    user = {s.name: s for s in parse_conf("manager.conf")}["callcenter"]
    [(key, pattern)] = [(k, v) for k, v in user.entries if k.startswith("eventfilter")]
    assert key == "eventfilter(action(exclude),name(VarSet),header(Variable),method(regex))"
    excluded = re.compile(pattern)  # POSIX ERE as Asterisk uses it; Python reads it the same
    names = ["CC_IVR_PATH", "CC_", "QUEUESTATUS", "QUEUESTATUSX", "QUEUE", "MEMBERINTERFACE"]
    names += ["C", "CC", "CX", "Q", "", "BRIDGEPEER", "DIALSTATUS", "__CC_X", "cc_x"]
    for name in names:
        varset = f"Event: VarSet\r\nChannel: x\r\nVariable: {name}\r\nValue: 1\r\n"
        assert bool(excluded.search(name)) == is_noise(varset), name


def test_no_secret_is_written_in_the_configuration() -> None:
    placeholders = set()
    for path in sorted(CONF.glob("*.conf")):
        for section in parse_conf(path.name):
            for key, value in section.entries:
                if key in ("secret", "password") or "SECRET" in value:
                    assert PLACEHOLDER.match(value), f"{path.name} [{section.name}] {key}"
        placeholders |= set(re.findall(r"\{\{([A-Z0-9_]+)\}\}", path.read_text(encoding="utf-8")))
    documented = set(re.findall(r"`([A-Z0-9_]+)`", (CONF / "README.md").read_text()))
    agents = {f"AGENT_{n}_SECRET" for n in range(1001, 1009)}
    assert placeholders - agents <= documented and agents <= placeholders


def test_modules_the_call_center_relies_on_are_required() -> None:
    [modules] = parse_conf("modules.conf")
    required = set(modules.all("require"))
    assert {"res_agi.so", "app_queue.so", "chan_pjsip.so", "app_userevent.so"} <= required
    assert {"cdr_custom.so", "cel_custom.so", "res_pjsip_header_funcs.so"} <= required
    assert not required & set(modules.all("noload"))


def test_queue_log_cdr_and_cel_are_written() -> None:
    logger = {s.name: s for s in parse_conf("logger.conf")}["general"]
    assert logger.get("queue_log") == "yes" and logger.get("queue_log_to_file") == "yes"
    assert parse_conf("cdr.conf")[0].get("enable") == "yes"
    assert parse_conf("cel.conf")[0].get("enable") == "yes"
    for name in ("cdr_custom.conf", "cel_custom.conf"):
        [mapping] = parse_conf(name)
        assert (
            mapping.get("format") == "dsv" and "linkedid" in (mapping.get("fields") or "").lower()
        )


def test_every_sound_the_pbx_plays_is_in_the_recording_script(
    dialplan: dict[str, Section], queues: dict[str, Section], menu: IvrMenu
) -> None:
    sounds = {a.split(",")[0] for a in applications(dialplan, "Playback")}
    sounds |= {a.split(",")[0] for a in applications(dialplan, "Background")}
    sounds |= {q.get("periodic-announce") or "" for q in queues.values()} - {""}
    assert sounds and sounds <= set(menu.recordings)


def render(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ASTERISK_CONF_TEMPLATES": str(CONF),
        "ASTERISK_CONF_DIR": str(tmp_path / "etc"),
        **env,
    }
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "--render-only"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


SITE = {
    "AMI_SECRET": "s3cr;et&\\x",
    "ASTERISK_EXTERNAL_ADDRESS": "192.168.1.10",
    **{f"AGENT_{n}_SECRET": f"agent-{n}" for n in range(1001, 1009)},
}


def test_the_entrypoint_fills_the_placeholders(tmp_path: Path) -> None:
    secret_file = tmp_path / "ami"
    secret_file.write_text("from-a-file\n")
    done = render(tmp_path, **{**SITE, "AMI_SECRET": "", "AMI_SECRET_FILE": str(secret_file)})
    assert done.returncode == 0, done.stderr
    etc = tmp_path / "etc"
    assert not (etc / "pjsip_trunk.conf").exists()  # optional: no TRUNK_HOST
    for path in etc.glob("*.conf"):
        assert "{{" not in path.read_text(encoding="utf-8"), path.name
    assert "secret = from-a-file\n" in (etc / "manager.conf").read_text()
    assert "password = agent-1008\n" in (etc / "pjsip.conf").read_text()
    trunk = {"TRUNK_HOST": "sip.example.net", "TRUNK_USERNAME": "u", "TRUNK_SECRET": "t"}
    done = render(tmp_path, **SITE, **trunk)
    assert done.returncode == 0, done.stderr
    # A ";" would start a comment in Asterisk's files: it is escaped, nothing else changes.
    assert "secret = s3cr\\;et&\\x\n" in (etc / "manager.conf").read_text()
    assert "client_uri = sip:u@sip.example.net" in (etc / "pjsip_trunk.conf").read_text()


def test_the_entrypoint_names_a_missing_secret(tmp_path: Path) -> None:
    done = render(tmp_path, **{k: v for k, v in SITE.items() if k != "AGENT_1004_SECRET"})
    assert done.returncode != 0
    assert "pjsip.conf needs AGENT_1004_SECRET" in done.stderr


def test_placeholders_in_comments_are_left_alone(tmp_path: Path) -> None:
    # A secret must never be written into a comment (issue 11, fix 6).
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "manager.conf").write_text(
        "; {{AMI_SECRET}} and {{NOT_SET}} are only mentioned here\n"
        "[callcenter]\nsecret = {{AMI_SECRET}} ; the {{AMI_SECRET}} again\n"
        "note = a\\;b {{AMI_SECRET}}\n",
        encoding="utf-8",
    )
    done = render(tmp_path, ASTERISK_CONF_TEMPLATES=str(templates), AMI_SECRET="pw")
    assert done.returncode == 0, done.stderr  # NOT_SET is only in a comment: not needed
    assert (tmp_path / "etc" / "manager.conf").read_text(encoding="utf-8") == (
        "; {{AMI_SECRET}} and {{NOT_SET}} are only mentioned here\n"
        "[callcenter]\nsecret = pw ; the {{AMI_SECRET}} again\n"
        "note = a\\;b pw\n"
    )
    # The shipped files: the AMI secret lands on its own line only.
    done = render(tmp_path, **{**SITE, "AMI_SECRET": "unique-secret-value"})
    assert done.returncode == 0, done.stderr
    manager = (tmp_path / "etc" / "manager.conf").read_text(encoding="utf-8")
    assert [line for line in manager.splitlines() if "unique-secret-value" in line] == [
        "secret = unique-secret-value"
    ]

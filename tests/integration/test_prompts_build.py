"""The prompts build with the real espeak-ng and sox: every prompt any flow can reach exists.

The menu and its flows are walked as callers would (every key, silence, entries, every answer
of the ticket desk) to collect each sound the IVR can play; the dialplan's own sounds come
from asterisk_conf/. After one build, each of them is an 8 kHz mono 16-bit .wav in both
languages.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from callcenter.ivr import say
from callcenter.ivr.engine import IvrSession
from callcenter.ivr.menu import IvrMenu, load_menu
from callcenter.ivr.soundbuild import (
    MANIFEST,
    BuildReport,
    build_prompts,
    prompt_plan,
    speech_markup,
    wav_format,
)
from callcenter.ivr.steps import (
    CallInfo,
    Done,
    Failed,
    Keys,
    LookupStatus,
    OpenTicket,
    Play,
    RecordSurvey,
    Reply,
    Step,
)

ROOT = Path(__file__).resolve().parents[2]
MENU = load_menu()
TODAY = date(2026, 12, 1)
CALL = CallInfo(today=TODAY, linkedid="1795884499.0", caller_number="05321234567")


def _replies(session: IvrSession, step: Step) -> Iterator[Reply]:
    """Everything a caller or the desk can answer to a step (a representative set)."""
    if step.ask is not None:
        yield Keys("", timed_out=True)
        # One key for a menu question; an entry gets the agent key, star and real entries.
        for key in "0123456789*#" if step.ask.max_digits == 1 else "0*":
            yield Keys(key)
        if step.ask.max_digits > 1:
            event = TODAY + timedelta(days=10)
            for entry in ("2026004217", "4217", "2019000001", event.strftime("%d%m%Y"),
                          event.strftime("%d%m"), "31122030", "1", "16", "19", "99"):  # fmt: skip
                yield Keys(entry[: step.ask.max_digits])
    elif isinstance(step.request, LookupStatus):
        for status in ("open", "in_progress", "resolved", "rejected", "archived"):
            yield Done(status)
        yield Done(None)
        yield Failed("desk down")
    elif isinstance(step.request, OpenTicket):
        yield Done("2026-000123")
        yield Failed("desk down")
    elif isinstance(step.request, RecordSurvey):
        yield Done()
        yield Failed("desk down")


def _state(session: IvrSession, step: Step) -> str:
    """What makes two walks the same from here on (the trail itself does not)."""
    flow = session._flow
    flow_state = (
        sorted((k, repr(v)) for k, v in vars(flow).items() if k not in ("config", "call", "roles"))
        if flow is not None
        else None
    )
    return repr(
        (
            step.ask,
            step.request,
            session.language,
            session._menu.name if session._menu else None,
            session._attempts,
            session._after_flow,
            [m.name for m in session._stack],
            type(flow).__name__,
            flow_state,
        )
    )


def reachable_sounds(menu: IvrMenu) -> dict[str, set[str]]:
    """Every sound the IVR can play, per language, walking every route it serves."""
    starts = [IvrSession(menu, CALL)]
    for language in menu.languages:
        params = {"kind": "after_call", "queue": "genel", "agent": "1001"}
        starts.append(IvrSession(menu, CALL, flow=menu.survey_flow, params=params,
                                 language=language))  # fmt: skip
    callback = {"kind": "callback", "callback_id": "7", "ticket_reference": "2026-004217"}
    starts.append(IvrSession(menu, CALL, flow=menu.survey_flow, params=callback))
    heard: dict[str, set[str]] = {language: set() for language in menu.languages}
    todo = deque((session, session.start()) for session in starts)
    seen: set[str] = set()
    # The menu and the call never change: clones share them (a deep copy each time is slow).
    shared: list[object] = [menu, CALL, menu.roles, *menu.menus.values(), *menu.flows.values()]
    shared += [flow.settings for flow in menu.flows.values()]
    shared += [value for flow in menu.flows.values() for value in flow.settings.values()]
    while todo:
        session, step = todo.popleft()
        for sound in step.say:
            assert isinstance(sound, Play), f"not one of the IVR's own prompts: {sound!r}"
            heard[session.language].add(sound.sound)
        if step.end is not None:
            continue
        key = _state(session, step)
        if key in seen:
            continue
        seen.add(key)
        for reply in _replies(session, step):
            clone = copy.deepcopy(session, {id(obj): obj for obj in shared})
            todo.append((clone, clone.feed(reply)))
    return heard


def dialplan_sounds() -> set[str]:
    """Sounds the dialplan and the queues play themselves (asterisk_conf/)."""
    conf = (ROOT / "asterisk_conf" / "extensions.conf").read_text(encoding="utf-8")
    conf += (ROOT / "asterisk_conf" / "queues.conf").read_text(encoding="utf-8")
    found = set(re.findall(r"(?:Playback|Background)\(([^,)]+)", conf))
    found |= set(re.findall(r"periodic-announce\s*=\s*(\S+)", conf))
    return {s for s in found if not s.startswith("$")}


@pytest.fixture(scope="module")
def heard() -> dict[str, set[str]]:
    """The walk, once for the module (a few seconds: tens of thousands of caller moves)."""
    return reachable_sounds(MENU)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildReport]:
    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} missing: run scripts/system-deps.sh"
    out = tmp_path_factory.mktemp("sounds")
    return out, build_prompts(MENU, out, jobs=2)


def test_the_walk_reaches_every_part_of_the_menu(heard: dict[str, set[str]]) -> None:
    for language in MENU.languages:
        assert {m.prompt for m in MENU.menus.values()} <= heard[language]
        # The walk reached the flows' read-backs: a date, a reference, a neighbourhood list.
        assert "callcenter/month-12" in heard[language]
        assert say.PAUSE in heard[language] and "callcenter/mahalle-19" in heard[language]
        assert "callcenter/survey-thanks" in heard[language]
    assert "callcenter/say/ord-11" in heard["en"]  # "December eleventh" (English ordinals)


def test_every_reachable_prompt_exists_in_both_languages_as_8khz_mono_16bit(
    built: tuple[Path, BuildReport], heard: dict[str, set[str]]
) -> None:
    out, report = built
    assert not report.errors and report.generated > 0
    everything = set().union(*heard.values()) | dialplan_sounds()
    assert "callcenter/queue-periodic" in everything
    for language in ("tr", "en"):
        for sound in sorted(everything):
            path = out / language / f"{sound}.wav"
            assert path.is_file(), f"{language}: {sound} was not built"
            assert wav_format(path) == (8000, 1, 16), path
            assert path.stat().st_size > 44 + 800, f"{path} is (nearly) empty"
    # And the build made nothing else than the plan.
    made = {p.relative_to(out).as_posix() for p in out.rglob("*.wav")}
    plan = {f"{lang}/{p.name}.wav" for p in prompt_plan(MENU) for lang in MENU.languages}
    assert made == plan and report.per_language == {"tr": len(plan) // 2, "en": len(plan) // 2}


def test_a_second_build_redoes_only_what_changed(built: tuple[Path, BuildReport]) -> None:
    out, first = built
    again = build_prompts(MENU, out, jobs=2)
    assert (again.generated, again.cached) == (0, first.generated)
    # A changed text is made again; the rest stays cached.
    target = out / "tr" / "callcenter" / "goodbye.wav"
    before = target.read_bytes()
    texts = dict(MENU.recordings)
    texts["callcenter/goodbye"] = {"tr": "Hoşça kalın.", "en": "Goodbye."}
    changed = dataclasses.replace(MENU, recordings=texts)
    third = build_prompts(changed, out, jobs=2)
    assert third.generated == 2 and third.cached == first.generated - 2
    assert target.read_bytes() != before
    build_prompts(MENU, out, jobs=2)  # back to the packaged text for the other tests


def test_real_recordings_win(built: tuple[Path, BuildReport], tmp_path: Path) -> None:
    out, recordings = tmp_path / "sounds", tmp_path / "recordings"
    shutil.copytree(built[0], out)  # an earlier build: only the recordings change things
    (recordings / "tr").mkdir(parents=True)
    studio = recordings / "tr" / "main-menu.gsm"
    studio.write_bytes(b"\x00" * 330)  # a studio recording in another format
    build_prompts(MENU, out, recordings=recordings, jobs=2)
    menu_dir = out / "tr" / "callcenter"
    assert (menu_dir / "main-menu.gsm").read_bytes() == studio.read_bytes()
    assert not (menu_dir / "main-menu.wav").exists()  # Asterisk must not pick the robot
    assert (out / "en" / "callcenter" / "main-menu.wav").is_file()
    # A recording copied in by hand (not written by the build) is kept, never overwritten.
    by_hand = menu_dir / "goodbye.wav"
    by_hand.write_bytes(b"RIFF-by-hand")
    report = build_prompts(MENU, out, jobs=2)
    assert by_hand.read_bytes() == b"RIFF-by-hand" and report.kept == 1
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert "tr/callcenter/goodbye.wav" not in manifest["files"]
    # The studio recording was dropped from REC: the generated prompt comes back.
    studio.unlink()
    build_prompts(MENU, out, recordings=recordings, jobs=2)
    assert (menu_dir / "main-menu.wav").is_file() and not (menu_dir / "main-menu.gsm").exists()


def test_the_command_line(built: tuple[Path, BuildReport], tmp_path: Path) -> None:
    shutil.copytree(built[0], tmp_path, dirs_exist_ok=True)
    (tmp_path / "en" / "callcenter" / "goodbye.wav").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "callcenter", "prompts", "build", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["errors"] == 0 and summary["languages"]["tr"] == summary["languages"]["en"]
    assert summary["generated"] == 1  # the one missing file; the rest was cached
    assert wav_format(tmp_path / "en" / "callcenter" / "goodbye.wav") == (8000, 1, 16)
    assert wav_format(tmp_path / "tr" / "callcenter" / "say" / "1000.wav") == (8000, 1, 16)


def test_turkish_text_is_spelt_out_for_the_synthesiser() -> None:
    markup = speech_markup("Gıda için 1'e, dört için 4'e basınız. For English, press 9.", "tr")
    assert "bire" in markup and "dörde" in markup
    assert '<voice xml:lang="en">For English, press 9.</voice>' in markup
    english = speech_markup("Press 0 for an agent. Türkçe için 9'a basınız.", "en")
    assert '<voice xml:lang="tr">Türkçe için dokuza basınız.</voice>' in english


def test_the_build_needs_only_the_standard_library(tmp_path: Path) -> None:
    # The image's prompts stage runs it with Debian's bare python3: no site-packages here.
    done = subprocess.run(
        [sys.executable, "-S", "-m", "callcenter.ivr.soundbuild", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "--recordings" in done.stdout


def test_the_asterisk_image_generates_the_prompts_and_recordings_override_them() -> None:
    dockerfile = (ROOT / "docker" / "asterisk" / "Dockerfile").read_text(encoding="utf-8")
    stage = dockerfile.split("AS prompts", 1)[1].split("\nFROM ", 1)[0]
    assert "espeak-ng" in stage and "sox" in stage and "python3" in stage
    assert "RUN python3 -m callcenter.ivr.soundbuild --out /prompts" in stage
    for language in ("tr", "en"):
        copy_line = f"/prompts/{language}/ /var/lib/asterisk/sounds/{language}/"
        assert copy_line in dockerfile
    compose = (ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8")
    # Mounting recordings over sounds/<lang>/callcenter would hide every generated prompt.
    assert "/var/lib/asterisk/sounds/" not in compose
    assert "./asterisk/sounds:/usr/share/callcenter/recordings:ro" in compose
    entrypoint = (ROOT / "docker" / "asterisk" / "entrypoint.sh").read_text(encoding="utf-8")
    assert "install-recordings" in entrypoint.split("--render-only", 1)[1]


def test_install_recordings_replaces_the_generated_prompt_in_every_format(
    built: tuple[Path, BuildReport], tmp_path: Path
) -> None:
    sounds, recordings = tmp_path / "sounds", tmp_path / "recordings"
    shutil.copytree(built[0], sounds)
    (recordings / "tr" / "say").mkdir(parents=True)
    (recordings / "tr" / "main-menu.gsm").write_bytes(b"gsm-recording")
    (recordings / "tr" / "say" / "5.wav").write_bytes(b"RIFF-five")
    (recordings / "README.md").write_text("not a sound", encoding="utf-8")
    done = subprocess.run(
        ["sh", str(ROOT / "docker" / "asterisk" / "install-recordings.sh")],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "ASTERISK_RECORDINGS": str(recordings),
            "ASTERISK_SOUNDS_DIR": str(sounds),
        },  # fmt: skip
    )
    assert done.returncode == 0, done.stderr
    assert "2 recording(s)" in done.stderr
    tr = sounds / "tr" / "callcenter"
    assert (tr / "main-menu.gsm").read_bytes() == b"gsm-recording"
    assert not (tr / "main-menu.wav").exists()
    assert (tr / "say" / "5.wav").read_bytes() == b"RIFF-five"
    assert wav_format(tr / "say" / "50.wav") == (8000, 1, 16)  # its neighbours untouched
    assert wav_format(sounds / "en" / "callcenter" / "main-menu.wav") == (8000, 1, 16)

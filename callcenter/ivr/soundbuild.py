"""The prompts build: every sound the IVR and the dialplan can play, as Asterisk-ready files.

``python -m callcenter prompts build --out DIR`` (or ``python -m callcenter.ivr.soundbuild``,
which needs nothing but the standard library, for an image build stage) reads the menu's
recording script (``[prompts]``, the neighbourhood names and the number building blocks of
``callcenter.ivr.say``) and writes, per language, ``DIR/<lang>/<sound>.wav`` — 8 kHz, mono,
16-bit PCM, the layout Asterisk's ``sounds/`` directory expects — speaking the text with
Debian's ``espeak-ng`` and converting with ``sox``.

Real recordings win: files found in ``--recordings REC`` (``REC/<lang>/<sound without
callcenter/>.<ext>``, e.g. ``tr/main-menu.wav``, the layout of ``docker/asterisk/sounds``)
are copied over the generated ones, and any file already in ``DIR`` that the build did not
write itself is kept untouched. A manifest (``DIR/.callcenter-prompts.json``) remembers what
was generated from which text, so a second build only redoes what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.ivr import say
from callcenter.ivr.menu import IvrMenu, MenuError, load_menu, recording_list

MANIFEST = ".callcenter-prompts.json"
# Bump when the way files are made changes, so every cached file is made again.
RECIPE = "espeak-ng+sox/8000/1/16/v1"
SAMPLE_RATE = 8000
# Formats Asterisk can play a sound from: a recording in any of them overrides the .wav.
AUDIO_EXTENSIONS = (".wav", ".WAV", ".wav16", ".gsm", ".sln", ".sln16", ".ulaw", ".alaw", ".g722")
VOICES = {"tr": "tr", "en": "en"}
_NUMBER_SUFFIX = re.compile(r"(\d+)'(\w+)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# A sentence that invites the caller to switch language is spoken in that language's voice.
_OTHER_LANGUAGE = {"en": re.compile(r"\bpress\b", re.I), "tr": re.compile(r"basınız", re.I)}


@dataclass(frozen=True, slots=True)
class Prompt:
    """One sound to make: its name and its text per language (None = a silence)."""

    name: str
    texts: Mapping[str, str] | None
    silence_s: float = 0.0


@dataclass(slots=True)
class BuildReport:
    """What a build did, per file state; ``files`` lists every file the build stands for."""

    generated: int = 0
    cached: int = 0
    copied: int = 0
    kept: int = 0
    per_language: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class BuildError(RuntimeError):
    """A prompt could not be made (a tool is missing or failed)."""


def prompt_plan(menu: IvrMenu) -> list[Prompt]:
    """Every sound any flow or the dialplan can play, with its text in each language."""
    plan: dict[str, Prompt] = {}
    for name, texts in recording_list(menu):
        plan[name] = Prompt(name, dict(texts))
    plan[say.PAUSE] = Prompt(say.PAUSE, None, say.PAUSE_S)
    return [plan[name] for name in sorted(plan)]


def _tr_number_words(n: int) -> str:
    return " ".join(say.VOCABULARY[w]["tr"] for w in say.number(n, "tr"))


def _tr_with_suffix(match: re.Match[str]) -> str:
    """ "1'e" → "bire", "4'e" → "dörde": espeak-ng would say "bir e"."""
    words = _tr_number_words(int(match.group(1))) if len(match.group(1)) <= 12 else match.group(1)
    suffix = match.group(2)
    if words.endswith("dört") and suffix[:1] in "aeıioöuü":
        words = words[:-1] + "d"  # consonant softening before a vowel
    return words + suffix


def speech_markup(text: str, language: str) -> str:
    """The text as SSML for espeak-ng: number suffixes spelt out, the other language voiced."""
    if language == "tr":
        text = _NUMBER_SUFFIX.sub(_tr_with_suffix, text)
    parts = []
    for sentence in _SENTENCE.split(text.strip()):
        escaped = sentence.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        other = next(
            (
                lang
                for lang, pattern in _OTHER_LANGUAGE.items()
                if lang != language and pattern.search(sentence)
            ),
            None,
        )
        if other is not None and not _OTHER_LANGUAGE[language].search(sentence):
            if other == "tr":
                escaped = _NUMBER_SUFFIX.sub(_tr_with_suffix, escaped)
            escaped = f'<voice xml:lang="{other}">{escaped}</voice>'
        parts.append(escaped)
    return "<speak>" + " ".join(parts) + "</speak>"


def _digest(prompt: Prompt, language: str) -> str:
    text = prompt.texts.get(language, "") if prompt.texts is not None else ""
    key = f"{RECIPE}\0{language}\0{speech_markup(text, language) if text else prompt.silence_s}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _existing(base: Path) -> list[Path]:
    """The files Asterisk would find for a sound (any format), ``base`` without extension."""
    if not base.parent.is_dir():
        return []
    candidates = (base.with_name(base.name + ext) for ext in AUDIO_EXTENSIONS)
    return [path for path in candidates if path.is_file()]


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[:300]}")


class _Builder:
    def __init__(self, out: Path, recordings: Path | None, espeak: str, sox: str) -> None:
        self.out = out
        self.recordings = recordings
        self.espeak = espeak
        self.sox = sox
        path = out / MANIFEST
        try:
            loaded = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (OSError, ValueError):
            loaded = {}
        files = loaded.get("files", {}) if isinstance(loaded, dict) else {}
        self.old: dict[str, dict[str, str]] = files if isinstance(files, dict) else {}
        self.new: dict[str, dict[str, str]] = {}

    def recording_for(self, prompt: Prompt, language: str) -> Path | None:
        if self.recordings is None:
            return None
        short = prompt.name.removeprefix("callcenter/")
        found = _existing(self.recordings / language / short)
        return found[0] if found else None

    def ours(self, rel: str, path: Path) -> bool:
        """Whether a file in the output was written by a build (so it may be replaced)."""
        entry = self.old.get(rel)
        return entry is not None and path.is_file() and entry.get("sha") == _file_digest(path)

    def plan_one(self, prompt: Prompt, language: str) -> tuple[str, Path, str]:
        """What to do for one sound: (action, target, digest); action is cached|copy|keep|make."""
        base = self.out / language / prompt.name
        recording = self.recording_for(prompt, language)
        present = _existing(base)
        if recording is not None:
            target = base.with_name(base.name + recording.suffix)
            return "copy", target, _file_digest(recording)
        for path in present:
            rel = path.relative_to(self.out).as_posix()
            if not self.ours(rel, path):
                return "keep", path, ""  # a real recording put there by hand: it wins
        target = base.with_name(base.name + ".wav")
        digest = _digest(prompt, language)
        rel = target.relative_to(self.out).as_posix()
        entry = self.old.get(rel, {})
        if entry.get("source") == digest and self.ours(rel, target):
            return "cached", target, digest
        return "make", target, digest

    def make(self, prompt: Prompt, language: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="prompt-") as tmp:
            raw, final = Path(tmp) / "espeak.wav", Path(tmp) / "out.wav"
            if prompt.texts is None:
                _run([self.sox, "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(final),
                      "trim", "0", f"{prompt.silence_s:.3f}"])  # fmt: skip
            else:
                markup = speech_markup(prompt.texts[language], language)
                voice = VOICES.get(language, language)
                _run([self.espeak, "-m", "-v", voice, "-w", str(raw), markup])
                _run([self.sox, str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                      str(final)])  # fmt: skip
            shutil.move(str(final), target.with_suffix(".tmp"))
        os.replace(target.with_suffix(".tmp"), target)


def build_prompts(
    menu: IvrMenu,
    out: Path,
    *,
    recordings: Path | None = None,
    jobs: int | None = None,
    espeak: str = "espeak-ng",
    sox: str = "sox",
) -> BuildReport:
    """Writes every prompt in every language under ``out``; returns what it did."""
    started = time.monotonic()
    for tool in (espeak, sox):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is not installed (Debian: apt-get install espeak-ng sox)")
    out.mkdir(parents=True, exist_ok=True)
    builder = _Builder(out, recordings, espeak, sox)
    report = BuildReport()
    work: list[tuple[Prompt, str, Path, str]] = []
    for prompt in prompt_plan(menu):
        for language in menu.languages:
            if prompt.texts is not None and not prompt.texts.get(language):
                report.errors.append(f"{prompt.name}: no {language} text")
                continue
            action, target, digest = builder.plan_one(prompt, language)
            rel = target.relative_to(out).as_posix()
            report.per_language[language] = report.per_language.get(language, 0) + 1
            if action == "keep":
                report.kept += 1
            elif action == "cached":
                report.cached += 1
                builder.new[rel] = builder.old[rel]
            elif action == "copy":
                recording = builder.recording_for(prompt, language)
                assert recording is not None
                for stale in _existing(out / language / prompt.name):
                    if stale != target and builder.ours(stale.relative_to(out).as_posix(), stale):
                        stale.unlink()  # Asterisk must not pick the generated one instead
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.is_file() or _file_digest(target) != digest:
                    shutil.copyfile(recording, target)
                builder.new[rel] = {"sha": digest, "source": "recording"}
                report.copied += 1
            else:
                for stale in _existing(out / language / prompt.name):
                    if stale != target:  # a copied recording that is gone from REC
                        stale.unlink()
                work.append((prompt, language, target, digest))

    def make(item: tuple[Prompt, str, Path, str]) -> tuple[str, str | None]:
        prompt, language, target, digest = item
        try:
            builder.make(prompt, language, target)
        except (BuildError, OSError) as exc:
            return target.relative_to(out).as_posix(), str(exc)
        return target.relative_to(out).as_posix(), None

    workers = max(1, jobs or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for (rel, error), (_, _, target, digest) in zip(pool.map(make, work), work, strict=True):
            if error is not None:
                report.errors.append(f"{rel}: {error}")
                continue
            builder.new[rel] = {"sha": _file_digest(target), "source": digest}
            report.generated += 1
    manifest = {"recipe": RECIPE, "files": dict(sorted(builder.new.items()))}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def wav_format(path: Path) -> tuple[int, int, int]:
    """(sample rate, channels, bits per sample) of a PCM .wav file, read from its header."""
    data = path.read_bytes()[:4096]
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if chunk == b"fmt ":
            body = data[at + 8 : at + 8 + 16]
            channels = int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")
            bits = int.from_bytes(body[14:16], "little")
            return rate, channels, bits
        at += 8 + size + (size & 1)
    raise ValueError(f"{path}: no fmt chunk")


def expected_files(menu: IvrMenu, out: Path) -> Iterator[tuple[str, str, Path]]:
    """(language, sound, base path without extension) for every sound the build must cover."""
    for prompt in prompt_plan(menu):
        for language in menu.languages:
            yield language, prompt.name, out / language / prompt.name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the build's arguments."""
    parser.add_argument("--out", required=True, type=Path, help="sounds directory to write")
    parser.add_argument("--menu", help="IVR menu file (default: CALLCENTER_IVR_MENU's packaged)")
    parser.add_argument(
        "--recordings",
        type=Path,
        help="real recordings, REC/<lang>/<sound without callcenter/>.<ext>: they win",
    )
    parser.add_argument("--jobs", type=int, default=None, help="parallel espeak-ng/sox runs")


def run(args: argparse.Namespace, menu_path: str | None) -> int:
    """Builds the prompts and prints a one-line JSON summary; 1 when any prompt failed."""
    try:
        menu = load_menu(menu_path)
        report = build_prompts(menu, args.out, recordings=args.recordings, jobs=args.jobs)
    except MenuError as exc:
        print(exc, file=sys.stderr)
        return 2
    except BuildError as exc:
        print(f"prompts: {exc}", file=sys.stderr)
        return 2
    for error in report.errors:
        print(f"prompts: {error}", file=sys.stderr)
    summary = {
        "out": str(args.out),
        "languages": report.per_language,
        "generated": report.generated,
        "cached": report.cached,
        "copied_recordings": report.copied,
        "kept_recordings": report.kept,
        "seconds": report.seconds,
        "errors": len(report.errors),
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 1 if report.errors else 0


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m callcenter.ivr.soundbuild --out DIR``: the build on the standard library."""
    parser = argparse.ArgumentParser(prog="callcenter.ivr.soundbuild", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    return run(args, args.menu)


if __name__ == "__main__":
    sys.exit(main())

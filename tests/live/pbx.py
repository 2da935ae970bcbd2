"""A real Asterisk for tests: renders ``asterisk_conf/``, runs it relocated, and phones for it.

The public API (the live suite and other live tests build on it):

* ``find_asterisk()`` — the binary named by the ``ASTERISK`` setting, or None.
* ``render_conf(work, ports, ...)`` — renders ``asterisk_conf/`` with the project's own render
  step (``docker/asterisk/entrypoint.sh --render-only``), then relocates the result: every
  ``asterisk.conf`` directory under ``work``, AMI/SIP/RTP/FastAGI on free loopback ports, a
  ``harness`` AMI user with every right, and the test dialplan (``HARNESS_DIALPLAN``) included.
  Each change must match the rendered file exactly once, so a change of the shipped files is
  noticed here instead of silently testing something else.
* ``Pbx`` — starts Asterisk in the foreground as a child (``-f -n``), waits until it is fully
  booted, runs CLI commands (``cli``), parses ``queue show`` (``queue_counts``), reads its
  console log and queue_log, and stops it.
* ``Phone`` — a ``pjsua`` SIP phone registered as one of ``pjsip.conf``'s agents, answering
  every call (optionally hanging up after a talk time).
* ``TcpProxy`` — a loopback TCP proxy whose links a test can cut (an AMI link that dies).
* ``install_placeholder_prompts`` / ``install_prompts`` — the IVR's sounds under ``sounds/``.

Run ``python -m tests.live.pbx WORKDIR`` to render and start one by hand (it prints the ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
CONF_TEMPLATES = ROOT / "asterisk_conf"
ENTRYPOINT = ROOT / "docker" / "asterisk" / "entrypoint.sh"

AMI_SECRET = "live-ami-secret"  # the service's least-privilege user ("callcenter")
HARNESS_USER = "harness"
HARNESS_SECRET = "harness-secret"
AGENTS = tuple(f"10{n:02d}" for n in range(1, 9))


def agent_secret(ext: str) -> str:
    """The SIP password the rendered pjsip.conf gives agent ``ext``."""
    return f"sip-{ext}-pw"


def render_env(ports: Ports | None = None, db_url: str | None = None) -> dict[str, str]:
    """The secrets and site values the render step needs (what Compose passes the image).

    With ``db_url`` Asterisk writes its queue_log and CEL into that database (res_pgsql.conf,
    extconfig.conf, cel_pgsql.conf), as the deployment does into the service's.
    """
    env = {
        "AMI_SECRET": AMI_SECRET,
        "ASTERISK_EXTERNAL_ADDRESS": "127.0.0.1",
    }
    env.update({f"AGENT_{ext}_SECRET": agent_secret(ext) for ext in AGENTS})
    if db_url:
        url = urlsplit(db_url)
        env.update(
            {
                "ASTERISK_DB_HOST": url.hostname or "127.0.0.1",
                "ASTERISK_DB_PORT": str(url.port or 5432),
                "ASTERISK_DB_NAME": url.path.lstrip("/"),
                "ASTERISK_DB_USER": url.username or "postgres",
                # The render step wants a value; a trust-authenticated server ignores it.
                "ASTERISK_DB_PASSWORD": url.password or "unused-with-trust",
            }
        )
    return env


# The test-only dialplan: callers' phones and agents' phones on Local channels.
HARNESS_DIALPLAN = """\
; Written by tests/live/pbx.py: the phones of a live test (not part of the product).
[harness-caller]
; The citizen's phone, the ;2 half of Local/cust@harness-caller: answers and stays on the
; line; the test presses keys (AMI PlayDTMF) and hangs up (AMI Hangup) itself.
exten => cust,1,Answer()
 same => n,Wait(600)
 same => n,Hangup()

[harness-agent]
; A queue member Local/9XXX@harness-agent/n (state interface Custom:9XXX). Global knobs the
; test sets with AMI Setvar: RD_9XXX ring seconds before answering ("never" rings out),
; TALK_9XXX seconds before the agent hangs up (empty: the caller or the test ends the call).
exten => _9XXX,1,Set(CHANNEL(hangup_handler_push)=harness-agent-hangup,s,1(${EXTEN}))
 same => n,Set(DEVICE_STATE(Custom:${EXTEN})=RINGING)
 same => n,Set(RD=${IF($["${RD_${EXTEN}}" = ""]?1:${RD_${EXTEN}})})
 same => n,GotoIf($["${RD}" = "never"]?never)
 same => n,Wait(${RD})
 same => n,Answer()
 same => n,Set(DEVICE_STATE(Custom:${EXTEN})=INUSE)
 same => n,GotoIf($["${TALK_${EXTEN}}" = ""]?forever)
 same => n,Wait(${TALK_${EXTEN}})
 same => n,Hangup()
 same => n(forever),Wait(600)
 same => n,Hangup()
 same => n(never),Wait(600)
 same => n,Hangup()

[harness-agent-hangup]
exten => s,1,Set(DEVICE_STATE(Custom:${ARG1})=NOT_INUSE)
 same => n,Return()
"""


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one live PBX and its service."""

    ami: int
    sip: int
    fastagi: int
    http: int
    rtp_start: int

    @classmethod
    def free(cls) -> Ports:
        """Picks free loopback ports (RTP: a random 200-port range)."""
        rtp = 20000 + (os.getpid() * 7 + int(time.time())) % 200 * 200
        return cls(free_port(), free_port(socket.SOCK_DGRAM), free_port(), free_port(), rtp)


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_asterisk(env: Mapping[str, str] | None = None) -> Path | None:
    """The Asterisk binary the ``ASTERISK`` setting names, if it is set and executable."""
    env = os.environ if env is None else env
    value = env.get("ASTERISK", "").strip()
    if not value:
        return None
    path = Path(value)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def module_dir(binary: Path) -> Path:
    """Where the modules of ``binary`` are: ``ASTERISK_MODULES``, beside it, or the default."""
    if os.environ.get("ASTERISK_MODULES"):
        return Path(os.environ["ASTERISK_MODULES"])
    beside = binary.resolve().parent.parent / "lib" / "asterisk" / "modules"
    return beside if beside.is_dir() else Path("/usr/lib/asterisk/modules")


def install_varlib(binary: Path) -> Path:
    """The installation's ``var/lib/asterisk`` (documentation, keys), beside ``binary``."""
    beside = binary.resolve().parent.parent / "var" / "lib" / "asterisk"
    return beside if beside.is_dir() else Path("/var/lib/asterisk")


def pjsua_binary(binary: Path) -> Path | None:
    """The ``pjsua`` phone installed beside ``binary`` (``PJSUA`` overrides), if any."""
    candidates = [os.environ.get("PJSUA", ""), str(binary.parent / "pjsua")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    found = shutil.which("pjsua")
    return Path(found) if found else None


@dataclass
class Layout:
    """Where a rendered, relocated PBX lives."""

    work: Path
    ports: Ports
    binary: Path

    @property
    def etc(self) -> Path:
        return self.work / "etc"

    @property
    def conf(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def log(self) -> Path:
        return self.work / "log"

    @property
    def sounds(self) -> Path:
        return self.work / "data" / "sounds"

    @property
    def queue_log(self) -> Path:
        return self.log / "queue_log"

    @property
    def console(self) -> Path:
        return self.work / "console.log"


def _replace(path: Path, pattern: str, new: str, flags: int = re.M) -> None:
    """Replaces the one match of ``pattern`` in ``path`` (no match or several is an error)."""
    text = path.read_text(encoding="utf-8")
    found = len(re.findall(pattern, text, flags))
    if found != 1:
        raise AssertionError(f"{path.name}: expected one match of {pattern!r}, found {found}")
    path.write_text(re.sub(pattern, new.replace("\\", "\\\\"), text, flags=flags), "utf-8")


def run_render(dest: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs the project's render step (``entrypoint.sh --render-only``) into ``dest``."""
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ASTERISK_CONF_TEMPLATES": str(CONF_TEMPLATES),
        "ASTERISK_CONF_DIR": str(dest),
        **env,
    }
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "--render-only"],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def render_conf(work: Path, ports: Ports, binary: Path, db_url: str | None = None) -> Layout:
    """Renders ``asterisk_conf/`` into ``work/etc`` and relocates it for a run as a child."""
    layout = Layout(work, ports, binary)
    done = run_render(layout.etc, render_env(ports, db_url))
    if done.returncode != 0:
        raise AssertionError(f"the render step failed: {done.stderr}")
    etc = layout.etc
    dirs = {
        "astcachedir": work / "cache",
        "astetcdir": etc,
        "astmoddir": module_dir(binary),
        "astvarlibdir": work / "varlib",
        "astdbdir": work / "db",
        "astkeydir": work / "keys",
        "astdatadir": work / "data",
        "astagidir": work / "agi-bin",
        "astspooldir": work / "spool",
        "astrundir": work / "run",
        "astlogdir": layout.log,
        "astsbindir": binary.parent,
    }
    for name, path in dirs.items():
        _replace(etc / "asterisk.conf", rf"^{name} => .*$", f"{name} => {path}")
        if name not in {"astmoddir", "astsbindir"}:
            path.mkdir(parents=True, exist_ok=True)
    # Asterisk reads its documentation XML (needed to start) from astdatadir/documentation:
    # link the installation's.
    docs = install_varlib(binary) / "documentation"
    if docs.is_dir() and not (dirs["astdatadir"] / "documentation").exists():
        (dirs["astdatadir"] / "documentation").symlink_to(docs)
    (dirs["astkeydir"] / "keys").mkdir(parents=True, exist_ok=True)  # res_crypto's keys/
    for sub in ("cdr-custom", "cel-custom"):
        (layout.log / sub).mkdir(parents=True, exist_ok=True)
    for conf in ("cdr_custom.conf", "cel_custom.conf"):
        _replace(etc / conf, r"^\[/var/log/asterisk/", f"[{layout.log}/")
    manager = etc / "manager.conf"
    _replace(manager, r"^port = 5038", f"port = {ports.ami}")
    _replace(manager, r"^bindaddr = 0\.0\.0\.0", "bindaddr = 127.0.0.1")
    with manager.open("a", encoding="utf-8") as fh:
        fh.write(
            f"\n; tests/live/pbx.py: the test driver's own user\n[{HARNESS_USER}]\n"
            f"secret = {HARNESS_SECRET}\ndeny = 0.0.0.0/0.0.0.0\n"
            "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n"
        )
    _replace(etc / "pjsip.conf", r"^bind = 0\.0\.0\.0:5060", f"bind = 127.0.0.1:{ports.sip}")
    _replace(etc / "rtp.conf", r"^rtpstart = \d+", f"rtpstart = {ports.rtp_start}")
    _replace(etc / "rtp.conf", r"^rtpend = \d+", f"rtpend = {ports.rtp_start + 199}")
    extensions = etc / "extensions.conf"
    _replace(
        extensions, r"^CC_AGI = agi://callcenter:4573$", f"CC_AGI = agi://127.0.0.1:{ports.fastagi}"
    )
    (etc / "extensions_harness.conf").write_text(HARNESS_DIALPLAN, encoding="utf-8")
    with extensions.open("a", encoding="utf-8") as fh:
        fh.write("\n#include extensions_harness.conf\n")
    # Music on hold: one second of silence (the image mounts the municipality's music here).
    moh = work / "data" / "moh"
    moh.mkdir(parents=True, exist_ok=True)
    write_silence(moh / "silence.wav", 1.0)
    return layout


def write_silence(path: Path, seconds: float) -> None:
    """Writes an 8 kHz 16-bit mono WAV of silence (a format Asterisk plays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))


def prompt_names() -> list[str]:
    """Every sound the packaged menu can play (its recording list, neighbourhoods included)."""
    from callcenter.ivr.menu import load_menu, recording_list

    return sorted(name for name, _ in recording_list(load_menu()))


# Asterisk's own number sounds the IVR's SAY NUMBER/DIGITS may reach (English rules).
_DIGIT_SOUNDS = [str(n) for n in range(0, 21)] + [str(n) for n in range(30, 100, 10)]
_DIGIT_SOUNDS += ["hundred", "thousand", "million", "minus", "oclock", "a-m", "p-m"]


def has_prompts_command() -> bool:
    """True when the project has ``python -m callcenter prompts build``."""
    done = subprocess.run(
        [sys.executable, "-m", "callcenter", "prompts", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0


def install_prompts(sounds: Path) -> str:
    """Installs the IVR's prompts: generated by the project if it can, else placeholders."""
    if has_prompts_command():
        subprocess.run(
            [sys.executable, "-m", "callcenter", "prompts", "build", "--out", str(sounds)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        return "generated"
    install_placeholder_prompts(sounds)
    return "placeholders"


def install_placeholder_prompts(sounds: Path, seconds: float = 0.4) -> None:
    """Writes a short silence for every prompt and number sound, in Turkish and English."""
    for lang in ("tr", "en"):
        for name in prompt_names():
            write_silence(sounds / lang / f"{name}.wav", seconds)
        for name in _DIGIT_SOUNDS:
            write_silence(sounds / lang / "digits" / f"{name}.wav", 0.1)


@dataclass
class Pbx:
    """A relocated Asterisk running as a child process of the test."""

    layout: Layout
    proc: subprocess.Popen[bytes] | None = None
    _console: object = None

    def start(self, timeout: float = 30.0) -> None:
        """Starts Asterisk in the foreground and waits until it is fully booted."""
        lay = self.layout
        console = lay.console.open("wb")
        self._console = console
        self.proc = subprocess.Popen(
            [str(lay.binary), "-C", str(lay.conf), "-f", "-n", "-vvv"],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"Asterisk exited ({self.proc.returncode}):\n{self.console_text()[-3000:]}"
                )
            done = self._rx("core waitfullybooted", timeout=5)
            if done.returncode == 0 and "fully booted" in done.stdout:
                return
            time.sleep(0.1)
        raise AssertionError(f"Asterisk did not boot:\n{self.console_text()[-3000:]}")

    def _rx(self, command: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.layout.binary), "-C", str(self.layout.conf), "-rx", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cli(self, command: str) -> str:
        """Runs one CLI command (``asterisk -rx``) and returns its output."""
        done = self._rx(command)
        if done.returncode != 0:
            raise AssertionError(f"asterisk -rx {command!r} failed: {done.stderr}")
        return done.stdout

    def queue_counts(self) -> dict[str, int]:
        """Callers waiting per queue, as ``queue show`` says ("genel has 2 calls")."""
        counts = {}
        for match in re.finditer(r"^(\S+) has (\d+) calls?", self.cli("queue show"), re.M):
            counts[match.group(1)] = int(match.group(2))
        return counts

    def console_text(self) -> str:
        """What Asterisk printed so far."""
        return self.layout.console.read_text(encoding="utf-8", errors="replace")

    def console_lines(self, level: str) -> list[str]:
        """Console lines of a level (``ERROR``, ``WARNING``)."""
        return [line for line in self.console_text().splitlines() if f"] {level}[" in line]

    def stop(self) -> None:
        """Stops Asterisk (core stop now, then SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._rx("core stop now", timeout=10)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Phone:
    """A ``pjsua`` softphone registered as agent ``ext`` that answers every call."""

    pjsua: Path
    ext: str
    layout: Layout
    talk_s: int | None = None  # hang up this long after answering; None: the other side ends
    proc: asyncio.subprocess.Process | None = None
    output: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts the phone (registration happens in the background; see ``registered``)."""
        args = [
            str(self.pjsua),
            "--null-audio",
            "--no-tcp",
            "--no-vad",
            "--bound-addr=127.0.0.1",
            "--ip-addr=127.0.0.1",
            f"--local-port={free_port(socket.SOCK_DGRAM)}",
            f"--rtp-port={self.layout.ports.rtp_start + 200 + int(self.ext[-2:]) * 10}",
            f"--id=sip:{self.ext}@127.0.0.1",
            f"--registrar=sip:127.0.0.1:{self.layout.ports.sip}",
            "--realm=*",
            f"--username={self.ext}",
            f"--password={agent_secret(self.ext)}",
            "--auto-answer=200",
            "--max-calls=4",
            "--log-level=4",  # level 4 prints the SIP messages (the INVITE's headers)
            "--app-log-level=4",
        ]
        if self.talk_s is not None:
            args.append(f"--duration={self.talk_s}")
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,  # pjsua quits when its input ends: keep it open
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.output.append(raw.decode("utf-8", "replace").rstrip())

    async def stop(self) -> None:
        """Quits the phone (it unregisters), killing it if it does not."""
        if self.proc is None or self.proc.returncode is not None:
            return
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError, OSError):
            self.proc.stdin.write(b"q\n")
            await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2)


class TcpProxy:
    """A loopback TCP proxy to ``target``; ``cut()`` drops every link it carries."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.refuse = False

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> TcpProxy:
        """Starts listening on a free loopback port."""
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        """Drops every link now (both ends see the connection close)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        """Stops listening and drops every link."""
        self.cut()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)


@contextlib.contextmanager
def running_pbx(work: Path, binary: Path) -> Iterator[Pbx]:
    """Renders, installs prompts, starts Asterisk; stops it at the end."""
    layout = render_conf(work, Ports.free(), binary)
    install_prompts(layout.sounds)
    pbx = Pbx(layout)
    try:
        pbx.start()
        yield pbx
    finally:
        pbx.stop()


def main() -> None:
    """Renders and starts a PBX by hand: ``python -m tests.live.pbx WORKDIR``."""
    binary = find_asterisk()
    if binary is None or len(sys.argv) != 2:
        raise SystemExit("usage: ASTERISK=/path/to/asterisk python -m tests.live.pbx WORKDIR")
    with running_pbx(Path(sys.argv[1]).resolve(), binary) as pbx:
        lay = pbx.layout
        print(f"Asterisk running: {lay.binary} -C {lay.conf} -r")
        users = f"callcenter/{AMI_SECRET}, {HARNESS_USER}/{HARNESS_SECRET}"
        print(f"AMI 127.0.0.1:{lay.ports.ami} ({users})")
        print(f"SIP 127.0.0.1:{lay.ports.sip}; FastAGI expected on 127.0.0.1:{lay.ports.fastagi}")
        print("Ctrl-C stops it.")
        with contextlib.suppress(KeyboardInterrupt):
            pbx.proc.wait() if pbx.proc else None


if __name__ == "__main__":
    main()

"""A private, throwaway PostgreSQL server (initdb + pg_ctl) for tests and the demo.

Debian's server binaries refuse to run as root, so as root they run as ``postgres``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PrivatePostgres:
    """A throwaway PostgreSQL server (initdb + pg_ctl) a test can stop and start at will."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="cc-pg-"))
        self.data = self.dir / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # Debian's server binaries refuse to run as root.
        self._as_pg: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self._as_pg = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        """Runs a server binary as the right user, raising with its output on failure."""
        cmd = [*self._as_pg, f"{self.bindir}/{args[0]}", *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        """Creates the cluster (trust authentication, UTF-8)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o", opts, "start"
        )

    def stop(self) -> None:
        """Stops the server abruptly, as a crash or a network loss looks to clients."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        """Stops the server if running and deletes its files."""
        cmd = [*self._as_pg, f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m", "immediate"]
        subprocess.run([*cmd, "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_bindir() -> str | None:
    """The newest installed PostgreSQL server binaries, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return os.path.dirname(found[-1]) if found else None

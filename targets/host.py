"""`host`: the machine edgekit runs on (on a Raspberry Pi with edgekit installed, this is
already the on-device path). The agent runs in a fresh subprocess of this Python, so one
runtime's threads never share a process with another's."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edgekit.errors import TargetUnreachable

from .base import AgentTarget


class HostBoard:
    """This machine as a board: scratch folders in the system temp dir, commands as subprocesses."""

    def mkdtemp(self) -> str:
        """A new `edgekit-*` folder in the system temp dir."""
        return tempfile.mkdtemp(prefix="edgekit-")

    def put(self, local: Path, remote_dir: str, name: str | None = None) -> str:
        """Nothing is copied (same filesystem): the absolute path of LOCAL (NAME is ignored)."""
        return str(Path(local).resolve())  # same filesystem: nothing to copy

    def get(self, remote: str, local: Path) -> None:
        """Copy REMOTE to LOCAL."""
        shutil.copyfile(remote, local)

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        """Run ARGV as a subprocess (stdin closed, TF_CPP_MIN_LOG_LEVEL=2 unless set) →
        (exit code, stdout, stderr). TargetUnreachable (exit 4) after TIMEOUT seconds."""
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise TargetUnreachable(f"host: the agent did not finish within {timeout:.0f} s.",
                                    "Lower --runs, or raise the timeout.") from exc
        return p.returncode, p.stdout, p.stderr

    def rmtree(self, remote_dir: str) -> None:
        """Remove REMOTE_DIR, ignoring errors."""
        shutil.rmtree(remote_dir, ignore_errors=True)


class HostTarget(AgentTarget):
    """`host`: the agent runs in a fresh subprocess of PYTHON (default: this interpreter,
    `sys.executable`), so only its own runtime's threads share the process."""

    name = "host"
    emulated = False
    local = True

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable

    @contextlib.contextmanager
    def board(self):
        """Context manager yielding a `HostBoard` (no connection to open or close)."""
        yield HostBoard()


def from_spec(spec: str, python: str | None = None, **_options) -> HostTarget:
    """`host` / `local` → a HostTarget running the agent with PYTHON (None: this interpreter).
    Other options (e.g. accept_new_host_key) are ignored."""
    return HostTarget(python=python)

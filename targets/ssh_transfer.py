"""Copying files to and from a board whose SSH server offers no SFTP subsystem.

Many Dropbear builds and minimal sshd configurations have no `Subsystem sftp`: paramiko's
`open_sftp()` then fails ("Channel closed"). The same bytes go through an exec channel instead:
`cat > FILE` with the file streamed on stdin, `cat FILE` streamed back from stdout, paths
quoted with shlex. Only POSIX `cat` is needed on the board (busybox has it).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

CHUNK = 32768


class ExecCopyError(Exception):
    """The board's `cat` failed (its exit status and stderr are in the message)."""


def _open(transport, command: str, timeout: float):
    chan = transport.open_session(timeout=timeout)
    chan.settimeout(timeout)
    chan.exec_command(command)
    return chan


def _finish(chan, command: str, timeout: float) -> None:
    """Wait for COMMAND's exit status; raise ExecCopyError with its stderr when it is not 0."""
    err = bytearray()
    deadline = time.monotonic() + timeout
    while not chan.exit_status_ready():
        if chan.recv_stderr_ready():
            err += chan.recv_stderr(CHUNK)
        elif chan.closed:
            break
        elif time.monotonic() > deadline:
            chan.close()
            raise TimeoutError(f"{command!r} did not finish within {timeout:.0f} s")
        else:
            time.sleep(0.005)
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(CHUNK)
    code = chan.recv_exit_status() if chan.exit_status_ready() else -1
    chan.close()
    if code != 0:
        why = err.decode("utf-8", "replace").strip() or f"exit status {code}"
        raise ExecCopyError(why)


def put(transport, local: Path, remote: str, timeout: float = 300.0) -> None:
    """Copy LOCAL (a file on this machine) to REMOTE (an absolute path on the board) through
    `cat > REMOTE`. TIMEOUT (seconds) bounds each wait for the board. Raises ExecCopyError when
    the board's `cat` fails (no space, no such folder), OSError/EOFError/paramiko.SSHException
    when the connection fails, TimeoutError when the board stops answering."""
    command = "cat > " + shlex.quote(remote)
    with open(local, "rb") as f:
        chan = _open(transport, command, timeout)
        try:
            for block in iter(lambda: f.read(CHUNK), b""):
                chan.sendall(block)
            chan.shutdown_write()  # EOF on the board's stdin: cat writes the rest and exits
        except OSError:
            if transport.is_active():
                _finish(chan, command, timeout)  # cat stopped early: its own message says why
            raise
    _finish(chan, command, timeout)


def get(transport, remote: str, local: Path, timeout: float = 300.0) -> None:
    """Copy REMOTE (a path on the board) to LOCAL through `cat REMOTE`, streamed to disk; LOCAL
    is removed again if the copy fails. TIMEOUT (seconds) bounds each wait for data. Raises
    ExecCopyError when the board's `cat` fails (no such file), OSError/EOFError/
    paramiko.SSHException when the connection fails, TimeoutError (a socket.timeout) when the
    board stops sending."""
    command = "cat " + shlex.quote(remote)
    chan = _open(transport, command, timeout)
    ok = False
    try:
        with open(local, "wb") as f:
            while True:
                block = chan.recv(CHUNK)
                if not block:
                    break
                f.write(block)
        _finish(chan, command, timeout)
        ok = True
    finally:
        if not ok:
            Path(local).unlink(missing_ok=True)

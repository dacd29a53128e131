"""`ssh://user@host[:port]`: a Raspberry Pi, Jetson or any Linux board with Python 3.

edgekit pushes the device agent and the artifact into a fresh `edgekit-XXXXXXXX` folder under
the board's $TMPDIR (else /tmp), runs the agent with the board's Python, reads its JSON result,
and removes the folder. The agent removes it too when the connection drops (its stdin closes),
so an interrupted session leaves nothing behind.

Security: key authentication only (agent, ~/.ssh/id_*, or IdentityFile), `~/.ssh/config` honoured
(HostName, User, Port, IdentityFile, UserKnownHostsFile, ConnectTimeout, ProxyCommand), and the
host key must already be in known_hosts: an unknown key is refused unless the user passes
--accept-new-host-key (it is then recorded, like OpenSSH's StrictHostKeyChecking=accept-new);
a changed key is always refused.

Which Python: `python3` on the board's PATH, or `?python=/path` in the URL, or the
EDGEKIT_SSH_PYTHON environment variable (for a venv on the board).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from edgekit.errors import BadInput, TargetUnreachable, require

from .base import AgentTarget, quote

CONNECT_TIMEOUT = 10.0


def parse(spec: str) -> dict:
    u = urlsplit(spec)
    if u.scheme != "ssh" or not u.hostname:
        raise BadInput(f"Cannot read the SSH target {spec!r}.", "Write it as ssh://user@host[:port].")
    try:
        port = u.port
    except ValueError as exc:
        raise BadInput(f"Bad port in {spec!r}.", "Write it as ssh://user@host[:port].") from exc
    q = parse_qs(u.query)
    return {"host": u.hostname, "user": u.username, "port": port,
            "python": (q.get("python") or [None])[0], "name": spec.split("?", 1)[0]}


class SSHBoard:
    def __init__(self, target: "SSHTarget", client):
        self.t, self.client = target, client
        self.sftp = client.open_sftp()

    def _run(self, command: str, timeout: float) -> tuple[int, str, str]:
        """Run COMMAND; its stdin stays open until it ends, so the agent sees EOF (and cleans up)
        when the connection drops."""
        transport = self.client.get_transport()
        try:
            chan = transport.open_session(timeout=CONNECT_TIMEOUT)
            chan.exec_command(command)
        except Exception as exc:
            raise self.t.dropped(exc) from exc
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        wait = 0.001
        while True:
            got = False
            try:
                while chan.recv_ready():
                    out += chan.recv(65536)
                    got = True
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    got = True
            except Exception as exc:
                raise self.t.dropped(exc) from exc
            if chan.eof_received and chan.exit_status_ready() and not chan.recv_ready() \
                    and not chan.recv_stderr_ready():
                break
            if chan.closed or not transport.is_active():
                break  # drained above; no exit status can come any more
            if time.monotonic() > deadline:
                chan.close()
                raise TargetUnreachable(f"{self.t.name}: no result within {timeout:.0f} s; the run was stopped.",
                                        "Lower --runs, or check the board's load.")
            wait = 0.001 if got else min(wait * 2, 0.05)  # quick for short commands, idle for long runs
            time.sleep(wait)
        if not chan.exit_status_ready():  # the channel closed without an exit status: the session died
            raise self.t.dropped(None)
        code = chan.recv_exit_status()
        if code == -1:
            raise self.t.dropped(None)
        return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def mkdtemp(self) -> str:
        code, out, err = self._run('mktemp -d "${TMPDIR:-/tmp}/edgekit-XXXXXXXX"', 30)
        if code != 0 or not out.strip():
            raise TargetUnreachable(f"{self.t.name}: cannot create a temporary folder: {err.strip()}",
                                    "Check that /tmp (or $TMPDIR) on the board is writable.")
        return out.strip().splitlines()[-1]

    def _copy_error(self, exc, what):
        if self.client.get_transport() is None or not self.client.get_transport().is_active():
            return self.t.dropped(exc)
        return TargetUnreachable(f"{self.t.name}: cannot copy {what}: {exc}", "Check free space on the board.")

    def put(self, local: Path, remote_dir: str, name: str | None = None) -> str:
        remote = f"{remote_dir}/{name or Path(local).name}"
        try:
            self.sftp.put(str(local), remote)
        except Exception as exc:
            raise self._copy_error(exc, f"{local} to the board") from exc
        return remote

    def get(self, remote: str, local: Path) -> None:
        try:
            self.sftp.get(remote, str(local))
        except Exception as exc:
            raise self._copy_error(exc, f"{remote} from the board") from exc

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        env = "TF_CPP_MIN_LOG_LEVEL=2 "
        return self._run(env + _with_watch(argv), timeout)

    def rmtree(self, remote_dir: str) -> None:
        if not os.path.basename(remote_dir).startswith("edgekit-"):
            return  # never remove anything edgekit did not create
        try:
            self._run("rm -rf " + quote([remote_dir]), 30)
        except TargetUnreachable:
            self.t.cleanup_later(remote_dir)


def _with_watch(argv: list[str]) -> str:
    # --watch-stdin goes before the subcommand: the agent's global options
    i = argv.index("--cleanup")
    return quote(argv[: i] + ["--watch-stdin"] + argv[i:])


class SSHTarget(AgentTarget):
    emulated = False

    def __init__(self, spec: str, accept_new_host_key: bool = False, python: str | None = None,
                 connect_timeout: float | None = None):
        p = parse(spec)
        self.name = p["name"]
        self.alias = p["host"]
        self.accept_new = accept_new_host_key
        self._user, self._port = p["user"], p["port"]
        self.python = python or p["python"] or os.environ.get("EDGEKIT_SSH_PYTHON") or "python3"
        self.connect_timeout = connect_timeout
        self._pending_cleanup: list[str] = []

    # -- connection ------------------------------------------------------------------------------

    def _config(self) -> dict:
        paramiko = require("paramiko", "ssh", "paramiko (SSH targets)")
        path = Path(os.path.expanduser("~/.ssh/config"))
        if path.is_file():
            return paramiko.SSHConfig.from_path(str(path)).lookup(self.alias)
        return {"hostname": self.alias}

    def connect(self):
        paramiko = require("paramiko", "ssh", "paramiko (SSH targets)")
        cfg = self._config()
        host = cfg.get("hostname", self.alias)
        port = self._port or int(cfg.get("port", 22))
        user = self._user or cfg.get("user") or _local_user()
        timeout = self.connect_timeout or float(cfg.get("connecttimeout", CONNECT_TIMEOUT))
        client = paramiko.SSHClient()
        known = [os.path.expanduser(k) for k in (cfg.get("userknownhostsfile") or "~/.ssh/known_hosts").split()]
        with contextlib.suppress(OSError, IOError):
            client.load_system_host_keys()
        for k in known:
            if os.path.isfile(k):
                client.load_host_keys(k)  # the last one loaded is where accept-new records
        strict = str(cfg.get("stricthostkeychecking", "")).lower()
        if self.accept_new or strict in ("accept-new", "no", "off"):
            client.set_missing_host_key_policy(_RecordNewKey(known[0]))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        keys = [os.path.expanduser(k) for k in cfg.get("identityfile", [])]
        sock = paramiko.ProxyCommand(cfg["proxycommand"]) if cfg.get("proxycommand") else None
        where = f"{user}@{host}:{port}"
        try:
            client.connect(host, port=port, username=user, key_filename=[k for k in keys if os.path.isfile(k)] or None,
                           timeout=timeout, banner_timeout=timeout, auth_timeout=timeout, look_for_keys=True,
                           allow_agent=True, sock=sock, password=None)
        except paramiko.BadHostKeyException as exc:
            raise TargetUnreachable(f"{self.name}: the host key of {host} changed ({exc.key.get_name()}); refusing to "
                                    "connect.", "If the board was reinstalled, remove its old key with "
                                    f"ssh-keygen -R '[{host}]:{port}' and check the new fingerprint.") from exc
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise TargetUnreachable(
                    f"{self.name}: the host key of {host}:{port} is unknown; refusing to connect.",
                    f"Check the fingerprint (ssh -p {port} {user}@{host} once), or pass --accept-new-host-key to "
                    "trust it now and record it in known_hosts.") from exc
            if isinstance(exc, paramiko.AuthenticationException):
                raise TargetUnreachable(f"{self.name}: key authentication as {user} failed ({exc}).",
                                        f"Install your public key on the board (ssh-copy-id -p {port} {user}@{host}) "
                                        "or set IdentityFile in ~/.ssh/config.") from exc
            raise TargetUnreachable(f"{self.name}: SSH failed: {exc}", "Check the address and that sshd runs.") from exc
        except (OSError, EOFError) as exc:
            raise TargetUnreachable(f"{self.name}: cannot reach {where}: {exc}",
                                    "Check the address, the port, and that the board is on.") from exc
        return client

    def dropped(self, exc) -> TargetUnreachable:
        why = f" ({exc.__class__.__name__}: {exc})" if exc else ""
        return TargetUnreachable(f"{self.name}: the connection dropped during the run{why}.",
                                 "Check the network and the board (power, load), then run again; the board's "
                                 "temporary folder is removed by the agent when its connection goes.")

    def cleanup_later(self, remote_dir: str) -> None:
        self._pending_cleanup.append(remote_dir)

    @contextlib.contextmanager
    def board(self):
        client = self.connect()
        try:
            yield SSHBoard(self, client)
        finally:
            client.close()
            if self._pending_cleanup:  # the session died mid-way: one more try on a new connection
                dirs, self._pending_cleanup = self._pending_cleanup, []
                with contextlib.suppress(Exception):
                    c = self.connect()
                    try:
                        c.exec_command("rm -rf " + quote(dirs), timeout=CONNECT_TIMEOUT)[1].channel.recv_exit_status()
                    finally:
                        c.close()


class _RecordNewKey:
    """accept-new: trust an unknown host key once and record it; a changed key still fails."""

    def __init__(self, path: str):
        self.path = path

    def missing_host_key(self, client, hostname, key):
        client.get_host_keys().add(hostname, key.get_name(), key)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path, "a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def _local_user() -> str:
    import getpass

    return getpass.getuser()


def from_spec(spec: str, accept_new_host_key: bool = False, python: str | None = None, **_options) -> SSHTarget:
    return SSHTarget(spec, accept_new_host_key=accept_new_host_key, python=python)

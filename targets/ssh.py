"""`ssh://user@host[:port]`: a Raspberry Pi, Jetson or any Linux board with Python 3.

edgekit pushes the device agent and the artifact into a fresh `edgekit-XXXXXXXX` folder under
the board's $TMPDIR (else /tmp), runs the agent with the board's Python, reads its JSON result,
and removes the folder. The agent removes it too when the connection drops (its stdin closes),
so an interrupted session leaves nothing behind.

Security: key authentication only (agent, ~/.ssh/id_*, or IdentityFile), and the host key must
already be in known_hosts: an unknown key is refused unless the user passes --accept-new-host-key
(it is then recorded, like OpenSSH's StrictHostKeyChecking=accept-new); a changed key is always
refused.

~/.ssh/config is read as OpenSSH reads it (targets/ssh_config.py): Include, Host, Match (host,
originalhost, user, localuser, canonical, final, all; not exec), HostName, User, Port, IdentityFile,
IdentitiesOnly, UserKnownHostsFile, GlobalKnownHostsFile, StrictHostKeyChecking, ConnectTimeout,
ServerAliveInterval, Compression, ProxyCommand and ProxyJump (chains `a,b`: each jump host's own
config entry applies; the board is reached through a direct-tcpip channel of the last one). An
option that changes where or how to connect and is not honoured is refused (exit 2) by name.

Boards without an SFTP subsystem (Dropbear builds, minimal sshd): files travel through the exec
channel (`cat > FILE` / `cat FILE`, see targets/ssh_transfer.py); SFTP is used when offered.

Which Python: `python3` on the board's PATH, or `?python=/path` in the URL, or the
EDGEKIT_SSH_PYTHON environment variable (for a venv on the board).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from edgekit.errors import BadInput, TargetUnreachable, require

from . import ssh_config, ssh_transfer
from .base import AgentTarget, quote

CONNECT_TIMEOUT = 10.0


def parse(spec: str) -> dict:
    """`ssh://[user@]host[:port][?python=PATH]` → {host, user, port, python, name}; user, port and
    python are None when not given; name is the spec without its query. Raises BadInput (exit 2)
    for another scheme, no host or a bad port."""
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
    """One SSH connection to the board (the `Board` contract of targets/base.py). Files travel by
    SFTP when the server offers it, else through the exec channel (`cat`, see ssh_transfer)."""

    def __init__(self, target: "SSHTarget", client):
        self.t, self.client = target, client
        try:
            self.sftp = client.open_sftp()
        except Exception as exc:  # no SFTP subsystem: paramiko sees the channel closed
            transport = client.get_transport()
            if transport is None or not transport.is_active():
                raise target.dropped(exc) from exc
            self.sftp = None

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
        """A fresh `edgekit-XXXXXXXX` folder under the board's $TMPDIR (else /tmp); its path.
        Raises TargetUnreachable (exit 4) when it cannot be made or the connection drops."""
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
        """Copy LOCAL into REMOTE_DIR on the board (as NAME, else its own name); the remote path.
        Raises TargetUnreachable (exit 4) when the copy fails or the connection drops."""
        remote = f"{remote_dir}/{name or Path(local).name}"
        try:
            if self.sftp is not None:
                self.sftp.put(str(local), remote)
            else:
                ssh_transfer.put(self.client.get_transport(), Path(local), remote, timeout=CONNECT_TIMEOUT * 30)
        except Exception as exc:
            raise self._copy_error(exc, f"{local} to the board") from exc
        return remote

    def get(self, remote: str, local: Path) -> None:
        """Copy REMOTE (a path on the board) to LOCAL. Raises TargetUnreachable (exit 4) when the
        copy fails or the connection drops."""
        try:
            if self.sftp is not None:
                self.sftp.get(remote, str(local))
            else:
                ssh_transfer.get(self.client.get_transport(), remote, Path(local), timeout=CONNECT_TIMEOUT * 30)
        except Exception as exc:
            raise self._copy_error(exc, f"{remote} from the board") from exc

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        """Run the agent command ARGV (quoted for the board's shell, with --watch-stdin so it
        cleans up when the connection drops); (exit status, stdout, stderr). TIMEOUT in seconds.
        Raises TargetUnreachable (exit 4) on timeout or a dropped connection."""
        env = "TF_CPP_MIN_LOG_LEVEL=2 "
        return self._run(env + _with_watch(argv), timeout)

    def rmtree(self, remote_dir: str) -> None:
        """Remove REMOTE_DIR (only an `edgekit-*` folder) with `rm -rf`; if the connection is gone,
        one more try on a new connection when the session ends."""
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
    """`ssh://user@host[:port][?python=PATH]`: a Linux board reached with paramiko, honouring the
    user's ~/.ssh/config (targets.ssh_config); check/profile/run as every AgentTarget. Raises
    BadInput (exit 2) for an unreadable spec or config, TargetUnreachable (exit 4) when the board
    cannot be reached or its host key is unknown without --accept-new-host-key."""

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

    def connect(self):
        """Open an authenticated paramiko SSHClient to the board, as `ssh` would reach it with the
        user's ~/.ssh/config (through ProxyCommand or every ProxyJump hop). Close it with
        `close_client` (which also closes the jump hosts' connections).

        Raises BadInput (exit 2) for a config option edgekit does not honour, TargetUnreachable
        (exit 4) when the board or a jump host cannot be reached, its host key is unknown or
        changed, or key authentication fails; MissingDependency (exit 3) without paramiko."""
        cfg = ssh_config.lookup(self.alias, user=self._user, port=self._port)
        return self._open(cfg, None, via=None, depth=0)

    def _open(self, cfg: dict, jump: str | None, via, depth: int):
        """Connect to the host CFG describes; JUMP is its name when it is a jump host (for
        messages); VIA the ProxyJump hops that replace its own route (a later hop of a chain)."""
        paramiko = require("paramiko", "ssh", "paramiko (SSH targets)")
        host = cfg.get("hostname", self.alias)
        port = _number(cfg, "port", 22, int)
        user = cfg.get("user") or _local_user()
        timeout = self.connect_timeout or _number(cfg, "connecttimeout", CONNECT_TIMEOUT, float)
        who = f"the jump host {jump} ({user}@{host}:{port})" if jump else f"{user}@{host}:{port}"
        kind, how = ("jump", via) if via else ssh_config.route(cfg)
        sock, jumps = None, []
        if kind == "command":
            try:
                sock = paramiko.ProxyCommand(how)
            except (OSError, ValueError, paramiko.SSHException) as exc:
                raise TargetUnreachable(f"{self.name}: the ProxyCommand for {who} cannot start ({exc}).",
                                        "Check ProxyCommand in ~/.ssh/config.") from exc
        elif kind == "jump":
            if depth >= ssh_config.MAX_JUMPS:
                raise BadInput(f"{self.name}: ProxyJump goes more than {ssh_config.MAX_JUMPS} hops deep "
                               "(a jump host that jumps through itself?).", "Check ProxyJump in ~/.ssh/config.")
            jhost, juser, jport = how[-1]
            jclient = self._open(ssh_config.lookup(jhost, user=juser, port=jport), jhost, how[:-1] or None, depth + 1)
            jumps.append(jclient)
            try:
                sock = jclient.get_transport().open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0),
                                                            timeout=timeout)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                close_client(jclient)
                raise TargetUnreachable(f"{self.name}: the jump host {jhost} cannot reach {who} ({exc}).",
                                        "Check the address as the jump host sees it, that the board is on, and "
                                        "that the jump host allows forwarding (AllowTcpForwarding).") from exc
        client = paramiko.SSHClient()
        client.edgekit_jumps = jumps
        try:
            self._trust(client, cfg, paramiko)
            keys = [os.path.expanduser(k) for k in cfg.get("identityfile", [])]
            only = str(cfg.get("identitiesonly", "no")).lower() == "yes"
            agent = str(cfg.get("identityagent", "")).lower() != "none" and not only
            client.connect(host, port=port, username=user, key_filename=[k for k in keys if os.path.isfile(k)] or None,
                           timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                           look_for_keys=not (only and keys), allow_agent=agent, sock=sock, password=None,
                           compress=str(cfg.get("compression", "no")).lower() == "yes")
            alive = _number(cfg, "serveraliveinterval", 0, int)
            if alive > 0:
                client.get_transport().set_keepalive(alive)
            return client
        except BaseException as exc:
            close_client(client)
            err = self._connect_error(exc, who, host, port, user, paramiko)
            if err is exc:
                raise
            raise err from exc

    def _trust(self, client, cfg: dict, paramiko) -> None:
        """Load known_hosts (User- and GlobalKnownHostsFile) and set the unknown-key policy."""
        known = [os.path.expanduser(k) for k in (cfg.get("userknownhostsfile") or "~/.ssh/known_hosts").split()]
        with contextlib.suppress(OSError, IOError):
            client.load_system_host_keys()
        for k in str(cfg.get("globalknownhostsfile", "")).split():
            if os.path.isfile(os.path.expanduser(k)):
                client.get_host_keys().load(os.path.expanduser(k))
        for k in known:
            if os.path.isfile(k):
                client.load_host_keys(k)  # the last one loaded is where accept-new records
        strict = str(cfg.get("stricthostkeychecking", "")).lower()
        if self.accept_new or strict in ("accept-new", "no", "off"):
            client.set_missing_host_key_policy(_RecordNewKey(known[0]))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())

    def _connect_error(self, exc, who, host, port, user, paramiko):
        """The EdgekitError to raise for EXC from paramiko's connect (EXC itself if it is one)."""
        if not isinstance(exc, Exception) or hasattr(exc, "exit_code"):
            return exc
        if isinstance(exc, paramiko.BadHostKeyException):
            return TargetUnreachable(f"{self.name}: the host key of {who} changed ({exc.key.get_name()}); refusing "
                                     "to connect.", "If the board was reinstalled, remove its old key with "
                                     f"ssh-keygen -R '[{host}]:{port}' and check the new fingerprint.")
        if isinstance(exc, paramiko.SSHException):
            if "not found in known_hosts" in str(exc):
                return TargetUnreachable(
                    f"{self.name}: the host key of {who} is unknown; refusing to connect.",
                    f"Check the fingerprint (ssh -p {port} {user}@{host} once), or pass --accept-new-host-key to "
                    "trust it now and record it in known_hosts.")
            if isinstance(exc, paramiko.AuthenticationException):
                return TargetUnreachable(f"{self.name}: key authentication as {user} on {who} failed ({exc}).",
                                         f"Install your public key there (ssh-copy-id -p {port} {user}@{host}) "
                                         "or set IdentityFile in ~/.ssh/config.")
            return TargetUnreachable(f"{self.name}: SSH to {who} failed: {exc}",
                                     "Check the address and that sshd runs.")
        if isinstance(exc, (OSError, EOFError)):
            return TargetUnreachable(f"{self.name}: cannot reach {who}: {exc}",
                                     "Check the address, the port, and that the board is on.")
        return exc

    def dropped(self, exc) -> TargetUnreachable:
        """The TargetUnreachable (exit 4) for a connection lost mid-session (EXC its cause or None)."""
        why = f" ({exc.__class__.__name__}: {exc})" if exc else ""
        return TargetUnreachable(f"{self.name}: the connection dropped during the run{why}.",
                                 "Check the network and the board (power, load), then run again; the board's "
                                 "temporary folder is removed by the agent when its connection goes.")

    def cleanup_later(self, remote_dir: str) -> None:
        """Remember REMOTE_DIR for one more removal attempt on a fresh connection."""
        self._pending_cleanup.append(remote_dir)

    @contextlib.contextmanager
    def board(self):
        """One connection to the board as an SSHBoard, closed (with its jump hosts) on exit.
        Raises what `connect` raises."""
        client = self.connect()
        try:
            yield SSHBoard(self, client)
        finally:
            close_client(client)
            if self._pending_cleanup:  # the session died mid-way: one more try on a new connection
                dirs, self._pending_cleanup = self._pending_cleanup, []
                with contextlib.suppress(Exception):
                    c = self.connect()
                    try:
                        c.exec_command("rm -rf " + quote(dirs), timeout=CONNECT_TIMEOUT)[1].channel.recv_exit_status()
                    finally:
                        close_client(c)


class _RecordNewKey:
    """accept-new: trust an unknown host key once and record it; a changed key still fails."""

    def __init__(self, path: str):
        self.path = path

    def missing_host_key(self, client, hostname, key):
        client.get_host_keys().add(hostname, key.get_name(), key)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path, "a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def _number(cfg: dict, key: str, default, kind):
    """CFG[KEY] as KIND (int or float), DEFAULT when absent; BadInput (exit 2) when not a number."""
    value = cfg.get(key)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise BadInput(f"~/.ssh/config: {key} {value!r} is not a number.", f"Fix {key} for this host.") from None


def close_client(client) -> None:
    """Close paramiko CLIENT and then the jump hosts it was reached through (innermost first)."""
    client.close()
    for j in reversed(getattr(client, "edgekit_jumps", [])):
        close_client(j)


def _local_user() -> str:
    import getpass

    return getpass.getuser()


def from_spec(spec: str, accept_new_host_key: bool = False, python: str | None = None, **_options) -> SSHTarget:
    """The target for `ssh://[user@]host[:port][?python=PATH]`; ACCEPT_NEW_HOST_KEY trusts and
    records an unknown host key; PYTHON the board's interpreter. Raises BadInput (exit 2) for a
    spec that cannot be read (connection errors come later, from check/profile/run)."""
    return SSHTarget(spec, accept_new_host_key=accept_new_host_key, python=python)

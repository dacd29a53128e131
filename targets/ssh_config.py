"""~/.ssh/config for SSH targets, read the way OpenSSH reads it, or refused naming what is not.

paramiko's `SSHConfig` evaluates `Host`, `Match` (host, originalhost, user, localuser,
canonical, final, all), token expansion and canonicalization, but it does not follow `Include`
and it silently treats a `Match` criterion it does not know as matching. This module expands
`Include` itself (ssh_config(5): several arguments, `~`, glob patterns sorted, relative paths
are relative to ~/.ssh, missing files skipped, at most 16 levels deep, an Include inside a
Host/Match block applies only when that block does), refuses the Match criteria paramiko cannot
evaluate, refuses `Match exec` (paramiko would run it through the optional invoke package, which
reads edgekit's own stdin; edgekit runs no command from the config), and refuses every option
that changes where or how to connect and that the SSH target does not honour. A refusal is
`BadInput` (exit 2) naming the option, the file and the line.

Honoured (see `HONOURED`): HostName, Port, User, IdentityFile, IdentitiesOnly, IdentityAgent
none, UserKnownHostsFile, GlobalKnownHostsFile, StrictHostKeyChecking, ConnectTimeout,
ServerAliveInterval, Compression, ProxyCommand, ProxyJump, the Canonicalize* options.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

from edgekit.errors import BadInput, require

MAX_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
MAX_JUMPS = 8
LINE = re.compile(r"^(\w+)(?:\s*=\s*|\s+)(.+)$")
MATCH_CRITERIA = {"all", "canonical", "final", "host", "originalhost", "user", "localuser"}
HONOURED = {
    "hostname", "port", "user", "identityfile", "identitiesonly", "identityagent", "userknownhostsfile",
    "globalknownhostsfile", "stricthostkeychecking", "connecttimeout", "serveraliveinterval", "compression",
    "proxycommand", "proxyjump", "canonicalizehostname", "canonicaldomains", "canonicalizemaxdots",
    "canonicalizefallbacklocal", "canonicalizepermittedcnames",
}
# Options that change where or how the connection is made and that paramiko cannot follow here:
# ignoring them would connect somewhere else or otherwise than `ssh` does. A value that is
# OpenSSH's own default is harmless and accepted.
REFUSED = {
    "bindaddress": (), "bindinterface": (), "addressfamily": ("any",), "hostkeyalias": (),
    "certificatefile": (), "pkcs11provider": ("none",), "securitykeyprovider": ("internal",),
    "knownhostscommand": ("none",), "ciphers": (), "kexalgorithms": (), "macs": (), "hostkeyalgorithms": (),
    "pubkeyacceptedalgorithms": (), "pubkeyacceptedkeytypes": (), "casignaturealgorithms": (),
    "requiredrsasize": (), "tunnel": ("no",), "remotecommand": ("none",), "sessiontype": ("default",),
}


def config_path() -> Path:
    """The user's OpenSSH client configuration: ~/.ssh/config (HOME as the environment gives it)."""
    return Path(os.path.expanduser("~/.ssh/config"))


def _refuse(option: str, where: str, why: str, hint: str | None = None) -> BadInput:
    return BadInput(f"{where}: {option} {why}; edgekit will not connect differently from ssh, so it stops here.",
                    hint or f"Remove {option} for this host (or give the board a Host entry without it), or "
                    "reach the board with ProxyJump/ProxyCommand, which edgekit honours.")


def _match_criteria(value: str, where: str) -> list[str]:
    """The criteria of a Match line as tokens; an unknown criterion is refused (exit 2)."""
    try:
        tokens = shlex.split(value)
    except ValueError as exc:
        raise _refuse("Match", where, f"cannot be read ({exc})") from exc
    i = 0
    while i < len(tokens):
        kind = tokens[i].lstrip("!").lower()
        if kind == "exec":
            raise _refuse("Match exec", where, "would run a command from the config, which edgekit does not do",
                          "Give the board a Host entry (or Match host/originalhost/user) that needs no command.")
        if kind not in MATCH_CRITERIA:
            raise _refuse(f"Match {kind}", where, "is a criterion edgekit cannot evaluate",
                          "Use Host patterns or Match host/originalhost/user/localuser/all for boards "
                          "edgekit should reach.")
        i += 1 if kind in ("all", "canonical", "final") else 2
    return tokens


def _as_criteria(key: str, value: str, where: str) -> list[str]:
    """A Host or Match header as Match criteria (Host P Q ≡ Match originalhost P,Q)."""
    if key == "host":
        try:
            return ["originalhost", ",".join(shlex.split(value))]
        except ValueError as exc:
            raise _refuse("Host", where, f"cannot be read ({exc})", "Fix the quoting of that line.") from exc
    return [t for t in _match_criteria(value, where) if t.lower() != "all"]


def _header(criteria: list[str]) -> str:
    return "Match " + " ".join(shlex.quote(t) for t in criteria) if criteria else "Host *"


def _header_criteria(header: str, where: str) -> list[str]:
    m = LINE.match(header)
    return _as_criteria(m.group(1).lower(), m.group(2).strip(), where)


def expand(path: Path, depth: int = 0, outer: list[str] | None = None, seen: dict | None = None) -> list[str]:
    """The lines of config file PATH with every Include replaced by the files it names.

    Arguments: PATH the file; DEPTH the Include nesting level; OUTER the Match criteria of the
    block the Include sits in (None at the top level) so that an included file's own Host/Match
    blocks apply only where that block does; SEEN collects option → first "file:line" (for
    messages). Returns lines paramiko's SSHConfig parses. Raises BadInput (exit 2) for an
    Include nested deeper than 16 levels, a token in an Include path, an unknown Match criterion.
    """
    seen = {} if seen is None else seen
    lines: list[str] = []
    header: str | None = None  # the Host/Match line of the block we are in (as emitted)
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = LINE.match(line)
            if not m:
                lines.append(line)  # paramiko names the unparsable line
                continue
            key, value, where = m.group(1).lower(), m.group(2).strip(), f"{path}:{n}"
            seen.setdefault(key, where)
            if key in ("host", "match"):
                if key == "match":
                    _match_criteria(value, where)
                # inside an included file under a Host/Match block, both must hold
                header = line if outer is None else _header(outer + _as_criteria(key, value, where))
                lines.append(header)
            elif key == "include":
                if depth + 1 > MAX_INCLUDE_DEPTH:
                    raise _refuse("Include", where, f"nests deeper than {MAX_INCLUDE_DEPTH} levels (a loop?)",
                                  "Remove the Include that includes its own file.")
                if "%" in value or "${" in value:
                    raise _refuse("Include", where, "uses %-tokens or ${VARIABLES}, which edgekit does not expand",
                                  "Write the path out in full.")
                inner = outer if header is None else _header_criteria(header, where)
                try:
                    patterns = shlex.split(value)
                except ValueError as exc:  # an unbalanced quote
                    raise _refuse("Include", where, f"cannot be read ({exc})", "Fix the quoting of that line.") from exc
                if any("\0" in p for p in patterns):
                    raise _refuse("Include", where, "names a path with a NUL byte", "Fix that line.")
                for pattern in patterns:
                    pattern = os.path.expanduser(pattern)
                    if not os.path.isabs(pattern):
                        pattern = os.path.join(os.path.expanduser("~/.ssh"), pattern)
                    for name in sorted(glob.glob(pattern)):
                        if os.path.isfile(name):
                            lines += expand(Path(name), depth + 1, inner, seen)
                            # back in this file's block once the included file is done
                            lines.append(header or _header(outer or []))
            else:
                lines.append(line)
    return lines


def lookup(alias: str, user: str | None = None, port: int | None = None) -> dict:
    """The options that apply to host ALIAS, as `ssh ALIAS` would use them.

    Arguments: ALIAS the host as given (a Host alias or an address); USER and PORT from the
    command line or URL take precedence over the file (and `Match user` sees USER), as with
    `ssh -l USER -p PORT`. Returns paramiko's SSHConfigDict (lower-case keys, `hostname` always
    set). Raises BadInput (exit 2) for an option edgekit does not honour that changes where or
    how to connect (named with its file and line), an unknown Match criterion, a bad Include or
    an unreadable line; MissingDependency (exit 3) without paramiko.
    """
    paramiko = require("paramiko", "ssh", "paramiko (SSH targets)")
    path = config_path()
    seen: dict = {}
    lines = [f"User {user}"] if user else []
    lines += [f"Port {port}"] if port else []
    if path.is_file():
        try:
            lines += expand(path, seen=seen)
        except OSError as exc:
            raise BadInput(f"Cannot read {path}: {exc}.", "Check the file's permissions.") from exc
    try:
        cfg = paramiko.SSHConfig.from_text("\n".join(lines)).lookup(alias)
    except paramiko.ssh_exception.ConfigParseError as exc:
        raise BadInput(f"{path}: {exc}.", "Fix that line (see man ssh_config).") from exc
    except paramiko.ssh_exception.CouldNotCanonicalize as exc:
        raise BadInput(f"{path}: CanonicalizeHostname could not canonicalize {exc}.",
                       "Check CanonicalDomains, or set CanonicalizeFallbackLocal yes.") from exc
    except KeyError as exc:  # paramiko 5.1: CanonicalizeHostname without CanonicalDomains
        raise BadInput(f"{path}: an option needs {exc.args[0]!r}, which is not set for {alias}.",
                       "Set CanonicalDomains with CanonicalizeHostname, or remove CanonicalizeHostname.") from exc
    for key, value in cfg.items():
        allowed = REFUSED.get(key)
        if allowed is not None and str(value).strip().lower() not in allowed:
            raise _refuse(_name(key), seen.get(key, str(path)), "is set for this host and edgekit does not honour it")
    agent = str(cfg.get("identityagent", "SSH_AUTH_SOCK"))
    if agent.lower() != "none" and agent.lstrip("$") != "SSH_AUTH_SOCK":
        raise _refuse("IdentityAgent", seen.get("identityagent", str(path)),
                      "names an agent socket other than $SSH_AUTH_SOCK", "Set SSH_AUTH_SOCK to that socket instead.")
    return cfg


def _name(key: str) -> str:
    names = {"bindaddress": "BindAddress", "bindinterface": "BindInterface", "addressfamily": "AddressFamily",
             "hostkeyalias": "HostKeyAlias", "certificatefile": "CertificateFile", "macs": "MACs",
             "pkcs11provider": "PKCS11Provider", "securitykeyprovider": "SecurityKeyProvider",
             "knownhostscommand": "KnownHostsCommand", "ciphers": "Ciphers", "kexalgorithms": "KexAlgorithms",
             "hostkeyalgorithms": "HostKeyAlgorithms", "pubkeyacceptedalgorithms": "PubkeyAcceptedAlgorithms",
             "pubkeyacceptedkeytypes": "PubkeyAcceptedKeyTypes", "casignaturealgorithms": "CASignatureAlgorithms",
             "requiredrsasize": "RequiredRSASize", "tunnel": "Tunnel", "remotecommand": "RemoteCommand",
             "sessiontype": "SessionType"}
    return names.get(key, key)


def route(cfg: dict) -> tuple[str, object]:
    """How to reach the host CFG describes: ("direct", None), ("command", PROXYCOMMAND) or
    ("jump", [(host, user|None, port|None), ...]) — ProxyCommand and ProxyJump compete, the first
    one given wins (ssh_config(5)); "none" means direct. Raises BadInput (exit 2) for a
    ProxyJump entry that cannot be read."""
    for key in cfg:  # SSHConfigDict keeps the order in which options were first obtained
        if key == "proxycommand":
            return ("command", cfg[key]) if cfg[key] else ("direct", None)
        if key == "proxyjump":
            value = str(cfg[key]).strip()
            return ("direct", None) if value.lower() == "none" else ("jump", parse_jumps(value))
    return "direct", None


def parse_jumps(value: str) -> list[tuple[str, str | None, int | None]]:
    """ProxyJump's value (`[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated, the
    first hop first) → [(host, user, port)]. Raises BadInput (exit 2) for an unreadable entry."""
    hops = []
    for entry in value.split(","):
        entry = entry.strip()
        try:  # urlsplit itself raises ValueError for a broken [IPv6] part
            u = urlsplit(entry if entry.startswith("ssh://") else "ssh://" + entry)
            port, host = u.port, u.hostname
        except ValueError:
            u, port, host = None, -1, None
        if not host or port == -1 or u.path or u.query:
            raise BadInput(f"ProxyJump entry {entry!r} cannot be read.",
                           "Write it as [user@]host[:port] (several separated by commas).")
        hops.append((host, u.username, port))
    if len(hops) > MAX_JUMPS:
        raise BadInput(f"ProxyJump lists {len(hops)} hops; edgekit follows at most {MAX_JUMPS}.",
                       "Shorten the chain.")
    return hops

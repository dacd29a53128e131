"""Named targets: short names for the target strings a user types often, from a TOML file.

    # ~/.config/edgekit/targets.toml
    [targets]
    pi4 = "ssh://pi@raspberrypi.local"
    pixel = "adb:38011FDJH00ABC?python=/data/local/tmp/py/bin/python3"
    tpu = "coral@ssh://mendel@coral.local:usb"

Each value is a TARGET string of a registered kind (edgekit.targets.TARGETS). A name is letters,
digits, `_`, `.` and `-`, starts with a letter or digit, and may not be a scheme ("host", "ssh",
"adb" ...: those keep their meaning). A name stands for its string everywhere a TARGET is
read (`--target pi4`, `devices check pi4`, `targets: [pi4]` in edgekit.yaml) and results are
reported under the name.

The file: $EDGEKIT_TARGETS_FILE, else $XDG_CONFIG_HOME/edgekit/targets.toml, else
~/.config/edgekit/targets.toml. It is read only when a TARGET is not of a registered kind (or
by `edgekit devices`); a missing file means no names.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from edgekit.errors import BadInput

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
EXAMPLE = '[targets]\npi4 = "ssh://pi@raspberrypi.local"'


def config_path() -> Path:
    """The named-targets file: $EDGEKIT_TARGETS_FILE, else $XDG_CONFIG_HOME/edgekit/targets.toml,
    else ~/.config/edgekit/targets.toml (it need not exist)."""
    explicit = os.environ.get("EDGEKIT_TARGETS_FILE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "edgekit" / "targets.toml"


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10: the tomli backport (a dependency there)
        import tomli as tomllib
    return tomllib


def load(path: Path | None = None) -> dict[str, str]:
    """The named targets of PATH (default `config_path()`): {name: TARGET string}, in file
    order; {} when the file does not exist.

    Raises BadInput (exit 2) naming the file for unreadable TOML, a `targets` that is not a
    table, a value that is not a string of a registered target kind, a name that is a scheme,
    or a name with other characters than letters, digits, `_ . -`.
    """
    from edgekit import targets as registry

    path = Path(path) if path is not None else config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BadInput(f"Cannot read the named-targets file {path}: {exc.strerror or exc}.",
                       "Fix its permissions, or point EDGEKIT_TARGETS_FILE at another file.") from exc
    tomllib = _toml()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{path}: not valid TOML ({exc}).", f"Write it as:\n{EXAMPLE}") from exc
    table = doc.get("targets", {})
    if not isinstance(table, dict):
        raise BadInput(f"{path}: `targets` must be a table of name = \"TARGET\".", f"Write it as:\n{EXAMPLE}")
    schemes = {s for t in registry.TARGETS for s in (t.scheme, *t.aliases)}
    out: dict[str, str] = {}
    for name, spec in table.items():
        where = f"{path}: targets.{name}"
        if not NAME.match(name):
            raise BadInput(f"{where}: a name is letters, digits, '_', '.' and '-' (starting with a letter or digit).",
                           "e.g. pi4, lab-pixel, coral.usb")
        if name.lower() in schemes:
            raise BadInput(f"{where}: {name!r} is a target scheme, so it cannot also be a name.",
                           "Choose another name (e.g. my-" + name + ").")
        if not isinstance(spec, str) or not spec.strip():
            raise BadInput(f"{where} must be a TARGET string.", f"e.g. {name} = \"ssh://pi@raspberrypi.local\"")
        if registry.kind_of(spec) is None:
            raise BadInput(f"{where}: {spec!r} is not a target edgekit knows (a name cannot stand for another name).",
                           f"Targets: {registry.forms()}.")
        out[name] = spec.strip()
    return out


def lookup(name: str) -> str | None:
    """The TARGET string that NAME stands for in the named-targets file, or None when NAME is
    not a name there. Raises BadInput (exit 2) for a broken file (see `load`)."""
    if not NAME.match(name or ""):
        return None
    return load().get(name)


def unknown_hint() -> str:
    """The hint of an "Unknown target" error: the named targets (and their file) when there are
    any, how to add one otherwise. Never raises (a broken file is named, not raised)."""
    path = config_path()
    try:
        known = load(path)
    except BadInput as exc:
        return f"Named targets: none usable ({exc.message})."
    if known:
        return f"Named targets ({path}): " + ", ".join(known) + "."
    return f"Name a target in {path}: [targets] pi4 = \"ssh://pi@raspberrypi.local\"."

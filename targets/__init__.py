"""Targets: where an artifact runs and is measured (host, SSH boards, emulated arm64, ...).

`TARGETS` below is the one list of target kinds: the `--target` help of `profile`, `validate`
and `devices check`, the "Unknown target" hint and the README's target list derive from it
(tests/test_registries.py checks the README).

Every target runs the same device agent (edgekit/agent/, a zipapp of edgekit's runtimes) and implements the
contract in `base.Target`: `check()`, `profile(artifact, settings)`, `run(artifact, feeds)`.
Adding a target is one module with `from_spec(spec, **options)` and one `TargetKind(...)` line
below. Users name the target strings they use often in a TOML file (targets/names.py):
`get("pi4")` reads `pi4 = "ssh://pi@raspberrypi.local"` there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from edgekit.errors import BadInput


@dataclass(frozen=True)
class TargetKind:
    """One kind of target.

    Args:
        scheme: the part of TARGET before ':' or '://' ("host", "ssh", "adb", ...).
        module: a module of this package ("ssh") or a full dotted module path.
        form: how a user writes it, for help texts ("ssh://user@host[:port]").
        what: one line saying what it is.
        aliases: other schemes that mean the same ("local" for host).
    """

    scheme: str
    module: str
    form: str
    what: str
    aliases: tuple = ()

    def load(self):
        """Import and return the target module (which has `from_spec(spec, **options)`)."""
        name = self.module if "." in self.module else f"edgekit.targets.{self.module}"
        return importlib.import_module(name)


TARGETS: list[TargetKind] = [
    TargetKind("host", "host", "host", "this machine, the agent in a fresh subprocess (the default)", ("local",)),
    TargetKind("ssh", "ssh", "ssh://user@host[:port]", "any Linux board with Python (Raspberry Pi, Jetson, ...)"),
    TargetKind("qemu-arm64", "qemu", "qemu-arm64[:ROOTFS]", "an emulated 64-bit Raspberry Pi (arm64 Debian, qemu-user)"),
    TargetKind("adb", "android", "adb[:SERIAL]", "an Android phone/emulator over adb (benchmark_model or the agent)"),
    TargetKind("coral", "coral", "coral[:usb|:pci]", "a Coral Edge TPU here (libedgetpu external delegate)"),
    TargetKind("coral@ssh", "coral", "coral@ssh://user@host", "a Coral Edge TPU on an SSH board"),
]


def forms() -> str:
    """The target forms for help texts and hints: "host, ssh://user@host[:port], ...", in
    registry order."""
    return ", ".join(t.form for t in TARGETS)


def kind_of(spec: str | None) -> TargetKind | None:
    """The registered kind of TARGET string SPEC (None → host), or None when unknown."""
    scheme = scheme_of(spec or "host")
    return next((t for t in TARGETS if scheme == t.scheme or scheme in t.aliases), None)


def scheme_of(spec: str) -> str:
    """The scheme of a TARGET string: "ssh" for ssh://pi@rpi, "adb" for adb:SERIAL or
    adb?python=..., "host" for an empty one; lower-cased."""
    spec = (spec or "host").strip()
    if "://" not in spec:
        spec = spec.split("?", 1)[0]  # adb?python=..., coral?lib=...
    if "://" in spec:
        return spec.split("://", 1)[0].lower()
    return spec.split(":", 1)[0].lower()


def resolve(spec: str | None) -> str:
    """TARGET string SPEC as a registered kind reads it: a named target (targets/names.py, the
    user's targets.toml) → the string it stands for; any other SPEC unchanged (None → "host").

    Raises BadInput (exit 2) for a SPEC that is neither of a registered kind nor a name,
    listing the named targets and the registered forms, or for a broken named-targets file.
    """
    spec = spec or "host"
    if kind_of(spec) is not None:
        return spec
    from . import names

    named = names.lookup(spec.strip())
    if named is None:
        raise BadInput(f"Unknown target {spec!r}.", f"{names.unknown_hint()} Targets: {forms()}.")
    return named


def get(spec: str | None, **options):
    """TARGET string (or a named target) → a Target object (nothing is contacted yet). A named
    target reports under its name (`pi4`, not the string it stands for).

    Raises BadInput (exit 2) for an unknown scheme or name, listing the named targets and the
    registered forms.
    """
    spec = spec or "host"
    resolved = resolve(spec)
    target = kind_of(resolved).load().from_spec(resolved, **options)
    if resolved != spec:
        target.name = spec.strip()
    return target


def __getattr__(name: str):
    # The former scheme → module table, now derived from TARGETS.
    if name == "TABLE":
        return {s: t.module for t in TARGETS for s in (t.scheme, *t.aliases)}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def on_target_session(target: str, artifact, local_session, samples, threads=None, **options):
    """A session for edgekit.parity whose outputs were computed on TARGET: every sample is fed
    exactly as parity feeds it (layout adapted, quantized), all of them run on the target in one
    agent call, and the session hands those outputs back."""
    from edgekit.parity import adapt_layout, match_specs
    from edgekit.runtimes import quantize

    from .base import OnTargetSession

    specs = {s.name: s for s in local_session.inputs}
    in_map = match_specs(list(samples.inputs), {k: v.shape for k, v in samples.inputs.items()},
                         local_session.inputs, "input")
    feeds = []
    for i in range(len(samples)):
        feed = {}
        for k, v in samples.inputs.items():
            spec = specs[in_map[k].name]
            feed[spec.name] = quantize(adapt_layout(v[i : i + 1], spec.shape), spec)
        feeds.append(feed)
    return OnTargetSession(local_session, get(target, **options), artifact, feeds, threads=threads)

"""Targets: where an artifact runs and is measured (host, SSH boards, emulated arm64, ...).

| TARGET                        | module | what it is                                               |
|-------------------------------|--------|----------------------------------------------------------|
| host (default)                | host   | this machine, the agent in a fresh subprocess            |
| ssh://user@host[:port]        | ssh    | any Linux board with Python (Raspberry Pi, Jetson, ...)  |
| qemu-arm64[:ROOTFS]           | qemu   | an emulated 64-bit Raspberry Pi (arm64 Debian, qemu-user)|
| coral[:usb|:pci], coral@ssh://| coral  | a Coral Edge TPU (libedgetpu external delegate), here or on a board |
| adb[:SERIAL]                  | android| an Android phone/emulator over adb (benchmark_model or the agent) |

Every target runs the same device agent (edgekit/agent/edgekit_agent.py) and implements the
contract in `base.Target`: `check()`, `profile(artifact, settings)`, `run(artifact, feeds)`.
Adding a target is one module with `from_spec(spec, **options)` and one line below.
"""

from __future__ import annotations

import importlib

from edgekit.errors import BadInput

# scheme (the part of TARGET before ':' or '://') → module in this package
TABLE = {
    "host": "host",
    "local": "host",
    "ssh": "ssh",
    "qemu-arm64": "qemu",
    "coral": "coral",
    "coral@ssh": "coral",
    "adb": "android",
}


def scheme_of(spec: str) -> str:
    spec = (spec or "host").strip()
    if "://" not in spec:
        spec = spec.split("?", 1)[0]  # adb?python=..., coral?lib=...
    if "://" in spec:
        return spec.split("://", 1)[0].lower()
    return spec.split(":", 1)[0].lower()


def get(spec: str | None, **options):
    """TARGET string → a Target object (nothing is contacted yet)."""
    spec = spec or "host"
    name = TABLE.get(scheme_of(spec))
    if name is None:
        raise BadInput(f"Unknown target {spec!r}.",
                       "Targets: host, ssh://user@host[:port], qemu-arm64[:ROOTFS], adb[:SERIAL], "
                       "coral[:usb|:pci], coral@ssh://user@host.")
    module = importlib.import_module(f"edgekit.targets.{name}")
    return module.from_spec(spec, **options)


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

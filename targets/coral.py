"""`coral[:DEVICE]` and `coral@ssh://user@host[:port][:DEVICE]`: a Coral Edge TPU (USB Accelerator,
M.2/PCIe, Dev Board) here or on a board.

The same device agent as every target, told to load `libedgetpu.so.1` as an external TFLite
delegate through ai-edge-litert (`load_delegate`), with the XNNPACK default delegate off so that
the result's `delegation` counts exactly the nodes the Edge TPU took. DEVICE is libedgetpu's
`device` option: `usb`, `usb:0`, `pci`, `pci:0` (default: the first one found).

Errors, as ai-edge-litert reports them: the library missing → OSError → exit 3 with the install
line; the library present but no accelerator answering → ValueError → exit 4.

The library: `libedgetpu.so.1` (the runtime's soname), or EDGEKIT_EDGETPU_LIB / `?lib=PATH` in
the target (e.g. the max-frequency build, or a library in a venv on the board).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from edgekit.errors import BadInput

from .host import HostTarget
from .ssh import SSHTarget

LIBRARY = "libedgetpu.so.1"
DEVICES = ("usb", "pci")


class _CoralMixin:
    """Adds the Edge TPU delegate flags to the agent and an `edgetpu` entry to profile results."""

    library = LIBRARY
    device: str | None = None
    delegate_options: dict = {}

    def agent_flags(self) -> list[str]:
        flags = ["--delegate", self.library]
        opts = dict(self.delegate_options)
        if self.device:
            opts.setdefault("device", self.device)
        for k, v in sorted(opts.items()):
            flags += ["--delegate-option", f"{k}={v}"]
        return flags

    def profile(self, artifact, settings):
        result = super().profile(artifact, settings)
        d = result.get("delegation") or {}
        result["edgetpu"] = {"library": self.library, "device": self.device,
                             "nodes_on_edgetpu": d.get("delegated_ops"), "total_nodes": d.get("total_ops")}
        return result


class CoralTarget(_CoralMixin, HostTarget):
    """`coral[:DEVICE]`: an Edge TPU on this machine; the host agent (run with PYTHON) loads
    LIBRARY as its only delegate with libedgetpu OPTIONS (plus `device=DEVICE` when given).

    `profile` returns the `profile` result (schema `$defs/profile`) plus `edgetpu` {library,
    device, nodes_on_edgetpu, total_nodes}. Raises, besides the errors of `AgentTarget`:
    MissingDependency (exit 3) when LIBRARY cannot be loaded, TargetUnreachable (exit 4) when
    it finds no Edge TPU.
    """

    emulated = False

    def __init__(self, name: str, device: str | None, library: str, options: dict, python: str | None = None):
        super().__init__(python=python)
        self.name, self.device, self.library, self.delegate_options = name, device, library, options


class CoralSSHTarget(_CoralMixin, SSHTarget):
    """`coral@ssh://user@host[:port][:DEVICE]`: an Edge TPU on an SSH board, as `CoralTarget`
    does it here; SPEC and **KW (accept_new_host_key, python) go to SSHTarget, and the name is
    "coral@" + the SSH target's name."""

    def __init__(self, spec: str, device: str | None, library: str, options: dict, **kw):
        super().__init__(spec, **kw)
        self.name = "coral@" + self.name
        self.device, self.library, self.delegate_options = device, library, options


def _split_device(rest: str) -> str | None:
    rest = rest.strip(":")
    if not rest:
        return None
    if rest.split(":", 1)[0] not in DEVICES:
        raise BadInput(f"Unknown Edge TPU device {rest!r}.", "Write coral, coral:usb, coral:usb:0, coral:pci or coral:pci:0.")
    return rest


def from_spec(spec: str, accept_new_host_key: bool = False, python: str | None = None, **_options):
    """A Coral TARGET string → CoralTarget or CoralSSHTarget (nothing is contacted yet).

    Forms: `coral`, `coral:usb[:N]`, `coral:pci[:N]`, `coral@ssh://user@host[:port][:usb|:pci[:N]]`,
    each optionally followed by `?lib=PATH` (the delegate library; else $EDGEKIT_EDGETPU_LIB,
    else libedgetpu.so.1), `?python=PATH` (ssh form: the board's Python) and other `?key=value`
    pairs passed to libedgetpu as delegate options. ACCEPT_NEW_HOST_KEY and PYTHON go to the
    SSH target (PYTHON also to the local one). Raises BadInput (exit 2) for another form or
    device."""
    spec = spec.strip()
    base, _, query = spec.partition("?")
    q = parse_qs(query)
    library = (q.pop("lib", [None])[0] or os.environ.get("EDGEKIT_EDGETPU_LIB") or LIBRARY)
    options = {k: v[0] for k, v in q.items() if k != "python"}
    if base.startswith("coral@"):
        url = base[len("coral@"):]
        u = urlsplit(url)
        if u.scheme != "ssh":
            raise BadInput(f"Cannot read the Coral target {spec!r}.", "Write it as coral@ssh://user@host[:port].")
        # a trailing :usb / :pci[:N] after the host[:port]
        netloc, device = u.netloc, None
        for dev in DEVICES:
            marker = f":{dev}"
            if marker in netloc:
                netloc, _, tail = netloc.partition(marker)
                device = _split_device(dev + tail)
        ssh_spec = f"ssh://{netloc}" + (f"?python={q['python'][0]}" if "python" in q else "")
        return CoralSSHTarget(ssh_spec, device, library, options, accept_new_host_key=accept_new_host_key,
                              python=python)
    if base != "coral" and not base.startswith("coral:"):
        raise BadInput(f"Cannot read the Coral target {spec!r}.", "Write it as coral[:usb|:pci] or coral@ssh://...")
    device = _split_device(base[len("coral"):])
    return CoralTarget(base, device, library, options, python=python)

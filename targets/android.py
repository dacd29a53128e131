"""`adb[:SERIAL]`: an Android phone (USB, `adb connect` over Wi-Fi, or the Android Emulator's
`emulator-5554`) through the adb server, with adbutils.

Two ways to measure, chosen by what the device has:
- LiteRT's `benchmark_model` for `.tflite`: the user points edgekit at the binary once
  (`adb:SERIAL?benchmark_model=/path/to/benchmark_model`, or EDGEKIT_BENCHMARK_MODEL; an
  Android build per ABI from the LiteRT release page or their own build); edgekit pushes it,
  runs it (`--graph --num_threads --warmup_runs --num_runs --enable_op_profiling
  [--use_gpu|--use_nnapi|--external_delegate_path]`) and parses its output with
  edgekit.tool_output (µs statistics, init, first inference, memory, delegate coverage).
- edgekit's own device agent when the device has a Python (Termux, an emulated device):
  `?python=/path` or EDGEKIT_ADB_PYTHON, else `python3` on the device's PATH.

Everything happens in a fresh `/data/local/tmp/edgekit-XXXXXXXX` folder removed afterwards
(also `edgekit devices clean adb` style cleanup through `cleanup_stale()`); every shell command
is built with proper quoting (a model path with spaces or quotes works).

The adb connection (client, device list, ADBBoard) is targets/android_adb.py; the native
runners (benchmark_model, executor_runner) are targets/android_benchmark.py.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shlex
import time
from urllib.parse import parse_qs

from edgekit import profiling
from edgekit.errors import BadInput, TargetUnreachable

from .android_adb import EXIT_MARKER, PROPS, ADBBoard, _props, client, list_devices  # noqa: F401  (re-exported)
from .android_benchmark import NativeRunners
from .base import AgentTarget, quote

DEVICE_TMP = "/data/local/tmp"


class AndroidTarget(NativeRunners, AgentTarget):
    """An Android device over adb, measured with benchmark_model / executor_runner when given,
    else with edgekit's device agent under a Python on the device."""

    emulated = False

    def __init__(self, spec: str, python: str | None = None, benchmark_model: str | None = None):
        """spec: `adb`, `adb:SERIAL`, optionally with `?key=value&...`: python, benchmark_model,
        executor_runner, etdump (a local path for the runner's ETDump), tmp (device folder,
        default /data/local/tmp), cpus (e.g. 4-7) or taskset (a hex mask) to pin cores; any other
        key goes to the native runner as --key=value. python / benchmark_model override the
        query and EDGEKIT_ADB_PYTHON / EDGEKIT_BENCHMARK_MODEL.

        Raises:
            BadInput (exit 2): cpus/taskset cannot be read.
        """
        base, _, query = spec.partition("?")
        q = {k: v[0] for k, v in parse_qs(query).items()}
        self.serial = base.split(":", 1)[1] if ":" in base else None
        self.spec_python = python or q.get("python") or os.environ.get("EDGEKIT_ADB_PYTHON")
        self.python = self.spec_python or "python3"
        self.benchmark_model = benchmark_model or q.get("benchmark_model") or os.environ.get("EDGEKIT_BENCHMARK_MODEL")
        # ExecuTorch's executor_runner for .pte (an Android build for the device's ABI)
        self.executor_runner = q.get("executor_runner") or os.environ.get("EDGEKIT_EXECUTOR_RUNNER")
        # where to pull the runner's ETDump to on this computer (executor_runner built with the
        # event tracer); none: no --etdump_path
        self.etdump = q.get("etdump") or os.environ.get("EDGEKIT_ETDUMP")
        self.tmp = q.get("tmp") or DEVICE_TMP
        # any other ?key=value goes to benchmark_model as --key=value (use_gpu, use_nnapi,
        # use_xnnpack, external_delegate_path, nnapi_accelerator_name, ...)
        self.benchmark_flags = {k: v for k, v in q.items()
                                if k not in ("python", "benchmark_model", "tmp", "executor_runner", "etdump",
                                             "cpus", "taskset")}
        # core pinning: ?cpus=4-7 (a list/ranges of CPU numbers) or ?taskset=f0 (a hex mask)
        self.pin_request = _pin_mask(q.get("cpus"), q.get("taskset"))
        self.pinning: dict | None = None
        self.name = base
        self.info: dict = {}

    # -- device selection ------------------------------------------------------------------------

    def device(self):
        """The adbutils device: the one named by the serial, else the only one attached.

        Raises:
            TargetUnreachable (exit 4): no such device, none attached, unauthorized or offline.
            BadInput (exit 2): several devices attached and no serial given.
        """
        devices = list_devices(with_props=False)
        listing = ", ".join(f"{d['serial']} ({d['state']})" for d in devices) or "none"
        if self.serial:
            match = [d for d in devices if d["serial"] == self.serial]
            if not match:
                raise TargetUnreachable(f"adb: no device {self.serial!r}; the adb server sees: {listing}.",
                                        "Plug it in / `adb connect HOST:PORT`, then `edgekit devices adb`.")
            d = match[0]
        else:
            ready = [d for d in devices if d["state"] == "device"]
            if not devices:
                raise TargetUnreachable("adb: no Android device is attached.",
                                        "Connect a phone with USB debugging on, `adb connect HOST:PORT`, or start an "
                                        "emulator; `adb devices -l` lists them.")
            if len(devices) > 1:
                raise BadInput(f"adb: {len(devices)} devices are attached: {listing}.",
                               "Pick one: --target adb:SERIAL.")
            d = devices[0] if not ready else ready[0]
        if d["state"] == "unauthorized":
            raise TargetUnreachable(f"adb: {d['serial']} is unauthorized: the phone has not accepted this computer's "
                                    "RSA key.", "Unlock the phone and accept the 'Allow USB debugging?' prompt "
                                    "(tick 'Always allow'), then run again.")
        if d["state"] != "device":
            raise TargetUnreachable(f"adb: {d['serial']} is {d['state']}.",
                                    "Reconnect it (`adb reconnect`), or restart adb (`adb kill-server`).")
        self.serial = d["serial"]
        if self.name in ("adb", "adb:"):
            self.name = f"adb:{self.serial}"
        return client().device(self.serial)

    def dropped(self, exc) -> TargetUnreachable:
        """The error (TargetUnreachable, exit 4) for a device lost during a run, `exc` the cause."""
        why = f" ({exc.__class__.__name__}: {exc})" if exc else ""
        return TargetUnreachable(f"{self.name}: the device went away during the run{why}.",
                                 "Check the cable / Wi-Fi and `adb devices`; then run again. edgekit's folder "
                                 f"under {self.tmp} is removed on the next run on this device.")

    @contextlib.contextmanager
    def board(self):
        """A context yielding an ADBBoard on the device (core pinning probed on first use)."""
        b = ADBBoard(self, self.device())
        if self.pin_request and self.pinning is None:
            self.pinning = self._probe_pinning(b)
        yield b

    def _probe_pinning(self, b: ADBBoard) -> dict:
        """Whether this device lets a shell pin to the mask: `taskset MASK true` must succeed (no
        taskset, or CPUs the device does not have / will not give, is a warning, not a failure)."""
        pin = dict(self.pin_request)
        code, out, err = b.shell(quote(["taskset", pin["mask"], "true"]), 15)
        pin["applied"] = code == 0
        if code != 0:
            why = " ".join((err or out).strip().splitlines()[-1:]) or f"exit {code}"
            pin["reason"] = (f"taskset is not on the device ({why})" if code == 127 or "not found" in why
                             else f"the device refused `taskset {pin['mask']}` ({why})")
        return pin

    def _pin_warning(self, result: dict) -> dict:
        result["pinning"] = self.pinning
        if self.pinning and not self.pinning["applied"]:
            result.setdefault("warnings", []).append(
                f"Cores not pinned: {self.pinning['reason']}; measured on whatever cores the scheduler chose.")
        return result

    def cleanup_stale(self) -> int:
        """Remove every edgekit-* folder left under the device's tmp (an earlier run that lost the
        device mid-way). Returns how many were removed."""
        b = ADBBoard(self, self.device())
        _, out, _ = b.shell(f"ls -d {shlex.quote(self.tmp)}/edgekit-* 2>/dev/null", 30)
        dirs = [l.strip() for l in out.splitlines() if posixpath.basename(l.strip()).startswith("edgekit-")]
        if dirs:
            b.shell("rm -rf " + quote(dirs), 60)
        return len(dirs)

    _thermal_pair = None

    def thermal(self, b: ADBBoard) -> dict | None:
        """Temperatures (°C) of the device's thermal zones, where it lets a shell read them."""
        code, out, _ = b.shell("for z in /sys/class/thermal/thermal_zone*; do "
                               "echo \"$(cat $z/type 2>/dev/null) $(cat $z/temp 2>/dev/null)\"; done", 15)
        zones = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                v = int(parts[1])
                zones[parts[0]] = v / 1000.0 if abs(v) > 1000 else float(v)
        return zones or None

    def _python_on_device(self, b: ADBBoard) -> str | None:
        if self.spec_python:
            return self.spec_python
        code, out, _ = b.shell("command -v python3 || command -v python", 15)
        return out.strip().splitlines()[0] if code == 0 and out.strip() else None

    # -- the contract ----------------------------------------------------------------------------

    def check(self) -> dict:
        """`edgekit devices check`: the device's properties, its Python and what the agent can run
        there, the native runners configured, and what is missing (result dict, kind
        devices-check).

        Raises:
            TargetUnreachable (exit 4): the device cannot be reached.
        """
        t0 = time.perf_counter()
        dev = self.device()
        b = ADBBoard(self, dev)
        info = _props(dev)
        py = self._python_on_device(b)
        result = {"schema_version": profiling.SCHEMA_VERSION, "kind": "devices-check", "target": self.name,
                  "emulated": False, "reachable": True, "device": {"serial": self.serial, **info},
                  "python": py, "benchmark_model": self.benchmark_model,
                  "executor_runner": self.executor_runner, "missing": {}}
        if py:
            self.python = py
            agent = AgentTarget.check(self)
            result.update({k: agent[k] for k in ("python", "numpy", "formats", "missing")})
            result["device"] = {**agent["device"], "serial": self.serial, **info}
        elif not (self.benchmark_model or self.executor_runner):
            result["missing"] = {"runner": "No Python on the device and no benchmark_model given: pass "
                                           "adb:SERIAL?benchmark_model=PATH (or EDGEKIT_BENCHMARK_MODEL)."}
        result["check_s"] = time.perf_counter() - t0
        return result

    def profile(self, artifact, settings: profiling.ProfileSettings) -> dict:
        """Profile an artifact on the device: .tflite with benchmark_model and .pte with
        executor_runner when configured, else with the device agent. Returns the profile result
        dict with `thermal` (°C before/after) and `pinning`.

        Raises:
            BadInput (exit 2): a configured runner binary is missing.
            TargetUnreachable (exit 4): no way to run on the device, or the device went away.
        """
        artifact = profiling.check_artifact(artifact)
        if self.benchmark_model and artifact.suffix == ".tflite":
            result = self._profile_benchmark_model(artifact, settings)
            result["thermal"] = self._thermal_pair
            return self._pin_warning(result)
        if self.executor_runner and artifact.suffix == ".pte":
            result = self._profile_executor_runner(artifact, settings)
            result["thermal"] = self._thermal_pair
            return self._pin_warning(result)
        with self.board() as b:
            py = self._python_on_device(b)
        if not py:
            raise TargetUnreachable(f"{self.name}: the device has no Python for edgekit's agent, and no "
                                    "benchmark_model was given.",
                                    "Point edgekit at LiteRT's Android benchmark_model for the device's ABI "
                                    "(adb:SERIAL?benchmark_model=PATH or EDGEKIT_BENCHMARK_MODEL), or install "
                                    "Python on the device (Termux).")
        self.python = py
        with self.board() as b:
            before = self.thermal(b)
        result = AgentTarget.profile(self, artifact, settings)
        with contextlib.suppress(TargetUnreachable), self.board() as b:
            self._thermal_pair = {"before": before, "after": self.thermal(b)}
        result["thermal"] = self._thermal_pair
        return self._pin_warning(result)

    def run(self, artifact, feeds, threads=None):
        """Run the artifact on the device's agent on `feeds` (input name → np.ndarray, batch
        first) for on-device parity; returns the outputs as AgentTarget.run does.

        Raises:
            TargetUnreachable (exit 4): no Python on the device, or the device went away.
        """
        with self.board() as b:
            py = self._python_on_device(b)
        if not py:
            raise TargetUnreachable(f"{self.name}: on-device parity needs a Python on the device (Termux).",
                                    "Install Python there, or pass ?python=/path.")
        self.python = py
        return AgentTarget.run(self, artifact, feeds, threads=threads)


def _pin_mask(cpus: str | None, mask: str | None) -> dict | None:
    """?cpus=4-7 / ?cpus=0,2,4-5 → {"cpus": ..., "mask": "f0"}; ?taskset=f0 → the mask as given."""
    if mask:
        m = mask.lower().removeprefix("0x")
        if not m or any(c not in "0123456789abcdef" for c in m) or int(m, 16) == 0:
            raise BadInput(f"?taskset={mask!r} is not a CPU mask.", "Write it in hex, e.g. ?taskset=f0 for CPUs 4-7.")
        return {"cpus": cpus, "mask": m}
    if not cpus:
        return None
    bits = 0
    try:
        for part in cpus.split(","):
            lo, _, hi = part.strip().partition("-")
            for c in range(int(lo), int(hi or lo) + 1):
                bits |= 1 << c
    except ValueError:
        bits = 0
    if not bits:
        raise BadInput(f"?cpus={cpus!r} is not a CPU list.", "Write it as ?cpus=4-7 or ?cpus=0,2,4-5.")
    return {"cpus": cpus, "mask": format(bits, "x")}


def from_spec(spec: str, python: str | None = None, **_options) -> AndroidTarget:
    """The target registry's constructor for `adb[:SERIAL][?...]` (see AndroidTarget).

    Raises:
        BadInput (exit 2): the spec is not adb or adb:SERIAL.
    """
    base = spec.partition("?")[0]
    if base != "adb" and not base.startswith("adb:"):
        raise BadInput(f"Cannot read the Android target {spec!r}.", "Write it as adb or adb:SERIAL.")
    return AndroidTarget(spec, python=python)

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
is built with proper quoting (a model path with spaces or quotes works). Exit status comes from
adb's shell v2 protocol when the device has it, else from an appended `echo $?` marker.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import shlex
import time
from pathlib import Path
from urllib.parse import parse_qs

from edgekit import profiling
from edgekit.errors import BadInput, MissingDependency, TargetUnreachable

from .base import AgentTarget, quote

DEVICE_TMP = "/data/local/tmp"
PROPS = {"model": "ro.product.model", "manufacturer": "ro.product.manufacturer", "abi": "ro.product.cpu.abi",
         "abilist": "ro.product.cpu.abilist", "android": "ro.build.version.release", "sdk": "ro.build.version.sdk",
         "soc": "ro.soc.model", "hardware": "ro.hardware"}
EXIT_MARKER = "EDGEKIT-EXIT:"


def _adbutils():
    try:
        import adbutils
    except ImportError as exc:
        raise MissingDependency(f"Android targets need adbutils ({exc}).", "pip install adbutils") from exc
    return adbutils


def client():
    adbutils = _adbutils()
    port = int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
    return adbutils.AdbClient(host=os.environ.get("EDGEKIT_ADB_HOST", "127.0.0.1"), port=port)


def _server_error(exc) -> TargetUnreachable:
    return TargetUnreachable(f"adb: cannot reach the adb server ({exc}).",
                             "Start it with `adb start-server` (Debian/Ubuntu: apt-get install adb; or Android "
                             "platform-tools), and check ANDROID_ADB_SERVER_PORT.")


def list_devices(with_props: bool = True) -> list[dict]:
    """Every device the adb server knows: serial, state, and for ready ones model/ABI/Android."""
    c = client()
    try:
        infos = c.list(extended=True)
    except Exception as exc:
        raise _server_error(exc) from exc
    out = []
    for info in infos:
        d = {"serial": info.serial, "state": info.state, "target": f"adb:{info.serial}"}
        if with_props and info.state == "device":
            with contextlib.suppress(Exception):
                d.update(_props(c.device(info.serial)))
        out.append(d)
    return out


def _props(dev) -> dict:
    r = dev.shell2("getprop", timeout=15)
    allp = {}
    for line in r.output.splitlines():
        if line.startswith("[") and "]: [" in line:
            k, _, v = line[1:].partition("]: [")
            allp[k] = v.rstrip("]")
    return {k: allp.get(p) or None for k, p in PROPS.items()}


class ADBBoard:
    def __init__(self, target: "AndroidTarget", dev):
        self.t, self.dev = target, dev
        self.v2 = None

    def _v2(self) -> bool:
        if self.v2 is None:
            try:
                self.v2 = "shell_v2" in self.dev.get_features().split(",")
            except Exception as exc:
                raise self.t.dropped(exc) from exc
        return self.v2

    def shell(self, command: str, timeout: float) -> tuple[int, str, str]:
        try:
            if self._v2():
                r = self.dev.shell2(command, timeout=timeout, v2=True, rstrip=False)
                code, out, err = r.returncode, r.stdout, r.stderr
            else:  # old devices: no exit status in the protocol, so print it last
                # in a subshell, so that an `exit` in COMMAND cannot skip the marker
                out = self.dev.shell(f"({command}\n); echo {EXIT_MARKER}$?", timeout=timeout, rstrip=False)
                i = out.rfind(EXIT_MARKER)
                if i < 0:
                    raise TargetUnreachable(f"{self.t.name}: the shell ended without an exit status.")
                code, out, err = int(out[i + len(EXIT_MARKER):].strip() or 255), out[:i], ""
        except TargetUnreachable:
            raise
        except Exception as exc:
            raise self.t.dropped(exc) from exc
        return code, out, err

    def mkdtemp(self) -> str:
        d = f"{self.t.tmp}/edgekit-{secrets.token_hex(4)}"
        code, _, err = self.shell("mkdir -p " + quote([d]), 30)
        if code != 0:
            raise TargetUnreachable(f"{self.t.name}: cannot create {d}: {err.strip()}",
                                    f"Check that {self.t.tmp} on the device is writable (adb shell ls -ld {self.t.tmp}).")
        return d

    def put(self, local: Path, remote_dir: str, name: str | None = None) -> str:
        remote = posixpath.join(remote_dir, name or Path(local).name)
        try:
            self.dev.sync.push(str(local), remote, mode=0o755)
        except Exception as exc:
            raise self.t.dropped(exc) from exc
        return remote

    def get(self, remote: str, local: Path) -> None:
        try:
            self.dev.sync.pull(remote, str(local))
        except Exception as exc:
            raise self.t.dropped(exc) from exc

    def exec(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
        pin = self.t.pinning
        if pin and pin.get("applied"):  # `taskset MASK cmd ...` (toybox and util-linux alike)
            argv = ["taskset", pin["mask"], *argv]
        if "--cleanup" in argv:  # the agent: also clean up when adbd closes its stdin (cable pulled)
            i = argv.index("--cleanup")
            argv = argv[:i] + ["--watch-stdin"] + argv[i:]
        return self.shell("TF_CPP_MIN_LOG_LEVEL=2 " + quote(argv), timeout)

    def rmtree(self, remote_dir: str) -> None:
        if not posixpath.basename(remote_dir).startswith("edgekit-"):
            return  # never remove anything edgekit did not create
        with contextlib.suppress(TargetUnreachable):
            self.shell("rm -rf " + quote([remote_dir]), 30)


class AndroidTarget(AgentTarget):
    emulated = False

    def __init__(self, spec: str, python: str | None = None, benchmark_model: str | None = None):
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
        why = f" ({exc.__class__.__name__}: {exc})" if exc else ""
        return TargetUnreachable(f"{self.name}: the device went away during the run{why}.",
                                 "Check the cable / Wi-Fi and `adb devices`; then run again. edgekit's folder "
                                 f"under {self.tmp} is removed on the next run on this device.")

    @contextlib.contextmanager
    def board(self):
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
        with self.board() as b:
            py = self._python_on_device(b)
        if not py:
            raise TargetUnreachable(f"{self.name}: on-device parity needs a Python on the device (Termux).",
                                    "Install Python there, or pass ?python=/path.")
        self.python = py
        return AgentTarget.run(self, artifact, feeds, threads=threads)

    def benchmark_args(self, model: str, settings: profiling.ProfileSettings, extra: dict | None = None) -> list[str]:
        args = [f"--graph={model}", f"--num_runs={settings.runs}", f"--warmup_runs={settings.warmup}",
                f"--num_threads={settings.threads or 4}", f"--enable_op_profiling={'true' if settings.ops else 'false'}"]
        for k, v in (extra or {}).items():
            args.append(f"--{k}={v}")
        return args

    def _profile_benchmark_model(self, artifact: Path, settings) -> dict:
        from edgekit.tool_output import benchmark_to_latency_ms, parse_benchmark_model

        exe = Path(self.benchmark_model)
        if not exe.is_file():
            raise BadInput(f"benchmark_model not found at {exe}.", "Point EDGEKIT_BENCHMARK_MODEL at the binary.")
        t0 = time.perf_counter()
        with self.board() as b, self._scratch(b) as d:
            t1 = time.perf_counter()
            runner = b.put(exe, d, "benchmark_model")
            model = b.put(artifact, d)
            push_s = time.perf_counter() - t1
            before = self.thermal(b)
            code, out, err = b.exec([runner, *self.benchmark_args(model, settings, self.benchmark_flags)],
                                    settings.timeout_s)
            self._thermal_pair = {"before": before, "after": self.thermal(b)}
        parsed = parse_benchmark_model(out + "\n" + err)
        if code != 0 or not parsed["runs"]:
            tail = " | ".join((err or out).strip().splitlines()[-3:])
            raise TargetUnreachable(f"{self.name}: benchmark_model exited {code} without a result: {tail}",
                                    "Check that the binary matches the device's ABI (adb shell getprop "
                                    "ro.product.cpu.abi) and runs there.")
        run = parsed["runs"][-1]
        t = run.get("timings_us", {})
        return {
            "schema_version": profiling.SCHEMA_VERSION, "kind": "profile", "target": self.name, "emulated": False,
            "artifact": str(artifact), "format": "tflite",
            "runtime": {"name": "benchmark_model", "version": None},
            "latency_ms": benchmark_to_latency_ms(run.get("inference", {})),
            "init_ms": t.get("init", 0) / 1000.0, "first_inference_ms": t.get("first_inference", 0) / 1000.0,
            "peak_rss_mb": (run.get("memory_mb") or {}).get("overall"),
            "size_bytes": artifact.stat().st_size, "threads": settings.threads or 4,
            "runs": (run.get("inference") or {}).get("count"), "warmup": settings.warmup,
            "delegation": parsed.get("delegation"), "gpu": parsed.get("gpu"),
            "ops": parsed.get("op_profile"), "device": {"serial": self.serial},
            "transport": {"push_s": push_s, "total_s": time.perf_counter() - t0},
            "warnings": ["p90/p99 are not printed by benchmark_model (null)."],
        }

    def executor_runner_args(self, model: str, settings: profiling.ProfileSettings, etdump: str | None = None,
                             extra: dict | None = None) -> list[str]:
        """executor_runner has no warm-up flag: it runs warmup + runs executions and the warm-up
        iterations are dropped from the statistics where the runner prints per-iteration times."""
        args = [f"--model_path={model}", f"--num_executions={settings.warmup + settings.runs}"]
        if settings.threads:
            args.append(f"--cpu_threads={settings.threads}")
        if etdump:
            args.append(f"--etdump_path={etdump}")
        for k, v in (extra or {}).items():
            args.append(f"--{k}={v}")
        return args

    def _profile_executor_runner(self, artifact: Path, settings) -> dict:
        from edgekit.tool_output import executor_runner_to_latency_ms, parse_executor_runner

        exe = Path(self.executor_runner)
        if not exe.is_file():
            raise BadInput(f"executor_runner not found at {exe}.",
                           "Point adb:SERIAL?executor_runner=PATH or EDGEKIT_EXECUTOR_RUNNER at an Android "
                           "build of ExecuTorch's executor_runner for the device's ABI.")
        t0 = time.perf_counter()
        warnings = []
        etdump_local = None
        with self.board() as b, self._scratch(b) as d:
            t1 = time.perf_counter()
            runner = b.put(exe, d, "executor_runner")
            model = b.put(artifact, d)
            push_s = time.perf_counter() - t1
            et_remote = posixpath.join(d, "model.etdump") if self.etdump else None
            before = self.thermal(b)
            code, out, err = b.exec([runner, *self.executor_runner_args(model, settings, et_remote,
                                                                        self.benchmark_flags)], settings.timeout_s)
            self._thermal_pair = {"before": before, "after": self.thermal(b)}
            parsed = parse_executor_runner(out + "\n" + err)
            if et_remote and code == 0:
                try:
                    b.get(et_remote, Path(self.etdump))
                    etdump_local = str(self.etdump)
                except TargetUnreachable:
                    warnings.append("No ETDump came back: this executor_runner was built without the event "
                                    "tracer (-DEXECUTORCH_ENABLE_EVENT_TRACER=ON).")
        if code != 0 or not parsed["success"]:
            why = parsed["errors"][-1] if parsed["errors"] else " | ".join((err or out).strip().splitlines()[-3:])
            hint = ("Check that the binary matches the device's ABI (adb shell getprop ro.product.cpu.abi) and "
                    "runs there.")
            if parsed.get("missing_ops"):
                hint = (f"The runner lacks kernels for {', '.join(parsed['missing_ops'])}: build it with the "
                        "kernels/backends the .pte needs (e.g. XNNPACK, optimized/portable ops).")
            raise TargetUnreachable(f"{self.name}: executor_runner exited {code} without a result: {why}", hint)
        its = parsed.get("iterations_ms")
        if its and len(its) > settings.warmup:
            parsed["iterations_ms"] = its[settings.warmup:]
        elif "total_ms" in parsed:
            warnings.append("This executor_runner prints only a total time: latency is its mean over all "
                            f"{parsed.get('executions')} executions, warm-up included; no percentiles.")
        else:
            warnings.append("This executor_runner prints no timings (older build): no latency.")
        return {
            "schema_version": profiling.SCHEMA_VERSION, "kind": "profile", "target": self.name, "emulated": False,
            "artifact": str(artifact), "format": "pte",
            "runtime": {"name": "executor_runner", "version": None},
            "latency_ms": executor_runner_to_latency_ms(parsed), "init_ms": parsed.get("load_ms"),
            "size_bytes": artifact.stat().st_size, "threads": settings.threads or parsed.get("threads"),
            "runs": len(parsed.get("iterations_ms") or []) or parsed.get("executions"), "warmup": settings.warmup,
            "outputs": parsed["outputs"], "etdump": etdump_local, "device": {"serial": self.serial},
            "transport": {"push_s": push_s, "total_s": time.perf_counter() - t0},
            "warnings": warnings,
        }


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
    base = spec.partition("?")[0]
    if base != "adb" and not base.startswith("adb:"):
        raise BadInput(f"Cannot read the Android target {spec!r}.", "Write it as adb or adb:SERIAL.")
    return AndroidTarget(spec, python=python)

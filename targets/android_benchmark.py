"""The native runners an Android target (targets/android.py) measures with, when the user
points edgekit at them: LiteRT's `benchmark_model` for `.tflite` and ExecuTorch's
`executor_runner` for `.pte` (Android builds for the device's ABI). Each is pushed with the
model into a fresh folder on the device, run there, and its output parsed by
edgekit.tool_output; the folder is removed afterwards.
"""

from __future__ import annotations

import posixpath
import time
from pathlib import Path

from edgekit import profiling
from edgekit.errors import BadInput, TargetUnreachable

ABI_HINT = ("Check that the binary matches the device's ABI (adb shell getprop ro.product.cpu.abi) and "
            "runs there.")


class NativeRunners:
    """benchmark_model and executor_runner profiling for AndroidTarget (a mixin: it uses the
    target's board(), _scratch(), thermal(), name, serial, benchmark_model, executor_runner,
    etdump and benchmark_flags)."""

    def benchmark_args(self, model: str, settings: profiling.ProfileSettings, extra: dict | None = None) -> list[str]:
        """benchmark_model's flags: the model's path on the device, runs, warm-up runs, threads
        (default 4), op profiling when settings.ops, and each `extra` key=value as --key=value
        (use_gpu, use_nnapi, external_delegate_path, ...)."""
        args = [f"--graph={model}", f"--num_runs={settings.runs}", f"--warmup_runs={settings.warmup}",
                f"--num_threads={settings.threads or 4}", f"--enable_op_profiling={'true' if settings.ops else 'false'}"]
        return args + _flags(extra)

    def executor_runner_args(self, model: str, settings: profiling.ProfileSettings, etdump: str | None = None,
                             extra: dict | None = None) -> list[str]:
        """executor_runner's flags. It has no warm-up flag: it runs warmup + runs executions and the
        warm-up iterations are dropped from the statistics where the runner prints per-iteration
        times. etdump: where on the device to write the ETDump (None: no --etdump_path)."""
        args = [f"--model_path={model}", f"--num_executions={settings.warmup + settings.runs}"]
        if settings.threads:
            args.append(f"--cpu_threads={settings.threads}")
        if etdump:
            args.append(f"--etdump_path={etdump}")
        return args + _flags(extra)

    def _run_native(self, exe: Path, name: str, artifact: Path, args, timeout_s: float, collect=None):
        """Push `exe` (as `name`) and the artifact into a fresh folder, run `exe` with
        args(remote model path, remote folder), recording the temperatures before and after.
        collect(board, folder, exit code), when given, runs before the folder is removed.
        Returns (exit code, stdout, stderr, seconds spent pushing)."""
        with self.board() as b, self._scratch(b) as d:
            t1 = time.perf_counter()
            runner = b.put(exe, d, name)
            model = b.put(artifact, d)
            push_s = time.perf_counter() - t1
            before = self.thermal(b)
            code, out, err = b.exec([runner, *args(model, d)], timeout_s)
            self._thermal_pair = {"before": before, "after": self.thermal(b)}
            if collect:
                collect(b, d, code)
        return code, out, err, push_s

    def _native_result(self, artifact: Path, fmt: str, runner: str, body: dict, push_s: float, t0: float,
                       warnings: list[str]) -> dict:
        """The profile result of a native runner, keys in the order of the report schema."""
        return {
            "schema_version": profiling.SCHEMA_VERSION, "kind": "profile", "target": self.name, "emulated": False,
            "artifact": str(artifact), "format": fmt, "runtime": {"name": runner, "version": None},
            **body, "device": {"serial": self.serial},
            "transport": {"push_s": push_s, "total_s": time.perf_counter() - t0},
            "warnings": warnings,
        }

    def _profile_benchmark_model(self, artifact: Path, settings) -> dict:
        """Profile a .tflite with benchmark_model (self.benchmark_model, a local path).

        Raises:
            BadInput (exit 2): the binary is not there.
            TargetUnreachable (exit 4): it exits without a result (wrong ABI, ...) or the device
                goes away.
        """
        from edgekit.tool_output import benchmark_to_latency_ms, parse_benchmark_model

        exe = Path(self.benchmark_model)
        if not exe.is_file():
            raise BadInput(f"benchmark_model not found at {exe}.", "Point EDGEKIT_BENCHMARK_MODEL at the binary.")
        t0 = time.perf_counter()
        code, out, err, push_s = self._run_native(
            exe, "benchmark_model", artifact,
            lambda model, _d: self.benchmark_args(model, settings, self.benchmark_flags), settings.timeout_s)
        parsed = parse_benchmark_model(out + "\n" + err)
        if code != 0 or not parsed["runs"]:
            tail = " | ".join((err or out).strip().splitlines()[-3:])
            raise TargetUnreachable(f"{self.name}: benchmark_model exited {code} without a result: {tail}", ABI_HINT)
        run = parsed["runs"][-1]
        t = run.get("timings_us", {})
        return self._native_result(artifact, "tflite", "benchmark_model", {
            "latency_ms": benchmark_to_latency_ms(run.get("inference", {})),
            "init_ms": t.get("init", 0) / 1000.0, "first_inference_ms": t.get("first_inference", 0) / 1000.0,
            "peak_rss_mb": (run.get("memory_mb") or {}).get("overall"),
            "size_bytes": artifact.stat().st_size, "threads": settings.threads or 4,
            "runs": (run.get("inference") or {}).get("count"), "warmup": settings.warmup,
            "delegation": parsed.get("delegation"), "gpu": parsed.get("gpu"),
            "ops": parsed.get("op_profile"),
        }, push_s, t0, ["p90/p99 are not printed by benchmark_model (null)."])

    def _profile_executor_runner(self, artifact: Path, settings) -> dict:
        """Profile a .pte with executor_runner (self.executor_runner, a local path); with
        self.etdump, the runner's ETDump is pulled to that local path.

        Raises:
            BadInput (exit 2): the binary is not there.
            TargetUnreachable (exit 4): it exits without a result (wrong ABI, missing kernels, ...)
                or the device goes away.
        """
        from edgekit.tool_output import executor_runner_to_latency_ms, parse_executor_runner

        exe = Path(self.executor_runner)
        if not exe.is_file():
            raise BadInput(f"executor_runner not found at {exe}.",
                           "Point adb:SERIAL?executor_runner=PATH or EDGEKIT_EXECUTOR_RUNNER at an Android "
                           "build of ExecuTorch's executor_runner for the device's ABI.")
        t0 = time.perf_counter()
        warnings = []
        etdump_local = None

        def et_remote(d):
            return posixpath.join(d, "model.etdump") if self.etdump else None

        def pull_etdump(b, d, code):
            nonlocal etdump_local
            if et_remote(d) and code == 0:
                try:
                    b.get(et_remote(d), Path(self.etdump))
                    etdump_local = str(self.etdump)
                except TargetUnreachable:
                    warnings.append("No ETDump came back: this executor_runner was built without the event "
                                    "tracer (-DEXECUTORCH_ENABLE_EVENT_TRACER=ON).")

        code, out, err, push_s = self._run_native(
            exe, "executor_runner", artifact,
            lambda model, d: self.executor_runner_args(model, settings, et_remote(d), self.benchmark_flags),
            settings.timeout_s, collect=pull_etdump)
        parsed = parse_executor_runner(out + "\n" + err)
        if code != 0 or not parsed["success"]:
            why = parsed["errors"][-1] if parsed["errors"] else " | ".join((err or out).strip().splitlines()[-3:])
            hint = ABI_HINT
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
        return self._native_result(artifact, "pte", "executor_runner", {
            "latency_ms": executor_runner_to_latency_ms(parsed), "init_ms": parsed.get("load_ms"),
            "size_bytes": artifact.stat().st_size, "threads": settings.threads or parsed.get("threads"),
            "runs": len(parsed.get("iterations_ms") or []) or parsed.get("executions"), "warmup": settings.warmup,
            "outputs": parsed["outputs"], "etdump": etdump_local,
        }, push_s, t0, warnings)


def _flags(extra: dict | None) -> list[str]:
    """{key: value} → ['--key=value', ...]."""
    return [f"--{k}={v}" for k, v in (extra or {}).items()]

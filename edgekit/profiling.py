"""Profiling: the result shape of `edgekit profile` and the host half of the device agent.

The measuring itself happens in the device agent (`edgekit/agent/`, run as the zipapp that
`edgekit.agent.bundle` builds from edgekit's runtime layer) in a fresh process on the host, on a
board over SSH or adb, or inside an emulated arm64 root filesystem. Its statistics are imported
from there, so there is exactly one copy of them. The targets (edgekit.targets) move files and
run the agent; this module prepares its inputs, parses what it prints and turns it into the
`profile` result dict:

    schema_version, kind="profile", target, emulated, artifact, format, runtime,
    latency_ms {min, p50, p90, p99, mean, std, max}, init_ms, first_inference_ms,
    peak_rss_mb, size_bytes, threads, runs, warmup, delegation, ops, device, warnings
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .agent.bundle import NAME as AGENT_NAME
from .agent.bundle import agent_bundle
from .agent.main import RESULT_PREFIX, SCHEMA_VERSION
from .agent.stats import latency_stats, percentile  # noqa: F401  (one copy of the statistics)
from .artifacts import read_manifest
from .integrity import check_structure
from .errors import BadInput, CheckFailed, EdgekitError, MissingDependency, TargetUnreachable, install_line
LATENCY_KEYS = ("min", "p50", "p90", "p99", "mean", "std", "max")


@dataclass
class ProfileSettings:
    """How to profile, the same on every target.

    Attributes:
        runs: timed inferences (≥ 1); warmup: untimed ones before them (≥ 0).
        threads: CPU threads for the runtime (None: its default).
        data: "--data": None/"random" (random inputs by spec) or a path `data.load_samples` reads.
        ops: ask for per-operator times where the runtime gives them (ExecuTorch ETDump, onnxruntime).
        timeout_s: seconds the agent may take before the target gives up.
    """

    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    data: str | None = None
    ops: bool = True  # per-operator times where the runtime gives them (ExecuTorch ETDump, onnxruntime)
    timeout_s: float = 1800.0

    def agent_args(self, model: str, inputs: str | None) -> list[str]:
        """The device agent's `profile` command line for MODEL (its path on the board) and
        INPUTS (an .npz path there, or None for random inputs)."""
        args = ["profile", model, "--runs", str(self.runs), "--warmup", str(self.warmup)]
        if self.threads:
            args += ["--threads", str(self.threads)]
        if inputs:
            args += ["--inputs", inputs]
        if self.ops:
            args.append("--ops")
        return args


def check_artifact(path) -> Path:
    """PATH as a Path, once it is an existing, whole .tflite/.pte/.ptl/.onnx file
    (`integrity.check_structure`). Raises BadInput (exit 2) otherwise, before anything is pushed."""
    p = Path(str(path))
    if not p.is_file():
        raise BadInput(f"The artifact {p} does not exist.", "Pass a .tflite, .pte, .ptl or .onnx file.")
    check_structure(p)  # BadInput for another extension, or a corrupt file, before any target pushes it
    return p


def companion_files(artifact: Path) -> list[Path]:
    """Files the artifact needs beside it on a device: ONNX external data (torch.onnx.export
    writes the weights to `model.onnx.data` by default). Each goes into the same folder."""
    if artifact.suffix != ".onnx":
        return []
    try:
        import onnx
    except ImportError:  # onnxruntime alone on this machine: the exporter's default name
        guess = artifact.with_name(artifact.name + ".data")
        return [guess] if guess.is_file() else []
    try:
        model = onnx.load(str(artifact), load_external_data=False)
    except Exception as exc:
        raise BadInput(f"{artifact} is not a readable ONNX model ({exc}).", "Re-export it.") from exc
    locations = {entry.value for t in _onnx_tensors(model.graph) if t.data_location == onnx.TensorProto.EXTERNAL
                 for entry in t.external_data if entry.key == "location"}
    files = []
    for loc in sorted(locations):
        f = artifact.parent / loc
        if Path(loc).name != loc:
            raise BadInput(f"{artifact.name} keeps weights in {loc}, in another folder.",
                           "Save the external data beside the model: onnx.save(model, path, "
                           "save_as_external_data=True, location='model.onnx.data').")
        if not f.is_file():
            raise BadInput(f"{artifact.name} keeps its weights in {loc}, which is not beside it in {artifact.parent}.",
                           f"Copy {loc} next to {artifact.name}.")
        files.append(f)
    return files


def _onnx_tensors(graph):
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _onnx_tensors(g)


def artifact_size(artifact: Path) -> int:
    """Bytes a device needs for the model: the file plus its companion files."""
    return sum(f.stat().st_size for f in [artifact, *companion_files(artifact)])


def input_specs(artifact: Path):
    """The artifact's input specs: from its manifest when edgekit wrote one, else by loading it."""
    from .specs import TensorSpec

    manifest = read_manifest(artifact) or {}
    if manifest.get("inputs"):
        return [TensorSpec.from_dict(s) for s in manifest["inputs"]]
    from .runtimes import load

    return load(artifact).inputs


def write_inputs(artifact: Path, data, dest: Path, limit: int = 16) -> Path | None:
    """--data as an .npz the agent reads (float values keyed by input name; the agent quantizes
    for int8 inputs). None when the agent should make random inputs by spec."""
    if data is None or str(data) == "random":
        return None
    from .data import load_samples

    specs = input_specs(artifact)
    float_specs = [type(s)(s.name, s.shape, "float32" if s.is_quantized else s.dtype) for s in specs]
    samples = load_samples(data, float_specs, what="profiling data").take(limit)
    from .parity import adapt_layout

    arrays = {s.name: adapt_layout(samples.inputs[s.name], s.shape) for s in specs}
    np.savez(dest, **arrays)
    return dest


def parse_agent_output(stdout: str, stderr: str, code: int, where: str, local: bool = False) -> dict:
    """The agent's result payload (the `EDGEKIT-RESULT {json}` line of STDOUT), or the
    EdgekitError it stands for. WHERE names the target in messages. A runtime missing on a
    board is TargetUnreachable (exit 4, with the board's pip line); on this machine (LOCAL, the
    host target) it is MissingDependency (exit 3) with the edgekit extra that installs it."""
    line = next((l for l in reversed(stdout.splitlines()) if l.startswith(RESULT_PREFIX)), None)
    if line is None:
        tail = " | ".join(l for l in stderr.strip().splitlines()[-4:])
        if code < 0 or code >= 128:
            raise CheckFailed(f"The device agent on {where} was killed (exit {code}) before it reported.",
                              ("Last output: " + tail) if tail else "Run with --debug for the agent's output.")
        raise TargetUnreachable(f"The device agent on {where} exited {code} without a result.",
                                ("Last output: " + tail) if tail else "Check the Python on the target.")
    payload = json.loads(line[len(RESULT_PREFIX):])
    if payload.get("ok"):
        return payload
    err = payload.get("error", {})
    kind, msg, hint = err.get("kind"), err.get("message", "agent failed"), err.get("hint")
    if kind == "missing_dependency" and local:
        extra = err.get("extra")
        raise MissingDependency(f"{where}: {msg}", f"Install it with: {install_line(extra)}" if extra else hint)
    if kind == "missing_dependency":
        raise TargetUnreachable(f"{where}: {msg}", f"Install it on the target: {hint}" if hint else None)
    if kind == "missing_library":  # an external delegate's library (libedgetpu) is not installed: exit 3
        raise MissingDependency(f"{where}: {msg}", hint)
    if kind in ("device_unavailable", "unreachable"):  # e.g. the delegate found no accelerator: exit 4
        raise TargetUnreachable(f"{where}: {msg}", hint)
    if kind == "bad_input":
        raise BadInput(f"{where}: {msg}", hint)
    raise CheckFailed(f"{where}: {msg}", hint)


def build_result(payload: dict, *, target: str, artifact: Path, emulated: bool = False,
                 transport: dict | None = None) -> dict:
    """The agent's measurement → the stable `profile` result (plus warnings worth a human's eye)."""
    r = payload["result"]
    warnings: list[str] = list(r.get("notes", []))
    delegation = r.get("delegation")
    manifest = read_manifest(artifact) or {}
    if delegation is None and manifest.get("extra", {}).get("delegation"):
        delegation = dict(manifest["extra"]["delegation"], source="manifest")
    if delegation is None and manifest.get("delegation"):
        delegation = dict(manifest["delegation"], source="manifest")
    if delegation and delegation.get("not_delegated"):
        counts = delegation.get("not_delegated_counts") or {}
        ops = ", ".join(f"{k}×{counts[k]}" if counts.get(k) else k for k in delegation["not_delegated"])
        where = "TFLite reference kernels" if r["format"] in ("tflite", "edgetpu") else "portable kernels"
        warnings.append(f"Not on {delegation.get('backend', 'the delegate')}: {ops} run on {where} (slow path).")
    if emulated:
        warnings.append("Timings are emulated (qemu-user on this host): 200–600× slower than a board; use them "
                        "for function and parity, never as device speed.")
    if r.get("input_source") == "random":
        warnings.append("Inputs are random by spec (pass --data for real samples).")
    result = {
        "schema_version": SCHEMA_VERSION,
        "kind": "profile",
        "target": target,
        "emulated": emulated,
        "artifact": str(artifact),
        "format": r["format"],
        "runtime": {"name": r["runtime"], "version": r.get("runtime_version")},
        "latency_ms": {k: r["latency_ms"][k] for k in LATENCY_KEYS},
        "init_ms": r["init_ms"],
        "import_ms": r.get("import_ms"),
        "first_inference_ms": r["first_inference_ms"],
        "peak_rss_mb": r["peak_rss_mb"],
        "baseline_rss_mb": r.get("baseline_rss_mb"),
        "size_bytes": artifact_size(artifact),
        "threads": r["threads"],
        "runs": r["runs"],
        "warmup": r["warmup"],
        "inputs": r.get("inputs", []),
        "input_source": r.get("input_source"),
        "delegation": delegation,
        "ops": r.get("ops"),
        "device": r["device"],
        "samples_ms": r.get("samples_ms", []),
        "agent_wall_s": payload.get("agent_wall_s"),
        "warnings": warnings,
    }
    if transport:
        result["transport"] = transport
    return result


def check_stats(latency: dict) -> bool:
    """min ≤ p50 ≤ p90 ≤ p99 ≤ max: what any consumer of the result may rely on."""
    keys = ("min", "p50", "p90", "p99", "max")
    return all(latency[a] <= latency[b] for a, b in zip(keys, keys[1:]))


class Timer:
    """`with Timer() as t:` times the block with time.perf_counter; `t.s` is its seconds."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0


def profile(artifact, target: str | None = "host", *, runs: int = 50, warmup: int = 5, threads: int | None = None,
            data=None, ops: bool = True, accept_new_host_key: bool = False, python: str | None = None) -> dict:
    """Profile ARTIFACT on TARGET (host, ssh://user@host[:port], qemu-arm64[:ROOTFS]) → the result dict.

    The entry for the face (CLI, pipeline); targets are looked up through their registry.

    Args:
        artifact: path of a .tflite, .pte, .ptl or .onnx file.
        target: any form of `edgekit.targets.forms()` (None: host).
        runs, warmup, threads, data, ops: as in `ProfileSettings`.
        accept_new_host_key: SSH targets: trust and record an unknown host key.
        python: the interpreter the agent runs with on the target.

    Returns the `profile` result (schema `$defs/profile`; latency in ms, peak RSS in MB, size in
    bytes). Raises BadInput (exit 2) for runs < 1, warmup < 0, an unknown target, or a bad
    artifact or data; the target's errors otherwise (see `targets.base.AgentTarget.profile`).
    """
    from edgekit import targets

    if runs < 1 or warmup < 0:
        raise BadInput("--runs must be ≥ 1 and --warmup ≥ 0.")
    settings = ProfileSettings(runs=runs, warmup=warmup, threads=threads, data=data, ops=ops)
    t = targets.get(target or "host", accept_new_host_key=accept_new_host_key, python=python)
    return t.profile(artifact, settings)


MIN_COMPARE_RUNS = 20  # fewer timed runs per artifact and `profile --baseline` warns: an int8 median moved
# from 3.8 µs to 112 µs between two 5-run profiles on this machine (another process took the core)
SAME_SPEED = 0.05  # medians within ±5 % read as "no clear difference": the spread of medians we
# measured between separate profiling processes of one artifact on one machine (benchmarks/bench_profile.py)


def compare(result: dict, baseline: dict) -> dict:
    """How RESULT's artifact compares with BASELINE's, both `profile` results from the same
    target and settings (e.g. an int8 build against its float build): the answer to "will int8
    help on this device?".

    Args:
        result, baseline: `profile` results (schema `$defs/profile`), latency in ms.

    Returns the `comparison` entry: {"baseline": path, "recipe", "baseline_recipe" (from the
    manifests, None without one), "p50_ms", "baseline_p50_ms", "latency_ratio" (median /
    baseline median), "speedup" (its inverse), "size_ratio", "int8_features" (of the target's
    CPU, see agent.device.int8_features), "verdict" ("faster" | "slower" | "same", with
    SAME_SPEED as the margin), "statement" (one sentence for people)}. Never raises."""
    from edgekit.artifacts import read_manifest
    from edgekit.units import format_ms

    def recipe(path):
        try:
            return (read_manifest(path) or {}).get("recipe")
        except Exception:
            return None

    p50, base = result["latency_ms"].get("p50"), baseline["latency_ms"].get("p50")
    ratio = p50 / base if p50 and base else None
    verdict = None if ratio is None else ("same" if abs(ratio - 1) <= SAME_SPEED else
                                          "faster" if ratio < 1 else "slower")
    feats = (result.get("device") or {}).get("int8_features")
    mine, theirs = recipe(result["artifact"]), recipe(baseline["artifact"])
    what = f"{result['artifact']}" + (f" ({mine})" if mine else "")
    than = f"{baseline['artifact']}" + (f" ({theirs})" if theirs else "")
    where = f"on {result['target']}" + (f" ({', '.join(feats)})" if feats else "")
    if verdict is None:
        statement = f"No median latency to compare {what} with {than}."
    elif verdict == "same":
        statement = (f"{what} runs as fast as {than} {where}: medians {format_ms(p50)} vs {format_ms(base)}, within "
                     f"{SAME_SPEED:.0%}.")
    else:
        statement = (f"{what} is {1 / ratio:.2f}× faster than {than} {where} (median {format_ms(p50)} vs {format_ms(base)})."
                     if verdict == "faster" else
                     f"{what} is {ratio:.2f}× SLOWER than {than} {where} (median {format_ms(p50)} vs {format_ms(base)}).")
        if verdict == "slower" and "int8" in (mine or "") and feats is not None and \
                not set(feats) & {"avx512_vnni", "avx512vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"}:
            statement += " This CPU has no int8 dot-product instructions (VNNI, Arm dotprod/i8mm), where int8 " \
                         "kernels often lose to float: keep the float build for this device."
    size = result.get("size_bytes"), baseline.get("size_bytes")
    return {"baseline": baseline["artifact"], "recipe": mine, "baseline_recipe": theirs, "p50_ms": p50,
            "baseline_p50_ms": base, "latency_ratio": None if ratio is None else round(ratio, 4),
            "speedup": None if ratio is None else round(1 / ratio, 4),
            "size_ratio": round(size[0] / size[1], 4) if all(size) else None, "int8_features": feats,
            "verdict": verdict, "statement": statement}

"""`edgekit run edgekit.yaml`: build a matrix of artifacts, check parity, profile them on each
target, hold them to budgets, and write report.json / report.md / report.html.

Unchanged inputs (model, data, calibration, options, tool versions) reuse what `out/` already
holds, artifacts and measurements alike; `force=True` rebuilds and re-measures.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from . import __version__
from .artifacts import atomic_output, file_sha256, read_manifest
from .errors import BadInput, CheckFailed, EdgekitError, is_interrupt, raise_if_ctrl_c_seen
from .pipeline_file import BUDGETS, BuildSpec, Pipeline
from .pipeline_file import load as load_pipeline

SCHEMA_VERSION = 1
KERAS_SUFFIXES = {".keras", ".h5", ".hdf5"}
TORCH_SUFFIXES = {".pt2", ".pt", ".pth"}


def framework_of(p: Pipeline) -> str:
    """Which framework the model is, without building anything (factories are loaded)."""
    path = Path(p.model)
    if path.is_dir():
        return "tf-savedmodel"
    if path.suffix.lower() in KERAS_SUFFIXES:
        return "keras"
    if path.suffix.lower() == ".pt2":
        return "torch-exported"
    if path.suffix.lower() in TORCH_SUFFIXES:
        return "torchscript" if path.suffix.lower() == ".pt" else "torch"
    if not path.exists() and ":" in p.model:
        from .sources import load_model

        return load_model(p.model, p.input_shapes, p.weights).framework
    raise BadInput(f"{p.path}: model: cannot tell the framework of {p.model}.", "Use a model file or a factory.")


def check_builds(p: Pipeline) -> str:
    """Every build must apply to the model: fail before anything runs."""
    from edgekit import converters, quantization

    if not Path(p.model.rpartition(":")[0] if ":" in p.model and not Path(p.model).exists() else p.model).exists():
        raise BadInput(f"{p.path}: model: {p.model} does not exist.", "Paths are relative to the pipeline file.")
    for key in ("data", "calibration", "weights"):
        _require_path(p, key, getattr(p, key))
    fw = framework_of(p)
    for b in p.builds:
        _require_path(p, f"build {b.name!r}: calibration", b.calibration)
        if (b.to, fw) not in converters.table():
            raise BadInput(f"{p.path}: build {b.name!r}: a {fw} model cannot be built for {b.to}.",
                           "Remove the build, or change `to:` (" + ", ".join(sorted(converters.formats_for(fw))) + ").")
        module = converters.converter_for(b.to, fw)
        if b.quantize not in module.RECIPES:
            raise BadInput(f"{p.path}: build {b.name!r}: quantize {b.quantize} is not available for {fw} → {b.to}.",
                           "This path supports: " + ", ".join(module.RECIPES))
        if quantization.RECIPES[b.quantize].needs_calibration and not (b.calibration or p.calibration):
            raise BadInput(f"{p.path}: build {b.name!r}: quantize {b.quantize} needs calibration data.",
                           "Add `calibration: data/calib.npz` at the top or in the build (or `random`, knowingly).")
    return fw


def _require_path(p: Pipeline, key: str, path: str | None) -> None:
    if path not in (None, "random") and not Path(path).exists():
        raise BadInput(f"{p.path}: {key}: {path} does not exist.", "Paths are relative to the pipeline file.")


def _hash_path(path: str | None) -> str | None:
    if not path or path == "random":
        return path
    p = Path(path.rpartition(":")[0] if ":" in path and not Path(path).exists() else path)
    return file_sha256(p) if p.exists() else None


def tool_versions() -> dict:
    """{distribution: version} of edgekit and every framework/runtime installed here (part of the
    build cache key and of the report's provenance)."""
    from importlib import metadata

    out = {"edgekit": __version__}
    for dist in ("tensorflow-cpu", "tensorflow", "keras", "torch", "executorch", "ai-edge-litert", "litert-torch",
                 "ai-edge-quantizer", "torchao", "onnxruntime", "onnx", "onnxscript", "tf2onnx", "onnx2torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def cache_key(p: Pipeline, b: BuildSpec, versions: dict) -> str:
    """SHA-256 (hex) of what decides build B's artifact and verdict: the content of the model,
    weights, data and calibration files, input shapes, the build's options, samples, budgets and
    VERSIONS (tool_versions()). Equal keys mean the cached build can be reused."""
    key = {
        "model": _hash_path(p.model), "weights": _hash_path(p.weights), "data": _hash_path(p.data),
        "calibration": _hash_path(b.calibration or p.calibration), "input_shapes": {**p.input_shapes, **b.input_shapes},
        "options": b.options(), "samples": p.samples, "budgets": {**p.budgets, **b.budgets}, "tools": versions,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def thresholds_from(budgets: dict) -> dict:
    """The parity thresholds among BUDGETS (min_psnr_db, min_cosine, min_top1_agreement,
    max_accuracy_drop), as overrides for parity.thresholds_for."""
    return {k: budgets[k] for k in ("min_psnr_db", "min_cosine", "min_top1_agreement", "max_accuracy_drop") if k in budgets}


def run(pipeline: str | Path | Pipeline, only=None, out=None, force: bool = False, log=lambda m: None,
        on_build=lambda name, status: None, cluster: str | None = None) -> dict:
    """Run the pipeline; returns the report dict (also written as out/report.{json,md,html}).

    CLUSTER (None: here, one build after another) is a Ray address (`ray://HEAD:10001`, `auto`,
    `local`): builds and measurements run as Ray tasks (edgekit.cluster), the report is the same.
    Raises BadInput (exit 2) for a bad file or --only, MissingDependency (exit 3) when CLUSTER is
    given without Ray, TargetUnreachable (exit 4) when no cluster node offers a target."""
    p = pipeline if isinstance(pipeline, Pipeline) else load_pipeline(pipeline)
    if only:
        wanted = set(only)
        unknown = wanted - {b.name for b in p.builds}
        if unknown:
            raise BadInput(f"--only names builds that {p.path.name} does not have: {', '.join(sorted(unknown))}.",
                           "Builds: " + ", ".join(b.name for b in p.builds))
        p.builds = [b for b in p.builds if b.name in wanted]
    framework = check_builds(p)  # before the output folder exists: a refused run leaves nothing
    session = None
    if cluster is not None:  # an empty --cluster is refused, never a silent local run
        from .cluster import connect

        session = connect(cluster, p.targets)  # refuses a target no node offers, before anything runs
    out_dir = Path(out) if out else p.folder / "edgekit-out"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".edgekit-write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BadInput(f"Cannot write reports to {out_dir}: {exc.strerror or exc}.", "Choose a writable --out DIR.") from exc
    versions = tool_versions()
    report = {
        "schema_version": SCHEMA_VERSION, "kind": "run", "edgekit": __version__, "pipeline": str(p.path),
        "model": p.model, "framework": framework, "targets": p.targets, "tools": versions,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "interrupted": False, "builds": [],
    }
    try:
        if session is not None:
            session.run_builds(p, out_dir, versions, force, log, on_build, report["builds"])
        for b in p.builds if session is None else ():
            on_build(b.name, "start")
            entry = _run_build(p, b, out_dir, versions, force, log)
            report["builds"].append(entry)
            on_build(b.name, entry["status"])
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        report["interrupted"] = True
        done = {e["name"] for e in report["builds"]}
        report["not_run"] = [b.name for b in p.builds if b.name not in done]
        for name in report["not_run"]:  # the build Ctrl-C cut short leaves no empty folder
            folder = out_dir / name
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        _finish(report, out_dir)
        raise
    _finish(report, out_dir)
    return report


def _finish(report: dict, out_dir: Path) -> None:
    from .report_files import write_all

    builds = report["builds"]
    report["passed"] = bool(builds) and all(b["passed"] for b in builds) and not report.get("interrupted")
    report["failed_budgets"] = sum(1 for b in builds for v in b["budgets"] if not v["passed"])
    report["failed_builds"] = [b["name"] for b in builds if b["status"] == "failed"]
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    report["out"] = str(out_dir)
    write_all(report, out_dir)


def artifact_path(p: Pipeline, b: BuildSpec, out_dir: Path) -> Path:
    """Where build B's artifact lives: OUT_DIR/<build name>/<model stem><format suffix>."""
    from edgekit.converters import suffix_for

    model = p.model.rpartition(":")[2] if ":" in p.model and not Path(p.model).exists() else p.model
    return out_dir / b.name / f"{Path(model).stem}{suffix_for(b.to)}"


def new_entry(b: BuildSpec, artifact: Path, key: str) -> dict:
    """The report entry of build B before it ran (status "built", nothing measured yet)."""
    return {"name": b.name, "options": b.options(), "artifact": str(artifact), "cache_key": key,
            "status": "built", "notes": [], "error": None, "convert": None, "profiles": [], "budgets": []}


def convert_build(p: Pipeline, b: BuildSpec, artifact: Path, key: str) -> dict:
    """Convert build B of P to ARTIFACT (a path; its folder exists) and stamp the cache KEY in its
    manifest; returns convert's result dict. Raises what edgekit.build.convert raises (an
    EdgekitError: 1 parity/quantization check, 2 bad input, 3 missing dependency)."""
    from .build import convert

    result = convert(
        p.model, to=b.to, quantize=b.quantize, calibration=b.calibration or p.calibration, data=p.data,
        io_dtype=b.io_dtype, input_shapes={**p.input_shapes, **b.input_shapes}, allow_tf_ops=b.allow_tf_ops,
        output=artifact, weights=p.weights, channels_last_io=b.channels_last_io, samples=p.samples,
        thresholds=thresholds_from({**p.budgets, **b.budgets}), **b.quantize_options(),
    )
    _stamp_cache_key(artifact, key)
    return result


def error_of(exc: EdgekitError) -> dict:
    """An EdgekitError as the report's error object {message, hint, exit_code}."""
    return {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}


def conclude(entry: dict, budgets: dict, targets: list[str]) -> dict:
    """Fill ENTRY's budget outcomes and verdict from its convert result and profiles; returns it."""
    convert_result = entry["convert"]
    entry["budgets"] = evaluate_budgets(budgets, convert_result, entry["profiles"], targets)
    entry["passed"] = (all(v["passed"] for v in entry["budgets"])
                       and not any("error" in pr for pr in entry["profiles"])
                       and (convert_result.get("parity") or {}).get("passed", True)
                       and ((convert_result.get("quantization") or {}).get("fallback") or {}).get("passed", True))
    return entry


def _run_build(p: Pipeline, b: BuildSpec, out_dir: Path, versions: dict, force: bool, log) -> dict:
    artifact = artifact_path(p, b, out_dir)
    artifact.parent.mkdir(exist_ok=True)
    key = cache_key(p, b, versions)
    entry = new_entry(b, artifact, key)
    convert_result = None if force else cached_convert(artifact, key, entry["notes"])
    if convert_result is not None:
        entry["status"] = "cached"
        log(f"{b.name}: unchanged, reusing {artifact.name}")
    else:
        log(f"{b.name}: building {b.to} ({b.quantize})")
        try:
            convert_result = convert_build(p, b, artifact, key)
        except EdgekitError as exc:
            raise_if_ctrl_c_seen()
            entry.update(status="failed", passed=False, error=error_of(exc))
            return entry
    entry["convert"] = convert_result
    for target in p.targets:
        try:
            entry["profiles"].append(_profile(p, artifact, target, force, entry["notes"], log))
        except EdgekitError as exc:
            raise_if_ctrl_c_seen()
            entry["profiles"].append({"target": target, "error": error_of(exc)})
    return conclude(entry, {**p.budgets, **b.budgets}, p.targets)


def cached_convert(artifact: Path, key: str, notes: list) -> dict | None:
    """The convert result saved beside ARTIFACT when its manifest holds cache KEY and the file is
    whole (sha256 matches), marked cached; None otherwise (a broken entry adds a line to NOTES)."""
    manifest = read_manifest(artifact)
    if not artifact.exists() and manifest is None:
        return None
    if manifest is None or not artifact.exists():
        notes.append(f"cache entry for {artifact.name} was incomplete; rebuilt")
        return None
    if manifest.get("cache_key") != key:
        return None
    if manifest.get("sha256") != file_sha256(artifact):
        notes.append(f"cache entry for {artifact.name} was corrupted (hash mismatch); rebuilt")
        return None
    result = dict(manifest)
    result["artifact"] = str(artifact)
    result.setdefault("kind", "convert")
    result.setdefault("schema_version", SCHEMA_VERSION)
    result["cached"] = True
    return result


def _stamp_cache_key(artifact: Path, key: str) -> None:
    mp = artifact.with_name(artifact.name + ".json")
    data = json.loads(mp.read_text())
    data["cache_key"] = key
    with atomic_output(mp) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def profile_cache(p: Pipeline, artifact: Path, target: str) -> tuple[Path, dict]:
    """(cache file, key) of ARTIFACT's measurement on TARGET: equal keys (same file content,
    target and settings) mean the saved measurement stands."""
    slug = "".join(c if c.isalnum() else "_" for c in target)
    key = {"sha256": file_sha256(artifact), "target": target, "runs": p.runs, "warmup": p.warmup,
           "threads": p.threads, "edgekit": __version__}
    return artifact.with_name(f"profile-{slug}.json"), key


def cached_profile(cache: Path, key: dict, notes: list) -> dict | None:
    """The measurement saved in CACHE under KEY (marked cached), or None (an unreadable file adds
    a line to NOTES)."""
    if cache.is_file():
        try:
            saved = json.loads(cache.read_text())
            if saved.get("cache") == key:
                saved["result"]["cached"] = True
                return saved["result"]
        except (OSError, ValueError, KeyError):
            notes.append(f"profile cache {cache.name} was unreadable; re-measured")
    return None


def store_profile(cache: Path, key: dict, result: dict) -> None:
    """Save measurement RESULT in CACHE under KEY (written whole or not at all)."""
    with atomic_output(cache) as tmp:
        tmp.write_text(json.dumps({"cache": key, "result": result}, indent=1, default=str))


def _profile(p: Pipeline, artifact: Path, target: str, force: bool, notes: list, log) -> dict:
    """Profile on one target; an unchanged artifact on the same target and settings is reused."""
    from .profiling import profile

    cache, key = profile_cache(p, artifact, target)
    saved = None if force else cached_profile(cache, key, notes)
    if saved is not None:
        return saved
    log(f"profiling {artifact.name} on {target}")
    result = profile(artifact, target=target, runs=p.runs, warmup=p.warmup, threads=p.threads, data=p.data)
    store_profile(cache, key, result)
    return result


def evaluate_budgets(budgets: dict, conv: dict, profiles: list[dict], targets: list[str]) -> list[dict]:
    """Each budget → {budget, target?, limit, value, passed, margin}; value None = not measurable."""
    out = []

    def add(name, value, limit, at_most: bool, target=None, unit=""):
        passed = value is not None and (value <= limit if at_most else value >= limit)
        v = {"budget": name, "limit": limit, "value": value, "passed": passed, "unit": unit,
             "meaning": BUDGETS[name]}
        if target:
            v["target"] = target
        if value is not None:
            v["margin"] = (limit - value) if at_most else (value - limit)
        else:
            v["why"] = "not measured"
        out.append(v)

    parity = conv.get("parity") or {}
    outputs = parity.get("outputs", [])
    for name, limit in budgets.items():
        if name == "size_mb":
            add(name, conv["size_bytes"] / 1e6, limit, True, unit="MB")
        elif name in ("latency_p90_ms", "peak_rss_mb"):
            per_target = limit if isinstance(limit, dict) else {t: limit for t in targets}
            # one profile per target, in the targets' order (both runners); a profile names its
            # target canonically (ssh://pi@board, not ssh://pi@board?python=...), so match by position
            by_target = dict(zip(targets, profiles)) if len(profiles) == len(targets) else {}
            for t, lim in per_target.items():
                prof = by_target.get(t) or next((x for x in profiles if x.get("target") == t), None)
                value = None
                if prof and "error" not in prof:
                    value = prof["latency_ms"]["p90"] if name == "latency_p90_ms" else prof.get("peak_rss_mb")
                    if name == "peak_rss_mb" and value is not None:
                        value *= 1.048576  # measured in MiB (VmHWM); budgets and reports use MB = 10^6 bytes
                add(name, value, lim, True, target=t, unit="ms" if name == "latency_p90_ms" else "MB")
        elif name in ("min_psnr_db", "min_cosine"):
            key = "psnr_db" if name == "min_psnr_db" else "cosine"
            add(name, min((o[key] for o in outputs), default=None), limit, False, unit="dB" if key == "psnr_db" else "")
        elif name == "min_top1_agreement":
            vals = [o["top1_agreement"] for o in outputs if "top1_agreement" in o]
            add(name, min(vals) if vals else None, limit, False)
        elif name == "max_accuracy_drop":
            acc = parity.get("accuracy")
            add(name, None if not acc else acc["reference"] - acc["candidate"], limit, True)
        elif name == "min_delegated_fraction":
            add(name, delegated_fraction(conv, profiles), limit, False)
    return out


def delegated_fraction(conv: dict, profiles: list[dict]) -> float | None:
    """Fraction (0..1) of operators a delegate took: from the convert result's `delegation` when
    it has op counts, else from the first profile that reports them; None when nothing tells."""
    d = conv.get("delegation")
    if d and d.get("total_ops"):
        return d["delegated_ops"] / d["total_ops"]
    for prof in profiles:
        d = prof.get("delegation") or {}
        total = d.get("total_nodes") or d.get("total_ops")
        done = d.get("delegated_nodes") if "delegated_nodes" in d else d.get("delegated_ops")
        if total:
            return done / total
    return None

"""`edgekit validate REFERENCE CANDIDATE`: does the candidate artifact still compute what the
reference computes, on real data, and if not, where does it diverge?

REFERENCE is any MODEL `edgekit convert` takes, or an artifact; CANDIDATE is an artifact
(.tflite, .pte, .ptl, .onnx). Inputs and outputs are matched by name, then shape (NCHW/NHWC
included), then values (edgekit.validation_matching); quantized I/O is (de)quantized with its
scale and zero-point. The reference is loaded by edgekit.validation_reference. The engine is
edgekit.parity (metrics from edgekit.metrics); per-layer localisation is edgekit.layers.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from . import parity as parity_mod
from .artifacts import format_of, read_manifest
from .integrity import check_structure
from .data import load_samples
from .errors import BadInput, CheckFailed
from .runtimes import load as load_runtime
from .specs import parse_input_shapes
from .validation_matching import VALUE_MATCH_SAMPLES, match_inputs, match_outputs  # noqa: F401  (re-exported)
from .validation_reference import (REF_BATCH, Reference, artifact_precision, is_artifact,  # noqa: F401
                                   load_reference, session_reference)

SCHEMA_VERSION = 1


# -- the engine entry ------------------------------------------------------------------------

def validate(
    reference,
    candidate,
    data=None,
    samples: int | None = None,
    per_layer: bool = False,
    thresholds: dict | None = None,
    target=None,
    *,
    preset: str | None = None,
    input_shapes=(),
    weights: str | None = None,
    signature: str | None = None,
    threads: int | None = None,
    target_options: dict | None = None,
    progress=None,
    log=lambda msg: None,
) -> dict:
    """Compare CANDIDATE (an artifact) with REFERENCE (a model or an artifact) on DATA.

    Args:
        reference: a model spec `edgekit convert` takes, an artifact path, or a model object.
        candidate: the artifact to check (.tflite, .pte, .ptl, .onnx; str or Path).
        data: validation data (a file or folder edgekit.data reads); None: 32 random samples.
        samples: use at most this many samples (None: all).
        per_layer: also localise the first diverging layer (edgekit.layers).
        thresholds: overrides of the preset's thresholds (min_psnr_db, min_cosine, ...).
        target: where the candidate runs: None/"host"/"local" here, else a target spec
            (adb:SERIAL, ssh://...) whose device agent computes its outputs.
        preset: the verdict preset (edgekit.parity.PRESETS); None: the candidate's precision.
        input_shapes: NAME=SHAPE strings or a {name: shape} dict, for models that need them.
        weights: a PyTorch state dict for a `file.py:Class` reference.
        signature: the signature of a SavedModel reference (default serving_default).
        threads: runtime threads (None: the runtime's default).
        target_options: extra keyword options for the target session.
        progress: optional callable(done, total) per compared sample.
        log: callable(message) for progress lines.

    Returns:
        The result dict that `--json` prints (schema_version, passed, reference, candidate,
        data, parity, matching, timings, warnings; per-layer keys with per_layer).
        `passed` false is a failed check: the CLI then exits 1 (raise_for_result).

    Raises:
        BadInput (exit 2): unknown preset, missing/corrupt candidate, mismatched signatures,
            --weights with an artifact reference, unsupported per-layer pair.
        MissingDependency (exit 3): the runtime or framework needed is not installed.
        TargetUnreachable (exit 4): the target cannot be reached.
    """
    on_target = target not in (None, "host", "local")
    if preset is not None and preset not in parity_mod.PRESETS:
        raise BadInput(f"Unknown preset {preset!r}.", "Choose one of: " + ", ".join(parity_mod.PRESETS))
    cand_path = Path(str(candidate))
    if not cand_path.is_file():
        raise BadInput(f"The candidate {cand_path} does not exist.", "Pass the artifact file to check.")
    cand_format = format_of(cand_path)  # BadInput for a file that is not an artifact
    # A corrupt file is bad input (exit 2), caught on its bytes before a runtime opens it: runtimes
    # report it as a failed load, and ExecuTorch's native loader can abort the process.
    check_structure(cand_path, "The candidate")
    if is_artifact(reference):
        check_structure(reference, "The reference")
    if per_layer:
        from . import layers

        layers.check_supported(reference, cand_path)
    shapes = parse_input_shapes(input_shapes)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    log(f"Loading the reference {reference}")
    if weights is not None and is_artifact(reference):
        raise BadInput("--weights belongs to a PyTorch reference given as file.py:Class, not to an artifact.",
                       "Drop --weights, or pass the model spec as REFERENCE.")
    ref = load_reference(reference, shapes, threads, weights=weights, signature=signature)
    log(f"Loading the candidate {cand_path}")
    session = load_runtime(cand_path, threads=threads)
    timings["load_s"] = time.perf_counter() - t0
    precision = preset or artifact_precision(cand_path) or "fp32"
    precision_from = "--preset" if preset else ("manifest" if (read_manifest(cand_path) or {}).get("recipe")
                                               else "file" if cand_format in ("tflite", "edgetpu") else "default")
    in_map = match_inputs(ref.inputs, session.inputs)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data_samples = load_samples(data, ref.inputs, n_random=32, what="validation data")
    notes += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    data_samples = data_samples.take(samples)
    if on_target:  # the candidate's outputs are computed on the target, by the device agent
        from edgekit.targets import on_target_session

        log(f"Running the candidate on {target}")
        t0 = time.perf_counter()
        session = on_target_session(target, cand_path, session, data_samples, threads=threads, **(target_options or {}))
        timings["target_s"] = time.perf_counter() - t0
    out_map, how = match_outputs(ref, session, data_samples, in_map)
    if getattr(ref.call, "stateful", None) and not on_target:  # the stream starts from the file's own state
        session = load_runtime(cand_path, threads=threads)

    timed = {"reference_s": 0.0}

    def timed_reference(feeds):
        t = time.perf_counter()
        try:
            return ref.call(feeds)
        finally:
            timed["reference_s"] += time.perf_counter() - t

    timed_reference.batch = getattr(ref.call, "batch", None)  # the batch the reference declares
    timed_reference.stateful = getattr(ref.call, "stateful", None)  # checked as one stream
    log(f"Comparing on {len(data_samples)} sample(s)")
    t0 = time.perf_counter()
    result = parity_mod.check(timed_reference, session, data_samples, precision, thresholds, progress,
                              output_map=out_map)
    total = time.perf_counter() - t0
    timings["reference_s"] = timed["reference_s"]
    timings["candidate_and_metrics_s"] = total - timed["reference_s"]
    timings["parity_s"] = total
    if total > 0:
        timings["samples_per_s"] = len(data_samples) / total
    if timings["candidate_and_metrics_s"] > 0:
        timings["candidate_samples_per_s"] = len(data_samples) / timings["candidate_and_metrics_s"]
    parity = result.to_dict()
    matching = {
        "inputs": {k: in_map[k].name for k in in_map},
        "outputs": {k: {"candidate": out_map[k].name, "by": how.get(k, "position")} for k in out_map},
    }
    layout = [k for k in in_map if tuple(in_map[k].shape[1:]) != tuple(_spec(ref.inputs, k).shape[1:])]
    if layout:
        notes.append("Inputs fed in the candidate's layout (NCHW ↔ NHWC transposed): " + ", ".join(layout) + ".")
    out = {
        "schema_version": SCHEMA_VERSION,
        "kind": "validate",
        "passed": parity["passed"],
        "reference": ref.describe(),
        "target": target or "host",
        "candidate": {"artifact": str(cand_path), "format": cand_format, "precision": precision,
                      "precision_from": precision_from,
                      "inputs": [s.to_dict() for s in session.inputs],
                      "outputs": [s.to_dict() for s in session.outputs]},
        "data": {"source": data_samples.source, "samples": len(data_samples), "random": data_samples.is_random,
                 "labels": data_samples.labels is not None},
        "parity": parity,
        "matching": matching,
        "timings": timings,
        "warnings": notes,
    }
    if per_layer:
        from . import layers

        log("Comparing layer by layer")
        t0 = time.perf_counter()
        per = layers.compare_layers(ref, cand_path, data_samples, in_map, parity["thresholds"], progress)
        timings["per_layer_s"] = time.perf_counter() - t0
        out.update(per)
    return out


def _spec(specs, name):
    """The spec named `name` in `specs`."""
    return next(s for s in specs if s.name == name)


def raise_for_result(result: dict) -> None:
    """Raise CheckFailed (exit 1) when a `validate` result did not pass, naming the first
    diverging layer when per-layer localisation found one; return otherwise."""
    if not result["passed"]:
        first = result.get("first_divergence")
        where = f" First divergence: {first['layer']} ({first['op_type']})." if first else ""
        raise CheckFailed(
            f"{result['candidate']['artifact']} does not match {result['reference']['origin']} "
            f"(preset {result['parity']['precision']}).{where}",
            "See the table above" + ("" if first or "layers" in result else "; --per-layer shows where it diverges")
            + ". Relax a threshold only knowingly (--min-psnr, --min-cosine, ...).",
        )

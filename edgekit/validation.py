"""`edgekit validate REFERENCE CANDIDATE`: does the candidate artifact still compute what the
reference computes, on real data, and if not, where does it diverge?

REFERENCE is any MODEL `edgekit convert` takes, or an artifact; CANDIDATE is an artifact
(.tflite, .pte, .ptl, .onnx). Inputs and outputs are matched by name, then shape (NCHW/NHWC
included), then values; quantized I/O is (de)quantized with its scale and zero-point. The
engine is edgekit.parity (metrics from edgekit.metrics); per-layer localisation is
edgekit.layers.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import parity as parity_mod
from .artifacts import FORMATS, format_of, read_manifest
from .integrity import check_structure
from .data import load_samples
from .errors import BadInput, CheckFailed
from .runtimes import load as load_runtime
from .runtimes import run_float
from .specs import TensorSpec, parse_input_shapes

SCHEMA_VERSION = 1
REF_BATCH = 64  # batched artifact references run this many samples per call
VALUE_MATCH_SAMPLES = 4  # samples used to pair same-shaped outputs by their values


@dataclass
class Reference:
    """What the candidate is compared with: a batched callable plus its input specs."""

    kind: str  # "model" or "artifact"
    origin: str
    inputs: list[TensorSpec]  # float view of the inputs (quantized artifact inputs dequantized)
    call: Callable[[dict], dict]  # feeds (N, ...) keyed by input name → outputs (N, ...)
    framework: str | None = None  # models: keras, torch ...
    format: str | None = None  # artifacts
    precision: str | None = None
    native: Any = None  # SourceModel for models, the session for artifacts
    path: Path | None = None

    def describe(self) -> dict:
        d = {"kind": self.kind, "origin": self.origin}
        if self.framework:
            d["framework"] = self.framework
        if self.format:
            d["format"] = self.format
        if self.precision:
            d["precision"] = self.precision
        return d


def is_artifact(spec) -> bool:
    if not isinstance(spec, (str, Path)):
        return False  # a model object handed over from Python
    p = Path(spec)
    return p.is_file() and (p.suffix.lower() in FORMATS or p.name.endswith("_edgetpu.tflite"))


def load_reference(spec, input_shapes: dict | None = None, threads: int | None = None,
                   weights: str | None = None) -> Reference:
    if is_artifact(spec):
        session = load_runtime(spec, threads=threads)
        return Reference(
            kind="artifact", origin=str(spec), inputs=[_float_view(s) for s in session.inputs],
            call=session_reference(session), format=format_of(spec), precision=artifact_precision(spec),
            native=session, path=Path(spec),
        )
    from .sources import from_object, load_model

    if isinstance(spec, (str, Path)):
        source = load_model(str(spec), input_shapes or {}, weights=weights)
    else:
        source = from_object(spec, type(spec).__name__, input_shapes or {})
    return Reference(kind="model", origin=source.origin, inputs=source.inputs, call=source.reference,
                     framework=source.framework, native=source)


def _float_view(s: TensorSpec) -> TensorSpec:
    """What a caller feeds: real values for a quantized input."""
    dtype = "float32" if s.is_quantized else s.dtype
    return TensorSpec(s.name, s.shape, dtype, layout=s.layout)


def session_reference(session) -> Callable[[dict], dict]:
    """A runtime session as a batched reference: real values in, real values out. Sessions whose
    inputs take any batch size (ONNX with a dynamic first axis) run in batches."""
    batchable = bool(getattr(session, "batchable", False))

    def reference(feeds: dict) -> dict:
        n = len(next(iter(feeds.values())))
        step = REF_BATCH if batchable else 1
        chunks: dict[str, list] = {}
        for i in range(0, n, step):
            outs = run_float(session, {k: v[i : i + step] for k, v in feeds.items()})
            for k, v in outs.items():
                chunks.setdefault(k, []).append(np.asarray(v))
        return {s.name: np.concatenate(chunks[s.name]) for s in session.outputs}

    return reference


# -- precision (which verdict preset applies) ------------------------------------------------

def artifact_precision(path) -> str | None:
    """The candidate's precision: from its manifest's recipe, else from the file itself."""
    manifest = read_manifest(path) or {}
    recipe = manifest.get("recipe")
    if recipe:
        return {"none": "fp32"}.get(recipe, recipe)
    if format_of(path) in ("tflite", "edgetpu"):
        return _tflite_precision(path)
    return None


def _tflite_precision(path) -> str:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # no public op list; stable across TF/LiteRT releases
    produced = {o for op in ops for o in op["outputs"]}
    acts = {np.dtype(tensors[i]["dtype"]).name for i in produced if i in tensors}
    consts = {np.dtype(tensors[i]["dtype"]).name for op in ops for i in op["inputs"]
              if i >= 0 and i in tensors and i not in produced}
    if "int16" in acts and "int8" in consts:
        return "int16x8"
    if "int8" in acts or "uint8" in acts:
        return "int8"
    if "int8" in consts:
        return "dynamic-int8"
    if "float16" in consts:
        return "fp16"
    return "fp32"


# -- signatures -------------------------------------------------------------------------------

def match_inputs(ref_inputs: list[TensorSpec], cand_inputs: list[TensorSpec]) -> dict:
    """Reference input name → candidate input spec, or a BadInput that shows both signatures."""
    sig = ("reference: " + ", ".join(s.describe() for s in ref_inputs) + " · candidate: "
           + ", ".join(s.describe() for s in cand_inputs))
    try:
        in_map = parity_mod.match_specs([s.name for s in ref_inputs], {s.name: s.shape for s in ref_inputs},
                                        cand_inputs, "input")
    except BadInput as exc:
        raise BadInput("The reference and the candidate take different inputs: " + exc.message,
                       sig + ". Compare the candidate with the model it was converted from.") from exc
    for r in ref_inputs:
        c = in_map[r.name]
        if not _shapes_compatible(tuple(r.shape[1:]), tuple(c.shape[1:])):
            raise BadInput(
                f"The reference and the candidate take different inputs: {r.name!r} is "
                f"{_dims(r.shape[1:])} per sample in the reference, {c.name!r} is {_dims(c.shape[1:])} "
                "in the candidate.",
                sig + ". Compare the candidate with the model it was converted from (or fix --input-shape).",
            )
        rk, ck = np.dtype(r.dtype).kind, np.dtype(c.dtype).kind
        if rk == "f" and ck != "f" and not c.is_quantized:
            raise BadInput(
                f"The reference takes {r.name!r} as {r.dtype}, the candidate takes {c.name!r} as {c.dtype} "
                "without a quantization scale, so real values cannot be mapped onto it.",
                sig + ".",
            )
        if rk != "f" and ck != rk:
            raise BadInput(f"The reference takes {r.name!r} as {r.dtype}, the candidate {c.name!r} as {c.dtype}.",
                           sig + ".")
    return in_map


def _dims(shape) -> str:
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def _shapes_compatible(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        known_a, known_b = [d for d in a if d is not None], [d for d in b if d is not None]
        return None not in a and None not in b and int(np.prod(a)) == int(np.prod(b)) and bool(known_a) and bool(known_b)
    if all(x is None or y is None or x == y for x, y in zip(a, b)):
        return True
    return len(a) == 3 and (a == (b[2], b[0], b[1]) or a == (b[1], b[2], b[0]))  # NCHW ↔ NHWC


def match_outputs(reference: Reference, session, samples, in_map: dict) -> tuple[dict, dict]:
    """Reference output name → candidate spec, and how each was matched.

    By name; then by a unique shape; then, for outputs that share a shape, by values: the
    pairing with the least error on the first few samples (a converter that renames and
    reorders same-shaped outputs is still matched correctly)."""
    few = samples.take(VALUE_MATCH_SAMPLES)
    ref = reference.call(few.inputs)
    names = list(ref)
    cands = list(session.outputs)
    if len(names) != len(cands):
        raise BadInput(
            f"The reference has {len(names)} output(s) ({', '.join(names)}), the candidate {len(cands)} "
            f"({', '.join(s.name for s in cands)}).",
            "Compare the candidate with the model it was converted from.",
        )
    out, how = {}, {}
    by_name = {s.name: s for s in cands}
    for n in names:
        if n in by_name:
            out[n], how[n] = by_name[n], "name"
    left = [s for s in cands if s not in out.values()]
    todo = [n for n in names if n not in out]
    if not todo:
        return out, how
    # shape groups
    groups: dict = {}
    for n in todo:
        key = tuple(sorted(ref[n].shape[1:]))
        groups.setdefault(key, ([], []))[0].append(n)
    for s in left:
        key = tuple(sorted(d for d in s.shape[1:]))
        if key in groups:
            groups[key][1].append(s)
    ambiguous = []
    for key, (rn, cs) in groups.items():
        if len(rn) == 1 and len(cs) == 1:
            out[rn[0]], how[rn[0]] = cs[0], "shape"
        elif rn and len(rn) == len(cs):
            ambiguous.append((rn, cs))
        else:
            shapes = ", ".join(f"{n} {_dims(ref[n].shape[1:])}" for n in rn)
            raise BadInput(
                f"Cannot match the reference output(s) {shapes} to any candidate output of the same shape "
                f"(candidate: {', '.join(s.describe() for s in cands)}).",
                "The models do not compute the same outputs; compare the candidate with its own source.",
            )
    if ambiguous:
        cand_few = _run_candidate(session, few, in_map)
        for rn, cs in ambiguous:
            pairs = sorted(
                (_rel_err(ref[n], cand_few[c.name]), n, c.name) for n in rn for c in cs
            )
            used_r, used_c = set(), set()
            by = {c.name: c for c in cs}
            for _err, n, cname in pairs:
                if n in used_r or cname in used_c:
                    continue
                out[n], how[n] = by[cname], "values"
                used_r.add(n)
                used_c.add(cname)
    return out, how


def _rel_err(r, c) -> float:
    r = np.asarray(r, np.float64)
    c = parity_mod.adapt_layout(np.asarray(c, np.float64), r.shape)
    if c.shape != r.shape:
        return float("inf")
    return float(np.sqrt(np.mean((r - c) ** 2)) / (np.sqrt(np.mean(r**2)) + 1e-12))


def _run_candidate(session, samples, in_map) -> dict:
    in_specs = {s.name: s for s in session.inputs}
    chunks: dict[str, list] = {}
    for i in range(len(samples)):
        feed = {in_map[k].name: parity_mod.adapt_layout(v[i : i + 1], in_specs[in_map[k].name].shape)
                for k, v in samples.inputs.items()}
        for k, v in run_float(session, feed).items():
            chunks.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in chunks.items()}


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
    threads: int | None = None,
    target_options: dict | None = None,
    progress=None,
    log=lambda msg: None,
) -> dict:
    """Compare CANDIDATE (an artifact) with REFERENCE (a model or an artifact) on DATA.

    Returns the result dict that `--json` prints; `passed` false is a failed check (the CLI
    exits 1), bad input raises BadInput (exit 2).
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
    shapes = parse_input_shapes(input_shapes) if not isinstance(input_shapes, dict) else input_shapes
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    log(f"Loading the reference {reference}")
    if weights is not None and is_artifact(reference):
        raise BadInput("--weights belongs to a PyTorch reference given as file.py:Class, not to an artifact.",
                       "Drop --weights, or pass the model spec as REFERENCE.")
    ref = load_reference(reference, shapes, threads, weights=weights)
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

    timed = {"reference_s": 0.0}

    def timed_reference(feeds):
        t = time.perf_counter()
        try:
            return ref.call(feeds)
        finally:
            timed["reference_s"] += time.perf_counter() - t

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
    return next(s for s in specs if s.name == name)


def raise_for_result(result: dict) -> None:
    if not result["passed"]:
        first = result.get("first_divergence")
        where = f" First divergence: {first['layer']} ({first['op_type']})." if first else ""
        raise CheckFailed(
            f"{result['candidate']['artifact']} does not match {result['reference']['origin']} "
            f"(preset {result['parity']['precision']}).{where}",
            "See the table above" + ("" if first or "layers" in result else "; --per-layer shows where it diverges")
            + ". Relax a threshold only knowingly (--min-psnr, --min-cosine, ...).",
        )

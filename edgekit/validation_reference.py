"""What `edgekit validate` compares the candidate with: the reference as a batched callable
(Reference, load_reference), and the candidate's precision, which picks the verdict preset
(artifact_precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .artifacts import FORMATS, format_of, read_manifest
from .runtimes import load as load_runtime
from .runtimes import run_float
from .specs import TensorSpec

REF_BATCH = 64  # batched artifact references run this many samples per call


@dataclass
class Reference:
    """What the candidate is compared with: a batched callable plus its input specs.

    `call` takes feeds keyed by input name, each (N, ...) real values, and returns the outputs
    keyed by name, each (N, ...). `native` is the SourceModel for models, the runtime session
    for artifacts; `inputs` is the float view of the inputs (quantized artifact inputs
    dequantized).
    """

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
        """The `reference` entry of the result: kind, origin, and framework/format/precision
        when known."""
        d = {"kind": self.kind, "origin": self.origin}
        if self.framework:
            d["framework"] = self.framework
        if self.format:
            d["format"] = self.format
        if self.precision:
            d["precision"] = self.precision
        return d


def is_artifact(spec) -> bool:
    """Whether `spec` (a path string, a Path or a model object) is an existing artifact file
    (.tflite, .pte, .ptl, .onnx, _edgetpu.tflite) rather than a model."""
    if not isinstance(spec, (str, Path)):
        return False  # a model object handed over from Python
    p = Path(spec)
    return p.is_file() and (p.suffix.lower() in FORMATS or p.name.endswith("_edgetpu.tflite"))


def load_reference(spec, input_shapes: dict | None = None, threads: int | None = None,
                   weights: str | None = None, signature: str | None = None) -> Reference:
    """Load REFERENCE: an artifact (run by its runtime), a model spec `edgekit convert` takes, or
    a model object handed over from Python.

    Args:
        spec: an artifact path, a model spec string/Path, or a model object.
        input_shapes: input name → shape, for models whose inputs are not fully known.
        threads: runtime threads for an artifact reference (None: the runtime's default).
        weights: a PyTorch state dict for a `file.py:Class` reference.
        signature: a SavedModel reference's signature (default serving_default).

    Raises:
        BadInput (exit 2) / MissingDependency (exit 3): from the model loader or the runtime.
    """
    if is_artifact(spec):
        session = load_runtime(spec, threads=threads)
        return Reference(
            kind="artifact", origin=str(spec), inputs=[_float_view(s) for s in session.inputs],
            call=session_reference(session), format=format_of(spec), precision=artifact_precision(spec),
            native=session, path=Path(spec),
        )
    from .sources import from_object, load_model

    if isinstance(spec, (str, Path)):
        source = load_model(str(spec), input_shapes or {}, weights=weights, signature=signature)
    else:
        source = from_object(spec, type(spec).__name__, input_shapes or {})
    return Reference(kind="model", origin=source.origin, inputs=source.inputs, call=source.reference,
                     framework=source.framework, native=source)


def _float_view(s: TensorSpec) -> TensorSpec:
    """What a caller feeds: real values for a quantized input."""
    dtype = "float32" if s.is_quantized else s.dtype
    return TensorSpec(s.name, s.shape, dtype, layout=s.layout)


def run_batched(session, feeds: dict, step: int) -> dict:
    """Run a runtime session on real-valued feeds (name → (N, ...)) `step` samples per call;
    returns every output, real-valued, concatenated over the N samples."""
    n = len(next(iter(feeds.values())))
    chunks: dict[str, list] = {}
    for i in range(0, n, step):
        for k, v in run_float(session, {k: v[i : i + step] for k, v in feeds.items()}).items():
            chunks.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in chunks.items()}


def session_reference(session) -> Callable[[dict], dict]:
    """A runtime session as a batched reference: real values in, real values out (keyed by the
    session's output names). Sessions whose inputs take any batch size (ONNX with a dynamic first
    axis) run REF_BATCH samples per call, others in groups of the batch they declare (the
    function's `batch` attribute, read by edgekit.parity.check)."""
    firsts = {s.shape[0] for s in session.inputs if len(s.shape) and isinstance(s.shape[0], int) and s.shape[0] > 0}
    declared = firsts.pop() if len(firsts) == 1 else 1
    step = REF_BATCH if getattr(session, "batchable", False) else declared

    def reference(feeds: dict) -> dict:
        outs = run_batched(session, feeds, step)
        return {s.name: outs[s.name] for s in session.outputs}

    reference.batch = None if getattr(session, "batchable", False) else declared
    return reference


# -- precision (which verdict preset applies) ------------------------------------------------

def artifact_precision(path) -> str | None:
    """The candidate's precision (fp32, fp16, dynamic-int8, int8, int16x8, ...): from its
    manifest's recipe, else, for .tflite, from the tensor types in the file; None otherwise."""
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

"""ONNX models (`.onnx`, with external data beside it as torch.onnx.export writes it) as sources.

The reference is the ONNX model itself run by ONNX Runtime (CPU execution provider), so parity
compares an artifact with what the published file computes, not with a re-imported copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..specs import TensorSpec, resolve_shapes
from . import SourceModel


def load_file(path: Path, input_shapes: dict) -> SourceModel:
    """An `.onnx` file → SourceModel (framework "onnx").

    Args:
        path: the model file; initializers stored as external data are read from the files the
            model names, relative to PATH's folder (e.g. `model.onnx.data`).
        input_shapes: --input-shape values fixing dynamic dimensions (a dynamic batch alone
            defaults to 1), as `specs.resolve_shapes` takes them.

    Returns the SourceModel whose `reference` runs ONNX Runtime in groups of the resolved batch,
    `native` the path, `extra` {"input_names", "output_names", "onnx_path"}. Raises BadInput
    (exit 2) for a file that is not an ONNX model (truncated, another format), an external-data
    file that is missing, an input left with an unknown dimension (ShapeNeeded), or a model ONNX
    Runtime refuses; MissingDependency (exit 3) without onnx/onnxruntime.
    """
    from ..runtimes import import_runtime

    onnx = import_runtime(("onnx",), "onnx", "onnx (the ONNX model format)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError, a truncated varint, ...
        raise BadInput(f"{path} is not a readable ONNX model ({type(exc).__name__}: {str(exc)[:200]}); it may be "
                       "truncated or another format with an .onnx name.",
                       "Export or download it again; `python -c \"import onnx; onnx.checker.check_model('FILE')\"` "
                       "says whether a file is whole.") from exc
    if not model.graph.node:
        raise BadInput(f"{path} holds no ONNX graph (no nodes).", "Export the model again.")
    external = _check_external_data(path, model)
    raw = _input_specs(model)
    specs = resolve_shapes(raw, input_shapes, what="ONNX model")
    session = _session(path, onnx, external)
    out_names = [o.name for o in session.get_outputs()]
    batch = int(specs[0].shape[0]) if specs and specs[0].shape else 1

    def reference(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from . import in_groups, keep_rows

        chunks = []
        for _, group, keep in in_groups(feeds, batch):
            outs = session.run(out_names, {s.name: np.asarray(group[s.name], s.dtype) for s in specs})
            chunks.append({n: keep_rows(np.asarray(v), batch, keep) for n, v in zip(out_names, outs)})
        return {n: np.concatenate([c[n] for c in chunks]) for n in out_names}

    reference.batch = batch
    return SourceModel(framework="onnx", origin=str(path), inputs=specs, native=path, reference=reference,
                       extra={"input_names": [s.name for s in specs], "output_names": out_names,
                              "onnx_path": str(path)})


def _input_specs(model) -> list[TensorSpec]:
    """The graph inputs that are not initializers, with None for a symbolic or unknown dimension."""
    import onnx

    weights = {t.name for t in model.graph.initializer}
    out = []
    for value in model.graph.input:
        if value.name in weights:
            continue
        t = value.type.tensor_type
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)).name
        except Exception:
            raise BadInput(f"The ONNX input {value.name!r} is not a numeric tensor (elem_type {t.elem_type}).",
                           "edgekit feeds float, integer and bool tensors.") from None
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)
        out.append(TensorSpec(value.name, shape, dtype))
    return out


def _session(path: Path, onnx, external: bool):
    """An onnxruntime InferenceSession of the model. With external data the model is read whole
    into memory first: ONNX Runtime's shape inference cannot read a small constant (a Reshape's
    target shape) that an exporter wrote to the data file ("Please load external data into raw
    data"). Raises BadInput (exit 2) when ONNX Runtime refuses the model."""
    import onnxruntime as ort

    try:
        model = onnx.load(str(path)).SerializeToString() if external else str(path)
        return ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"ONNX Runtime cannot load {path}: {first[:400]}",
                       "Check the file with onnx.checker.check_model; export it again if it fails.") from exc


def _check_external_data(path: Path, model) -> bool:
    """Whether the model keeps tensors in external files; BadInput (exit 2) naming each such
    file that is missing beside it."""
    from onnx.external_data_helper import uses_external_data

    missing, external = set(), False
    for t in model.graph.initializer:
        if uses_external_data(t):
            external = True
            location = next((e.value for e in t.external_data if e.key == "location"), None)
            if location and not (path.parent / location).is_file():
                missing.add(location)
    if missing:
        raise BadInput(f"{path} keeps its weights in {', '.join(sorted(missing))}, which is not beside it "
                       f"(looked in {path.parent}).",
                       "Copy the .onnx together with its external-data file(s), keeping their names.")
    return external

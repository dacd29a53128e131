"""Runtimes: load an artifact, run it. One per format; parity, profiling and the device agent
all use these, so "what ran" is the same code everywhere.

A session exposes `inputs`/`outputs` (TensorSpec, with scale/zero-point for quantized I/O)
and `run(feeds) -> {name: array}` on raw tensors. `run_float` quantizes float feeds and
dequantizes outputs, so callers compare real values whatever the artifact's I/O types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..artifacts import format_of
from ..errors import BadInput
from ..specs import TensorSpec


class Session(Protocol):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


# One loader per format, imported on first use ("module:Class" keeps framework imports lazy).
LOADERS = {
    "tflite": "edgekit.runtimes.tflite:TFLiteSession",
    "executorch": "edgekit.runtimes.executorch:ExecuTorchSession",
    "torchscript": "edgekit.runtimes.torchscript:LiteInterpreterSession",
    "onnx": "edgekit.runtimes.onnx:OnnxSession",
}


def load(path: str | Path, threads: int | None = None, **options) -> Session:
    """Open an artifact with the runtime for its format."""
    import importlib

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"The artifact {path} does not exist.", "Check the path.")
    fmt = format_of(path)
    target = LOADERS.get("tflite" if fmt == "edgetpu" else fmt)
    if target is None:
        raise BadInput(f"No runtime for {fmt} artifacts.", "Supported: " + ", ".join(sorted(LOADERS)))
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(path, threads=threads, **options)




def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if not spec.is_quantized:
        return x.astype(spec.dtype, copy=False)
    info = np.iinfo(spec.dtype)
    q = np.round(np.asarray(x, np.float64) / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if not spec.is_quantized:
        return np.asarray(q)
    return ((np.asarray(q, np.float64) - spec.zero_point) * spec.scale).astype(np.float32)


def run_float(session: Session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run with real-valued feeds and get real-valued outputs, whatever the I/O quantization."""
    by_name = {s.name: s for s in session.inputs}
    raw = {name: quantize(np.asarray(x), by_name[name]) for name, x in feeds.items()}
    outs = session.run(raw)
    specs = {s.name: s for s in session.outputs}
    return {name: dequantize(v, specs[name]) if name in specs else v for name, v in outs.items()}

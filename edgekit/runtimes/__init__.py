"""Runtimes: open an artifact and run it, one session class per format.

This is the only implementation of "run an artifact" in edgekit. Host parity, host profiling
and the device agent all execute these modules: the agent pushed to a board is a zipapp built
from this package (see `edgekit.agent.bundle`), so it needs only Python ≥ 3.9, numpy and the
board's runtime. Everything imported here at module level must therefore be the standard
library, numpy, or the device-safe core (`edgekit.errors`, `edgekit.specs`, `edgekit.artifacts`,
`edgekit.integrity`, `edgekit.native_log`); frameworks are imported inside the session classes.

| format      | session                  | runtime                                          |
|-------------|--------------------------|--------------------------------------------------|
| tflite      | `TFLiteSession`          | ai-edge-litert's Interpreter (tflite-runtime on old boards) |
| edgetpu     | `TFLiteSession`          | the same, with the Edge TPU delegate             |
| executorch  | `ExecuTorchSession`      | executorch.runtime (portable kernels + XNNPACK)  |
| torchscript | `LiteInterpreterSession` | torch's lite interpreter (PyTorch Mobile)        |
| onnx        | `OnnxSession`            | onnxruntime, CPU execution provider              |

A session exposes `inputs`/`outputs` (`TensorSpec`, with scale and zero-point for quantized
I/O), `run(feeds) -> {name: array}` on raw tensors, and the three steps `run` is made of
(`set_inputs`, `invoke`, `get_outputs`) so that profiling times `invoke` alone. `run_float`
quantizes real-valued feeds and dequantizes outputs, so callers compare real values whatever
the artifact's I/O types.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

from ..artifacts import format_of
from ..errors import BadInput, MissingDependency, install_line
from ..specs import TensorSpec


class Session(Protocol):
    """What every runtime session offers (see the module docstring)."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    runtime: str  # the Python package that ran it: ai_edge_litert, executorch, torch, onnxruntime
    native_log: str  # what the runtime printed on fd 2 while loading

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on raw tensors (input name → array in the input's dtype and shape) → raw
        outputs by name. CheckFailed (exit 1) when the runtime fails."""
        ...

    def set_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        """Hand FEEDS (by input name, else by position) to the runtime for the next `invoke`."""
        ...

    def invoke(self) -> None:
        """Run the model once on the inputs set last (the step profiling times)."""
        ...

    def get_outputs(self) -> dict[str, np.ndarray]:
        """The outputs of the last `invoke`, as numpy arrays by output name."""
        ...

    def delegation(self) -> dict | None:
        """Delegate coverage (the `delegation` entry of schema `$defs/profile`), or None."""
        ...


class BaseSession:
    """The parts every session shares: `run` = set_inputs + invoke + get_outputs."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    runtime = "?"
    native_log = ""

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on raw tensors keyed by input name (else taken by position); raw outputs by name."""
        self.set_inputs(feeds)
        self.invoke()
        return self.get_outputs()

    def delegation(self) -> dict | None:
        """Delegate coverage where the runtime can tell (TFLite); None otherwise."""
        return None

    def _feed(self, feeds: dict[str, np.ndarray], i: int, spec: TensorSpec) -> np.ndarray:
        if spec.name in feeds:
            return np.asarray(feeds[spec.name])
        values = list(feeds.values())
        if i >= len(values):
            raise BadInput(f"No value for input {spec.name!r}: {len(values)} feed(s) for {len(self.inputs)} input(s).",
                           "Give one array per input, keyed by its name.")
        return np.asarray(values[i])


# One session class per format, imported on first use ("module:Class" keeps framework imports lazy).
LOADERS = {
    "tflite": "edgekit.runtimes.tflite:TFLiteSession",
    "edgetpu": "edgekit.runtimes.tflite:TFLiteSession",
    "executorch": "edgekit.runtimes.executorch:ExecuTorchSession",
    "torchscript": "edgekit.runtimes.torchscript:LiteInterpreterSession",
    "onnx": "edgekit.runtimes.onnx:OnnxSession",
}

# What to pip-install on a board that lacks the runtime for a format (aarch64 and x86_64 wheels exist).
BOARD_PACKAGES = {"tflite": "ai-edge-litert", "edgetpu": "ai-edge-litert", "executorch": "executorch",
                  "torchscript": "torch", "onnx": "onnxruntime"}


def session_class(fmt: str):
    """The session class for FORMAT (a key of LOADERS); BadInput (exit 2) for an unknown one."""
    target = LOADERS.get(fmt)
    if target is None:
        raise BadInput(f"No runtime for {fmt} artifacts.", "Supported: " + ", ".join(sorted(LOADERS)))
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def load(path: str | Path, threads: int | None = None, **options) -> Session:
    """Open the artifact at PATH with the runtime for its format (by extension).

    Args:
        path: a `.tflite`, `_edgetpu.tflite`, `.pte`, `.ptl` or `.onnx` file.
        threads: CPU threads the runtime may use (None: the runtime's default).
        **options: passed to the session class (e.g. `preserve_all_tensors=True` for TFLite,
            `etdump=True` for ExecuTorch, `profile=True` for onnxruntime).

    Returns a `Session`. Raises BadInput (exit 2) for a missing file or an unknown extension or a
    corrupt file, MissingDependency (exit 3) when the runtime is not installed, CheckFailed
    (exit 1) when the runtime cannot load the model (a missing kernel, Flex ops).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"The artifact {path} does not exist.", "Check the path.")
    return session_class(format_of(path))(path, threads=threads, **options)


def import_runtime(modules: tuple[str, ...], extra: str, what: str):
    """Import the first of MODULES that imports (a board may have an older runtime package).

    Returns the module. Raises MissingDependency (exit 3) listing why each one failed, with the
    edgekit extra that installs it (the device agent replaces the hint with the board's pip line).
    """
    errors = []
    for name in modules:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise MissingDependency(f"{what} is needed here but could not be imported ({'; '.join(errors)}).",
                            f"Install it with: {install_line(extra)}")


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A real-valued array → the tensor SPEC takes: q = round(x / scale) + zero_point, clipped to
    the integer type's range (the TFLite/ONNX affine quantization formula). Integer arrays for a
    quantized input are taken as already quantized; unquantized specs only cast."""
    x = np.asarray(x)
    dt = np.dtype(spec.dtype)
    if not spec.is_quantized or x.dtype.kind not in "f" or dt.kind not in "iu":
        return x.astype(dt, copy=False)
    info = np.iinfo(dt)
    q = np.round(x.astype(np.float64) / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(dt)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A quantized tensor → real values (float32): (q - zero_point) * scale; others unchanged."""
    if not spec.is_quantized:
        return np.asarray(q)
    return ((np.asarray(q, np.float64) - spec.zero_point) * spec.scale).astype(np.float32)


def run_float(session: Session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run SESSION with real-valued FEEDS (keyed by input name) and get real-valued outputs,
    whatever the artifact's I/O quantization (quantize → run → dequantize)."""
    by_name = {s.name: s for s in session.inputs}
    raw = {name: quantize(np.asarray(x), by_name[name]) if name in by_name else np.asarray(x)
           for name, x in feeds.items()}
    outs = session.run(raw)
    specs = {s.name: s for s in session.outputs}
    return {name: dequantize(v, specs[name]) if name in specs else v for name, v in outs.items()}

"""ONNX runtime: onnxruntime's InferenceSession on the CPU provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadInput, CheckFailed, require
from ..specs import TensorSpec

# onnxruntime's type strings → numpy dtype names
_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


class OnnxSession:
    """An .onnx file on onnxruntime's CPU provider, with a fixed thread count when given (its
    spinning threads disturb other runtimes on small machines)."""

    def __init__(self, path: Path, threads: int | None = None, **_options):
        ort = require("onnxruntime", "onnx", "onnxruntime (the ONNX runtime)")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... classes
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"onnxruntime cannot load {path}: {first}",
                           "Export the model again (torch.onnx.export) and check it with onnx.checker.") from exc
        self.inputs = [_spec(a) for a in self.session.get_inputs()]
        self.outputs = [_spec(a) for a in self.session.get_outputs()]
        self._out_names = [s.name for s in self.outputs]

    @property
    def batchable(self) -> bool:
        """True when every input takes any batch size (a dynamic first axis)."""
        return all(s.shape and s.shape[0] is None for s in self.inputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outs = self.session.run(self._out_names, feeds)
        except Exception as exc:
            raise CheckFailed(f"The ONNX model failed to run: {str(exc).strip().splitlines()[0]}",
                              "Check the inputs' shapes and types against the model's signature.") from exc
        return dict(zip(self._out_names, (np.asarray(o) for o in outs)))


def _spec(arg) -> TensorSpec:
    dtype = _TYPES.get(arg.type)
    if dtype is None:
        raise BadInput(f"ONNX tensor {arg.name!r} has type {arg.type}, which edgekit cannot feed or compare.",
                       "Use float, integer or bool tensors at the model's boundary.")
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (arg.shape or ()))
    return TensorSpec(arg.name, shape, dtype)

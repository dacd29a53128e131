"""ONNX runtime: onnxruntime's InferenceSession on the CPU provider."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BadInput, CheckFailed
from ..specs import TensorSpec
from . import BaseSession, import_runtime

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


class OnnxSession(BaseSession):
    """An .onnx file on onnxruntime's CPU execution provider.

    Args:
        path: the `.onnx` file (external data, e.g. `model.onnx.data`, beside it).
        threads: intra-op threads, with one inter-op thread (onnxruntime's spinning threads
            disturb other runtimes on small machines; None: onnxruntime's default).
        profile: record onnxruntime's per-node profile for `op_profile()`.

    Dynamic dimensions appear as None in the specs. Raises BadInput (exit 2) when onnxruntime
    cannot load the file or a boundary tensor has a type edgekit cannot feed, MissingDependency
    (exit 3) without onnxruntime, CheckFailed (exit 1) when a run fails.
    """

    def __init__(self, path: Path, threads: int | None = None, profile: bool = False, **_options):
        ort = import_runtime(("onnxruntime",), "onnx", "onnxruntime (the ONNX runtime)")
        self.runtime = "onnxruntime"
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = os.path.join(tempfile.gettempdir(), "edgekit-ort-profile")
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

    def set_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        """Keep the feeds (numpy, by input name or position) for the next invoke."""
        self._feeds = {s.name: self._feed(feeds, i, s) for i, s in enumerate(self.inputs)}

    def invoke(self) -> None:
        """Run the graph once on the inputs set last."""
        try:
            self._last = self.session.run(self._out_names, self._feeds)
        except Exception as exc:
            raise CheckFailed(f"The ONNX model failed to run: {str(exc).strip().splitlines()[0]}",
                              "Check the inputs' shapes and types against the model's signature.") from exc

    def get_outputs(self) -> dict[str, np.ndarray]:
        """The last outputs as numpy arrays, by output name."""
        return dict(zip(self._out_names, (np.asarray(o) for o in self._last)))

    def op_profile(self) -> list[tuple[str, str, list[float]]]:
        """Per-node kernel times recorded since loading (needs `profile=True`): rows of
        (node name, op type, [ms per run]) from onnxruntime's profile (its temporary file is removed)."""
        path = self.session.end_profiling()
        try:
            with open(path) as f:
                events = json.load(f)
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
        per: dict[tuple[str, str], list[float]] = {}
        for e in events:
            if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
                key = (e["name"][: -len("_kernel_time")], e.get("args", {}).get("op_name", "?"))
                per.setdefault(key, []).append(e.get("dur", 0) / 1000.0)
        return [(n, t, xs) for (n, t), xs in per.items()]


def _spec(arg) -> TensorSpec:
    dtype = _TYPES.get(arg.type)
    if dtype is None:
        raise BadInput(f"ONNX tensor {arg.name!r} has type {arg.type}, which edgekit cannot feed or compare.",
                       "Use float, integer or bool tensors at the model's boundary.")
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (arg.shape or ()))
    return TensorSpec(arg.name, shape, dtype)

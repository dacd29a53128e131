"""Per-layer parity, the TFLite side: a .tflite candidate's intermediate tensors (TFLiteProbe),
and a .tflite candidate against another .tflite (tensors of the same name and size).

TFLite intermediates are read from an interpreter that preserves all tensors, without the
default XNNPACK delegate (a delegated subgraph hides its insides); int8/int16 tensors are
dequantized with their (per-tensor or per-channel) scale and zero-point.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import require
from .layers_layout import Matched
from .parity import adapt_layout
from .runtimes import quantize


class TFLiteProbe:
    """A TFLite interpreter that keeps every intermediate tensor, listed in execution order.

    Attributes:
        inputs: input name (the signature's when the model has one signature) → (tensor index,
            TensorSpec).
        output_names: tensor index → output name, for the graph outputs.
        ops: [(op type, output tensor index)] in execution order, for float/int8/int16 outputs
            (int32/int64 index tensors are left out unless they are graph outputs).
    """

    def __init__(self, path: Path):
        """Load `path` (a .tflite or _edgetpu.tflite file).

        Raises:
            MissingDependency (exit 3): ai-edge-litert is not installed.
        """
        interp_mod = require("ai_edge_litert.interpreter", "tf", "ai-edge-litert (the TFLite runtime)")
        from .runtimes.tflite import _tflite_spec

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": it is, here
            self.it = interp_mod.Interpreter(
                model_path=str(path),
                experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=interp_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        self.it.allocate_tensors()
        self.tensors = {d["index"]: d for d in self.it.get_tensor_details()}
        sigs = self.it.get_signature_list()
        if len(sigs) == 1:
            runner = self.it.get_signature_runner(next(iter(sigs)))
            ins = [dict(d, name=n) for n, d in runner.get_input_details().items()]
            outs = [dict(d, name=n) for n, d in runner.get_output_details().items()]
        else:
            ins, outs = self.it.get_input_details(), self.it.get_output_details()
        self.inputs = {d["name"]: (d["index"], _tflite_spec(d)) for d in ins}
        self.output_names = {d["index"]: d["name"] for d in outs}  # tensor index → signature name
        self.ops = []  # (op type, output tensor index), in execution order
        for op in self.it._get_ops_details():  # no public op list; stable across releases
            if op["op_name"] == "DELEGATE":
                continue
            for t in op["outputs"]:
                d = self.tensors.get(int(t))
                if d is not None and np.dtype(d["dtype"]).kind in "fiu" and np.dtype(d["dtype"]).name not in ("int32", "int64"):
                    self.ops.append((op["op_name"], int(t)))
                elif d is not None and int(t) in self.output_names:
                    self.ops.append((op["op_name"], int(t)))

    def name(self, t: int) -> str:
        """The name of tensor `t` (an index from `ops`)."""
        return self.tensors[t]["name"]

    def shape(self, t: int) -> tuple:
        """The shape of tensor `t`, a tuple of ints, batch axis first."""
        return tuple(int(x) for x in self.tensors[t]["shape"])

    def run(self, feeds: dict) -> None:
        """Run once. feeds: candidate input name → real values (np.ndarray) with a batch axis of 1,
        in either layout (transposed to the input's NCHW/NHWC shape, then quantized)."""
        for name, x in feeds.items():
            idx, spec = self.inputs[name]
            self.it.set_tensor(idx, quantize(adapt_layout(np.asarray(x), spec.shape), spec))
        self.it.invoke()

    def run_sample(self, samples, i: int, in_map: dict) -> None:
        """Run sample `i` of `samples` (edgekit.data Samples keyed by reference input name);
        in_map: reference input name → the candidate's TensorSpec (validation.match_inputs)."""
        self.run(self.feed_for(samples, i, in_map))

    def get(self, t: int) -> np.ndarray:
        """Tensor `t` of the last run as float32 real values (dequantized, per channel where the
        tensor is quantized per channel: (q - zero_point) * scale)."""
        d = self.tensors[t]
        raw = self.it.get_tensor(t)
        q = d.get("quantization_parameters") or {}
        scales, zps = np.asarray(q.get("scales", [])), np.asarray(q.get("zero_points", []))
        if np.dtype(d["dtype"]).kind in "iu" and scales.size:
            if scales.size == 1:
                return ((raw.astype(np.float64) - zps[0]) * scales[0]).astype(np.float32)
            axis = int(q.get("quantized_dimension", 0))
            shape = [1] * raw.ndim
            shape[axis] = -1
            return ((raw.astype(np.float64) - zps.reshape(shape)) * scales.reshape(shape)).astype(np.float32)
        return np.array(raw, dtype=np.float32)

    def feed_for(self, samples, i: int, in_map: dict) -> dict:
        """Sample `i` as feeds for `run`: {candidate input name: values with a batch axis of 1}."""
        return {in_map[k].name: v[i : i + 1] for k, v in samples.inputs.items()}

    def in_execution_order(self, items: list, tensor_of) -> list:
        """`items` sorted by when the candidate computes their tensor (`tensor_of(item)` → index):
        the candidate's execution order is a topological order of what it computes."""
        pos = {t: i for i, (_, t) in enumerate(self.ops)}
        return sorted(items, key=lambda item: pos[tensor_of(item)])

    def row(self, t: int, layer: str, op_type: str, matched: Matched) -> dict:
        """One row of the per-layer table: layer, op_type, the candidate tensor's shape and name,
        and the metrics of `matched` (with its layout)."""
        return {"layer": layer, "op_type": op_type, "shape": list(self.shape(t)), "tensor": self.name(t),
                **matched.result()}


def not_observable(layer: str, op_type: str, reason: str, key: str = "layer") -> dict:
    """A row of `not_observable`: a reference layer (or candidate tensor, key="tensor") that
    cannot be compared, and why."""
    return {key: layer, "op_type": op_type, "reason": reason}


NOT_IN_TFLITE = "no tensor in the .tflite (fused into a neighbour or removed)"


def friendly(tensor_name: str) -> str:
    """A readable layer label from a TFLite tensor name: the scopes between the model's name and
    the op's, of each fused part: 'model_1/conv1_1/Relu;model_1/conv1_1/convolution' → 'conv1_1'."""
    parts = []
    for part in tensor_name.split(";"):
        comps = part.split("/")
        scope = "/".join(comps[1:-1]) if len(comps) > 2 else part
        if scope not in parts:
            parts.append(scope)
    return "+".join(parts)


def vs_tflite(ref: TFLiteProbe, cand: TFLiteProbe, samples, in_map: dict, progress=None):
    """Compare every candidate tensor with the reference .tflite's tensor of the same name and
    size (graph outputs by signature name).

    Args:
        ref, cand: probes of the reference and candidate .tflite.
        samples: edgekit.data Samples keyed by the reference's input names.
        in_map: reference input name → candidate TensorSpec.
        progress: optional callable(done, total) called after each sample.

    Returns:
        (rows, not_observable) in the shape edgekit.layers.summarize takes.
    """
    ref_by_name = {ref.name(t): t for _, t in ref.ops}
    ref_names = [n for n in ref.inputs if n in samples.inputs]
    pairs, missing = [], []
    for op_type, t in cand.ops:
        name = cand.name(t)
        rt = ref_by_name.get(name)
        if rt is None and t in cand.output_names:  # graph outputs: by signature name
            rt = next((r for r, n in ref.output_names.items() if n == cand.output_names[t]), None)
        if rt is None or np.prod(ref.shape(rt)) != np.prod(cand.shape(t)):
            missing.append(not_observable(name, op_type, "no tensor of this name and size in the reference", key="tensor"))
            continue
        pairs.append((op_type, t, rt))
    acc = {t: Matched() for _, t, _ in pairs}
    n = len(samples)
    for i in range(n):
        # the reference artifact's inputs are the samples' keys (data was loaded against them)
        ref.run({k: samples.inputs[k][i : i + 1] for k in ref_names})
        cand.run_sample(samples, i, in_map)
        for _, t, rt in pairs:
            acc[t].add(ref.get(rt), cand.get(t))
        if progress:
            progress(i + 1, n)
    rows = [cand.row(t, cand.output_names.get(t) or friendly(cand.name(t)), op_type, acc[t]) for op_type, t, _ in pairs]
    return rows, missing

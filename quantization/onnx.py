"""Quantization recipes for `.onnx` artifacts, applied with ONNX Runtime's own tools.

The float model is exported first (torch.onnx / tf2onnx); a recipe then rewrites that file:

| recipe        | tool (onnxruntime)                                   | result                               |
|---------------|------------------------------------------------------|--------------------------------------|
| fp16          | transformers.float16.convert_float_to_float16        | fp16 weights and compute, fp32 I/O   |
| dynamic-int8  | quantization.quantize_dynamic (per-channel)          | int8 weights, activations quantized  |
|               |                                                      | at run time (MatMulInteger, ...)     |
| int8          | quantization.quant_pre_process, then quantize_static | QDQ: QuantizeLinear/DequantizeLinear |
|               | (QDQ, per-channel, S8S8, MinMax calibration)         | pairs around int8 weights            |

int8 is "S8S8 in QDQ format", which ONNX Runtime's quantization guide names the first choice for
balance of speed and accuracy on CPU (onnxruntime.ai/docs/performance/model-optimizations/
quantization.html, "Data type selection"); the pre-processing step (symbolic shape inference and
graph optimization) is the one the same guide asks for before static quantization. A model older
than opset 13 is first converted to 13 (onnx.version_converter): per-channel scales need it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections import Counter
from pathlib import Path

from edgekit.errors import UnsupportedModel

RECIPES = ("none", "fp16", "dynamic-int8", "int8")


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over edgekit samples: one {input name:
    array (1, ...)} per call of get_next(), then None."""

    def __init__(self, samples, names: list[str]):
        self._it = iter([{n: v for n, v in samples.sample(i).items() if n in names} for i in range(len(samples))])

    def get_next(self):
        """The next calibration feed, or None when all have been given."""
        return next(self._it, None)


@contextlib.contextmanager
def _quiet():
    """ORT's quantization tools log "Please consider to run pre-processing" and progress through
    the root logger and stdout: keep them out of the terminal and --json."""
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(old)


def apply(recipe: str, float_model: Path, dest: Path, calibration=None) -> None:
    """Write DEST: the float .onnx FLOAT_MODEL with RECIPE applied (see the module table).

    Args:
        recipe: one of RECIPES ("none" copies the file).
        float_model: the exported float model (a file; single-file, no external data).
        dest: the file to write.
        calibration: `edgekit.data.Samples` for "int8" (each sample batch 1, keyed by input name).

    Raises UnsupportedModel (exit 2) naming the tool and its reason when ONNX Runtime cannot
    quantize the graph.
    """
    import onnx

    if recipe == "none":
        dest.write_bytes(float_model.read_bytes())
        return
    try:
        with _quiet():
            if recipe in ("int8", "dynamic-int8"):
                float_model = _opset_at_least(float_model, PER_CHANNEL_OPSET)
            if recipe == "fp16":
                from onnxruntime.transformers.float16 import convert_float_to_float16

                model = convert_float_to_float16(onnx.load(str(float_model)), keep_io_types=True)
                onnx.save(model, str(dest))
            elif recipe == "dynamic-int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(str(float_model), str(dest), weight_type=QuantType.QInt8, per_channel=True)
            elif recipe == "int8":
                _static(float_model, dest, calibration)
            else:
                raise UnsupportedModel(f"ONNX has no {recipe} recipe in edgekit.", "--quantize " + " | ".join(RECIPES))
    except UnsupportedModel:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise UnsupportedModel(f"ONNX Runtime could not apply {recipe} to the exported model: {type(exc).__name__}: "
                               f"{text[0][:400] if text else ''}",
                               "Try --quantize fp16 or none (add --debug for the full log).") from exc


PER_CHANNEL_OPSET = 13  # DequantizeLinear's `axis` (per-channel scales) exists from opset 13


def _opset_at_least(path: Path, opset: int) -> Path:
    """PATH, or a copy beside it converted to OPSET (onnx.version_converter) when it imports an
    older default-domain opset: per-channel QDQ on an opset-12 model is an invalid graph."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(path))
    have = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    if have >= opset:
        return path
    upgraded = path.with_name(f"{path.stem}.opset{opset}.onnx")
    onnx.save(version_converter.convert_version(model, opset), str(upgraded))
    return upgraded


def _static(float_model: Path, dest: Path, calibration) -> None:
    """QDQ int8 (S8S8, per-channel weights, MinMax ranges from CALIBRATION) after ORT's pre-process."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    names = [i.name for i in onnx.load(str(float_model), load_external_data=False).graph.input]
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(float_model), str(pre))
        quantize_static(str(pre), str(dest), _Reader(calibration, names), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)


def summarize(path: Path) -> dict:
    """What the .onnx at PATH holds: {"ops_by_type": {op: count}, "weights_by_dtype": {onnx
    dtype name: initializer count}, "quantize_nodes": QuantizeLinear + DynamicQuantizeLinear count,
    and for a QDQ model "float_ops_by_type": the compute ops left in float (read by
    edgekit.quantization.fallback to call an int8 build hybrid)}."""
    import onnx

    model = onnx.load(str(path))
    ops = Counter(n.op_type for n in model.graph.node)
    weights = Counter(onnx.TensorProto.DataType.Name(t.data_type).lower() for t in model.graph.initializer)
    out = {"ops_by_type": dict(sorted(ops.items())), "weights_by_dtype": dict(sorted(weights.items())),
           "quantize_nodes": ops.get("QuantizeLinear", 0) + ops.get("DynamicQuantizeLinear", 0)}
    if ops.get("QuantizeLinear"):  # a QDQ model: which compute ops ONNX Runtime will still run in float
        out["float_ops_by_type"] = _float_compute(model)
    return out


COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Mul", "Sub",  # as pt2e.COMPUTE_OPS
               "LSTM", "GRU", "RNN")  # recurrent ops: QDQ leaves them float (ORT quantizes them dynamically only)


def _float_compute(model) -> dict:
    """{op type: count} of COMPUTE_OPS nodes of a QDQ graph with a tensor input that does not
    come from a DequantizeLinear (nor is a constant): ONNX Runtime fuses a node into its integer
    kernel (QLinearConv, QLinearMatMul, ...) only when every input is dequantized. The bodies of
    Loop/Scan/If nodes (tf2onnx writes a Keras LSTM as a Loop) are searched too, where the
    quantizer does not reach: their compute stays float."""
    left = Counter()
    _walk(model.graph, {t.name for t in model.graph.initializer}, left)
    return dict(sorted(left.items()))


def _walk(graph, consts: set, left: Counter) -> None:
    """Count GRAPH's float compute nodes into LEFT, then those of its subgraphs."""
    consts = consts | {t.name for t in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output}
    made_by = {o: n.op_type for n in graph.node for o in n.output}
    for n in graph.node:
        if n.op_type in COMPUTE_OPS:
            inputs = [i for i in n.input if i and i not in consts]
            if any(made_by.get(i) != "DequantizeLinear" for i in inputs):
                left[n.op_type] += 1
        for attr in n.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _walk(sub, consts, left)


def effective(recipe: str, summary: dict) -> tuple[bool, str | None]:
    """(did RECIPE change the model, why not): fp16 needs float16 initializers, dynamic-int8 and
    int8 at least one (Dynamic)QuantizeLinear node and int8 weights."""
    if recipe == "none":
        return True, None
    if recipe == "fp16":
        ok = summary["weights_by_dtype"].get("float16", 0) > 0
        return ok, None if ok else "no weight became float16"
    ok = summary["quantize_nodes"] > 0 and summary["weights_by_dtype"].get("int8", 0) > 0
    return ok, None if ok else "ONNX Runtime found no operator to quantize (it quantizes Conv, MatMul, Gemm and " \
                               "their neighbours)"

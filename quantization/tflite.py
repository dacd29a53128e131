"""Apply a QuantRecipe to a tf.lite.TFLiteConverter, and read back what was really quantized."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from . import QuantRecipe


def configure(converter, recipe: QuantRecipe, calibration=None, io_dtype: str = "float32",
              allow_tf_ops: bool = False) -> None:
    """Set a tf.lite.TFLiteConverter's flags for RECIPE (none, fp16, dynamic-int8, int8, int16x8).

    Args:
        converter: the tf.lite.TFLiteConverter to configure (changed in place).
        recipe: the `QuantRecipe`.
        calibration: for int8 and int16x8, TFLite's `representative_dataset`: a callable
            returning an iterator of feeds (keras_to_tflite yields dicts input name → array
            of batch 1).
        io_dtype: "int8"/"uint8" (int8) or "int16" (int16x8) make the model's inputs and
            outputs integer; "float32" keeps them float.
        allow_tf_ops: add SELECT_TF_OPS (Flex) to the op sets.

    int8 restricts the op set to TFLITE_BUILTINS_INT8, so the converter fails rather than
    leave ops in float."""
    import tensorflow as tf

    builtins = tf.lite.OpsSet.TFLITE_BUILTINS
    if recipe.name == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif recipe.name == "dynamic-int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif recipe.name == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8  # full integer: fail rather than fall back to float
        if io_dtype != "float32":
            converter.inference_input_type = getattr(tf, io_dtype)
            converter.inference_output_type = getattr(tf, io_dtype)
    elif recipe.name == "int16x8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        builtins = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        if io_dtype == "int16":
            converter.inference_input_type = tf.int16
            converter.inference_output_type = tf.int16
    ops = [builtins]
    if allow_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops


def summarize(model_path) -> dict:
    """What the .tflite really holds, read from every subgraph of the file (the main graph and
    the bodies of WHILE/IF loops and other signatures): weight and activation tensors by dtype,
    ops by the dtype they compute in. Backends skip silently (dynamic range leaves weights < 1024
    elements in float: TFLite's `kWeightsMinNumElementsDefault`,
    tensorflow/lite/tools/optimize/quantize_weights).

    Returns the counts merged into `quantization` of schema `$defs/convert`: weights_by_dtype,
    weight_elements_by_dtype, activations_by_dtype, ops_by_dtype (an op's dtype is its first
    output's), ops_by_type, float_ops_by_type (float ops other than QUANTIZE/DEQUANTIZE),
    op_count and subgraphs. Weights are op inputs no op of their subgraph produces that are not
    that subgraph's inputs."""
    weights, activations, op_dtypes, op_types = Counter(), Counter(), Counter(), Counter()
    float_ops = Counter()  # ops computing in float, not counting the (de)quantize glue
    weight_elems = Counter()
    graphs = subgraphs(model_path)
    for tensors, ops, graph_inputs in graphs:
        produced = {o for op in ops for o in op["outputs"]}
        for op in ops:
            op_types[op["op_name"]] += 1
            outs = [tensors[o] for o in op["outputs"] if o in tensors]
            if outs:
                dt = outs[0]["dtype"]
                op_dtypes[dt] += 1
                if dt in ("float32", "float16") and op["op_name"] not in ("QUANTIZE", "DEQUANTIZE"):
                    float_ops[op["op_name"]] += 1
            for i in op["inputs"]:
                if i < 0 or i not in tensors or i in produced or i in graph_inputs:
                    continue
                weights[tensors[i]["dtype"]] += 1
                weight_elems[tensors[i]["dtype"]] += int(np.prod(tensors[i]["shape"]))
        for i in produced | graph_inputs:
            if i in tensors:
                activations[tensors[i]["dtype"]] += 1
    return {
        "weights_by_dtype": dict(weights),
        "weight_elements_by_dtype": dict(weight_elems),
        "activations_by_dtype": dict(activations),
        "ops_by_dtype": dict(op_dtypes),
        "ops_by_type": dict(sorted(op_types.items())),
        "float_ops_by_type": dict(sorted(float_ops.items())),
        "op_count": sum(len(ops) for _, ops, _ in graphs),
        "subgraphs": len(graphs),
    }


def subgraphs(model_path) -> list[tuple[dict, list, set]]:
    """Every subgraph of a .tflite, read from its flatbuffer with LiteRT's schema (the
    Interpreter lists the first subgraph only): [(tensors {index: {dtype, shape}}, ops
    [{op_name, inputs, outputs}], input indices)]. Op names are TFLite builtin names
    (FULLY_CONNECTED) or the custom code (Flex... for TensorFlow ops)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(Path(model_path).read_bytes(), 0)
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    names = _op_names(model, schema)
    out = []
    for g in model.subgraphs or []:
        tensors = {i: {"dtype": types.get(t.type, "float32"), "shape": list(t.shape if t.shape is not None else [])}
                   for i, t in enumerate(g.tensors or [])}
        ops = [{"op_name": names[o.opcodeIndex], "inputs": [int(i) for i in (o.inputs if o.inputs is not None else [])],
                "outputs": [int(i) for i in (o.outputs if o.outputs is not None else [])]} for o in g.operators or []]
        out.append((tensors, ops, {int(i) for i in (g.inputs if g.inputs is not None else [])}))
    return out


def _op_names(model, schema) -> list[str]:
    """The op name of each of MODEL's operator codes (a schema.ModelT): the TFLite builtin name
    (FULLY_CONNECTED) or the custom code (Flex... for TensorFlow ops)."""
    builtins = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(code) -> str:
        if code.customCode:
            return code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
        return builtins.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")

    return [op_name(c) for c in model.operatorCodes or []]


def hybrid_note(recipe: QuantRecipe, summary: dict) -> str | None:
    """Integer recipes can come back partly float (no int8 kernel for ELU, ...): say which ops."""
    if recipe.name not in ("int8", "int16x8") or not summary.get("float_ops_by_type"):
        return None
    ops = summary["float_ops_by_type"]
    listed = ", ".join(f"{k} ×{v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1]))
    return (f"{sum(ops.values())} of {summary['op_count']} ops still compute in float ({listed}): the "
            "converter left them unquantized, so the model is hybrid, not full-integer. "
            "Integer-only accelerators (Edge TPU, many NPUs) will fall back to the CPU there.")


def effective(recipe: QuantRecipe, summary: dict) -> tuple[bool, str | None]:
    """Did the recipe actually change the model? (False, why) when the backend skipped it."""
    w = summary["weights_by_dtype"]
    if recipe.name == "fp16" and not w.get("float16"):
        return False, "no weight was stored as float16"
    if recipe.name == "dynamic-int8" and not w.get("int8"):
        return False, (
            "dynamic-range quantization left every weight in float: TFLite skips weight tensors under "
            "1024 elements, and this model has none larger. The file is the float model. Use --quantize "
            "int8 with calibration data to quantize a small model."
        )
    if recipe.name in ("int8", "int16x8") and not w.get("int8"):
        return False, "no weight was quantized to int8"
    return True, None


# op → index of its bias input (TFLite builtin operator signatures)
_BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def flat_biases(flatbuffer: bytes) -> bytes:
    """FLATBUFFER (a float .tflite) with every conv/fully-connected bias of shape (1, ..., 1, C)
    reshaped to (C,), the same values; unchanged bytes when there is none.

    Why: litert-torch writes TRANSPOSE_CONV's bias as (1, 1, 1, C), and ai-edge-quantizer
    (0.x) quantizes a bias per channel along axis 0, giving C scales on a dimension of size 1:
    LiteRT then refuses the file ("num_scales must be 1 for per-layer quantization, or 1 for
    per-axis quantization, but got C"), measured on PP-OCRv4's text detector (DBNet head).
    TFLite's kernels read a bias as C values whatever its shape, so (C,) computes the same."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    codes = _op_names(model, schema)
    changed = False
    for g in model.subgraphs or []:
        for op in g.operators or []:
            at = _BIAS_INPUT.get(codes[op.opcodeIndex])
            if at is None or op.inputs is None or len(op.inputs) <= at or op.inputs[at] < 0:
                continue
            t = g.tensors[op.inputs[at]]
            shape = [int(d) for d in (t.shape if t.shape is not None else [])]
            if len(shape) > 1 and all(d == 1 for d in shape[:-1]):
                t.shape, t.shapeSignature, changed = np.array(shape[-1:], np.int32), None, True
    if not changed:
        return flatbuffer
    b = flatbuffers.Builder(len(flatbuffer) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())

"""Apply a QuantRecipe to a tf.lite.TFLiteConverter, and read back what was really quantized."""

from __future__ import annotations

from collections import Counter

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
    """What the .tflite really holds: weight and activation tensors by dtype, ops by the dtype they
    compute in. Backends skip silently (dynamic range leaves weights < 1024 elements in float:
    TFLite's `kWeightsMinNumElementsDefault`, tensorflow/lite/tools/optimize/quantize_weights).

    Returns the counts merged into `quantization` of schema `$defs/convert`: weights_by_dtype,
    weight_elements_by_dtype, activations_by_dtype, ops_by_dtype (an op's dtype is its first
    output's), ops_by_type, float_ops_by_type (float ops other than QUANTIZE/DEQUANTIZE) and
    op_count. Weights are op inputs no op produces that are not graph inputs."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.native_log import capture_native_stderr

    with capture_native_stderr():  # the runtime's "Created ... XNNPACK delegate" banner
        interp = Interpreter(model_path=str(model_path))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # public API has no op list; stable across TF/LiteRT releases
    produced = {o for op in ops for o in op["outputs"]}
    graph_inputs = {d["index"] for d in interp.get_input_details()}
    weights, activations, op_dtypes, op_types = Counter(), Counter(), Counter(), Counter()
    float_ops = Counter()  # ops computing in float, not counting the (de)quantize glue
    for op in ops:
        op_types[op["op_name"]] += 1
        outs = [tensors[o] for o in op["outputs"] if o in tensors]
        if outs:
            dt = np.dtype(outs[0]["dtype"]).name
            op_dtypes[dt] += 1
            if dt in ("float32", "float16") and op["op_name"] not in ("QUANTIZE", "DEQUANTIZE"):
                float_ops[op["op_name"]] += 1
        for i in op["inputs"]:
            if i < 0 or i not in tensors or i in produced or i in graph_inputs:
                continue
            weights[np.dtype(tensors[i]["dtype"]).name] += 1
    for i in produced | graph_inputs:
        if i in tensors:
            activations[np.dtype(tensors[i]["dtype"]).name] += 1
    weight_elems = Counter()
    for op in ops:
        for i in op["inputs"]:
            if i >= 0 and i in tensors and i not in produced and i not in graph_inputs:
                weight_elems[np.dtype(tensors[i]["dtype"]).name] += int(np.prod(tensors[i]["shape"]))
    return {
        "weights_by_dtype": dict(weights),
        "weight_elements_by_dtype": dict(weight_elems),
        "activations_by_dtype": dict(activations),
        "ops_by_dtype": dict(op_dtypes),
        "ops_by_type": dict(sorted(op_types.items())),
        "float_ops_by_type": dict(sorted(float_ops.items())),
        "op_count": len(ops),
    }


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

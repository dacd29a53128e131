"""Will this .tflite run on a Coral Edge TPU? An offline prediction from the flatbuffer alone.

Read with the TFLite schema module that ai-edge-litert ships (`schema_py_generated`, no
TensorFlow import, any OS), then checked against what Coral documents for its compiler
(coral.ai/docs/edgetpu/models-intro, "Model requirements" and "Supported operations", compiler
v16):

- tensors are 8-bit (int8/uint8) for every activation; constant parameters fixed at compile time
  (int32 biases are fine);
- tensor sizes are constant at compile time (no dynamic `shape_signature` -1);
- at most 3 innermost dimensions larger than 1 (a 4-D tensor needs batch 1);
- only the operations in `SUPPORTED` below, within their documented limits.

How the compiler cuts the graph (Coral: "the compiler partitions the graph at the first
unsupported op; that op and everything after it run on the CPU, even supported ones"): one Edge
TPU subgraph; operations before it that it cannot take (typically the float→int8 QUANTIZE of a
float-I/O model) stay on the CPU in front, and from the first unsupported operation after the
Edge TPU part began, every operation depending on it runs on the CPU. The compiler reports the
latter as "More than one subgraph is not supported".

Known gaps (the compiler decides these and does not publish the rule): ResizeBilinear /
ResizeNearestNeighbor precision rejections, "certain reshapes ... for large tensor sizes", the
"unspecified limitation" cases, and on-chip memory (8 MiB) caching. The prediction marks those
ops `risk` instead of claiming them.
"""

from __future__ import annotations

import time
from pathlib import Path

from .errors import BadInput

# TFLite builtin → (first compiler/runtime version that maps it, documented limits).
# From Coral's "Supported operations" table (compiler 16). Limits marked [checked] are verified
# here; the others are reported as risks when the op appears.
SUPPORTED: dict[str, tuple[str, str]] = {
    "ADD": ("all", ""),
    "AVERAGE_POOL_2D": ("all", "No fused activation function. [checked]"),
    "BATCH_MATMUL": ("16", ""),
    "CONCATENATION": ("all", "No fused activation function [checked]. If an input is a compile-time constant "
                             "it must be all zeroes and there must be only 2 inputs."),
    "CONV_2D": ("all", "Same dilation in x and y. [checked]"),
    "DEPTHWISE_CONV_2D": ("all", "Same dilation in x and y (≤12: no dilation). [checked]"),
    "EXPAND_DIMS": ("13", ""),
    "FULLY_CONNECTED": ("all", "Only the default weights format [checked]; output tensor is one-dimensional."),
    "GATHER": ("16", ""),
    "L2_NORMALIZATION": ("all", ""),
    "LOGISTIC": ("all", ""),
    "LSTM": ("14", "Unidirectional LSTM only."),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("14", "Unidirectional LSTM only."),
    "MAXIMUM": ("all", ""),
    "MAX_POOL_2D": ("all", "No fused activation function. [checked]"),
    "MEAN": ("all", "No reduction in the batch dimension [checked]; a z-reduction needs z a multiple of 4."),
    "MINIMUM": ("all", ""),
    "MUL": ("all", ""),
    "PACK": ("13", "No packing in the batch dimension. [checked]"),
    "PAD": ("all", "No padding in the batch dimension. [checked]"),
    "PADV2": ("all", "No padding in the batch dimension. [checked]"),
    "PRELU": ("13", "Alpha 1-dimensional (Keras PReLU: shared_axes=[1, 2])."),
    "QUANTIZE": ("13", "Integer→integer requantization only (a float input runs on the CPU). [checked]"),
    "REDUCE_MAX": ("14", "Cannot operate on the batch dimension. [checked]"),
    "REDUCE_MIN": ("14", "Cannot operate on the batch dimension. [checked]"),
    "RELU": ("all", ""),
    "RELU6": ("all", ""),
    "RELU_N1_TO_1": ("all", ""),
    "RESHAPE": ("all", "Certain reshapes may not be mapped for large tensor sizes."),
    "RESIZE_BILINEAR": ("all", "3-D input/output; may stay on the CPU to avoid loss of precision (size dependent)."),
    "RESIZE_NEAREST_NEIGHBOR": ("all", "3-D input/output; may stay on the CPU to avoid loss of precision."),
    "RSQRT": ("14", ""),
    "SLICE": ("all", ""),
    "SOFTMAX": ("all", "1-D input (innermost dimension only) of at most 16,000 elements. [checked]"),
    "SPACE_TO_DEPTH": ("all", ""),
    "SPLIT": ("all", "No splitting in the batch dimension. [checked]"),
    "SPLIT_V": ("all", "No splitting in the batch dimension."),
    "SQUARED_DIFFERENCE": ("14", ""),
    "SQUEEZE": ("all", ""),
    "STRIDED_SLICE": ("all", "All strides 1, ellipsis_mask 0, new_axis_mask 0. [checked]"),
    "SUB": ("all", ""),
    "SUM": ("13", "Cannot operate on the batch dimension. [checked]"),
    "TANH": ("all", ""),
    "TRANSPOSE": ("14", ""),
    "TRANSPOSE_CONV": ("13", ""),
}
RISKY = {"RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "LSTM", "PRELU", "FULLY_CONNECTED",
         "CONCATENATION", "MEAN", "SPLIT_V", "UNIDIRECTIONAL_SEQUENCE_LSTM"}
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
CUT_REASON = "More than one subgraph is not supported"
ON_CHIP_BYTES = 8 * 1024 * 1024  # Coral's parameter cache (≈ 8 MiB, a little used by the compiler)


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - tensorflow ships the same module
        try:
            from tensorflow.lite.python import schema_py_generated as schema
        except ImportError as exc:
            from .errors import MissingDependency

            raise MissingDependency(f"Reading a .tflite needs ai-edge-litert's schema module ({exc}).",
                                    "pip install ai-edge-litert") from exc
    return schema


def _names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def analyze(path, subgraph: int = 0) -> dict:
    """The Edge TPU prediction for PATH (a .tflite). See the module docstring for the rules."""
    t0 = time.perf_counter()
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p} does not exist.", "Pass a .tflite file.")
    buf = p.read_bytes()
    schema = _schema()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise BadInput(f"{p.name} is not a TFLite flatbuffer (no TFL3 identifier).", "Pass a .tflite file.")
    try:
        model = schema.Model.GetRootAs(buf, 0)
    except Exception as exc:
        raise BadInput(f"{p.name} cannot be read as a TFLite model: {exc}", "Reconvert it.") from exc
    op_names = _names(schema.BuiltinOperator)
    type_names = _names(schema.TensorType)
    act_names = _names(schema.ActivationFunctionType)
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = op_names.get(code, f"BUILTIN_{code}")
        custom = oc.CustomCode().decode() if oc.CustomCode() else None
        codes.append((name, custom, int(oc.Version())))
    g = model.Subgraphs(subgraph)
    n_t = g.TensorsLength()
    tensors = []
    for i in range(n_t):
        t = g.Tensors(i)
        buf_idx = t.Buffer()
        b = model.Buffers(buf_idx) if 0 < buf_idx < model.BuffersLength() else None
        const = bool(b is not None and (b.DataLength() > 0 or b.Size() > 0))
        sig = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else None
        tensors.append({
            "name": t.Name().decode(errors="replace"),
            "shape": [int(x) for x in t.ShapeAsNumpy()] if t.ShapeLength() else [],
            "dynamic": bool(sig is not None and any(int(x) < 0 for x in sig)),
            "dtype": type_names.get(t.Type(), str(t.Type())).lower(),
            "const": const,
            "buffer": b,
        })
    graph_inputs = {int(x) for x in g.InputsAsNumpy()} if g.InputsLength() else set()
    ops = []
    for i in range(g.OperatorsLength()):
        o = g.Operators(i)
        name, custom, version = codes[o.OpcodeIndex()]
        ins = [int(x) for x in o.InputsAsNumpy()] if o.InputsLength() else []
        outs = [int(x) for x in o.OutputsAsNumpy()] if o.OutputsLength() else []
        ops.append({"index": i, "op": name if name != "CUSTOM" else "CUSTOM", "custom_code": custom,
                    "version": version, "inputs": [x for x in ins if x >= 0], "outputs": outs, "_o": o})
    model_issues = _model_issues(tensors)
    # per-op verdict on its own
    for op in ops:
        op["reasons"] = _op_reasons(op, tensors, schema, act_names)
        op["risk"] = SUPPORTED[op["op"]][1] if op["op"] in RISKY and not op["reasons"] else None
    already = [op for op in ops if op["custom_code"] == EDGETPU_CUSTOM_OP]
    # the cut: one Edge TPU subgraph; leading CPU ops do not cut, the first one after the TPU part does
    producer = {t: op["index"] for op in ops for t in op["outputs"]}
    placed: dict[int, str] = {}
    tpu_started = False
    cut = None
    for op in ops:
        deps = {producer[t] for t in op["inputs"] if t in producer}
        after_cut = any(placed.get(d) == "cpu-after" for d in deps)
        tpu_parent = any(placed.get(d) == "tpu" for d in deps)
        if op["reasons"]:
            where = "cpu-after" if (tpu_started or tpu_parent or after_cut) else "cpu-before"
            if where == "cpu-after" and cut is None:
                cut = op
        elif after_cut:
            where = "cpu-after"
            op["reasons"] = [CUT_REASON]
        else:
            where = "tpu"
            tpu_started = True
        placed[op["index"]] = where
        op["placement"] = "edgetpu" if where == "tpu" else "cpu"
    n = len(ops)
    on_tpu = sum(1 for op in ops if op["placement"] == "edgetpu")
    by_status: dict[tuple[str, str], int] = {}
    for op in ops:
        status = "Mapped to Edge TPU" if op["placement"] == "edgetpu" else op["reasons"][0]
        by_status[(op["op"], status)] = by_status.get((op["op"], status), 0) + 1
    param_bytes = sum(t["buffer"].DataLength() for t in tensors if t["const"] and t["buffer"] is not None)
    first_unsupported = next((op for op in ops if op["reasons"] and op["reasons"] != [CUT_REASON]), None)
    result = {
        "model": str(p),
        "subgraph": subgraph,
        "already_compiled": bool(already),
        "total_ops": n,
        "predicted_tpu_ops": on_tpu,
        "predicted_cpu_ops": n - on_tpu,
        "predicted_tpu_share": (on_tpu / n) if n else 0.0,
        "compatible": bool(n) and on_tpu == n and not model_issues,
        "model_issues": model_issues,
        "cut": None if cut is None else {"index": cut["index"], "op": cut["op"], "reason": cut["reasons"][0],
                                          "ops_after_on_cpu": sum(1 for op in ops if op["index"] > cut["index"]
                                                                  and op["placement"] == "cpu")},
        "first_unsupported": None if first_unsupported is None else {
            "index": first_unsupported["index"], "op": first_unsupported["op"],
            "reason": first_unsupported["reasons"][0]},
        "unsupported_op_types": sorted({op["op"] for op in ops if op["reasons"] and op["reasons"] != [CUT_REASON]}),
        "table": [{"op": k[0], "count": v, "status": k[1]} for k, v in by_status.items()],
        "risks": sorted({f"{op['op']}: {op['risk']}" for op in ops if op["risk"] and op["placement"] == "edgetpu"}),
        "parameter_bytes": param_bytes,
        "parameters_fit_on_chip": param_bytes <= ON_CHIP_BYTES,
        "ops": [{k: op[k] for k in ("index", "op", "custom_code", "placement", "reasons")} for op in ops],
        "analysis_s": time.perf_counter() - t0,
    }
    return result


def _model_issues(tensors) -> list[str]:
    issues = []
    floats = [t["name"] for t in tensors if not t["const"] and t["dtype"] not in ("int8", "uint8", "int32", "int64", "bool")]
    if floats:
        issues.append(f"{len(floats)} activation tensor(s) are not 8-bit integer (e.g. {floats[0]!r}, "
                      f"{next(t['dtype'] for t in tensors if t['name'] == floats[0])}): quantize fully to int8 with "
                      "integer I/O (edgekit convert --quantize int8 --io-dtype uint8 or int8); float I/O and "
                      "its QUANTIZE/DEQUANTIZE stay on the CPU at the edges.")
    dyn = [t["name"] for t in tensors if t["dynamic"]]
    if dyn:
        issues.append(f"{len(dyn)} tensor(s) have a dynamic shape (e.g. {dyn[0]!r}): fix the input shape "
                      "(--input-shape) so every size is known at compile time.")
    deep = [t for t in tensors if not t["const"] and len(t["shape"]) > 3 and any(d > 1 for d in t["shape"][:-3])]
    if deep:
        t = deep[0]
        issues.append(f"{len(deep)} tensor(s) have more than 3 innermost dimensions above 1 (e.g. {t['name']!r} "
                      f"{t['shape']}): use batch 1 and at most 3 non-trivial dimensions.")
    return issues


def _const_values(t):
    if not t["const"] or t["buffer"] is None:
        return None
    import numpy as np

    raw = t["buffer"].DataAsNumpy()
    if isinstance(raw, int):
        return None
    dt = {"int32": np.int32, "int64": np.int64, "int8": np.int8, "uint8": np.uint8}.get(t["dtype"])
    return None if dt is None else np.frombuffer(raw.tobytes(), dtype=dt)


def _options(op, schema, cls_name):
    o = op["_o"]
    tab = o.BuiltinOptions()
    if tab is None:
        return None
    cls = getattr(schema, cls_name, None)
    if cls is None:
        return None
    opts = cls()
    opts.Init(tab.Bytes, tab.Pos)
    return opts


def _op_reasons(op, tensors, schema, act_names) -> list[str]:
    name = op["op"]
    if name == "CUSTOM":
        if op["custom_code"] == EDGETPU_CUSTOM_OP:
            return []  # already compiled for the Edge TPU
        return [f"Operation is not supported (custom op {op['custom_code']!r})"]
    if name not in SUPPORTED:
        return ["Operation not supported"]
    reasons = []
    io = [tensors[i] for i in op["inputs"] + op["outputs"]]
    index_inputs = set(op["inputs"][1:]) if name in ("RESHAPE", "GATHER", "EXPAND_DIMS") else set()
    bad = next((t for i, t in zip(op["inputs"] + op["outputs"], io) if not t["const"]
                and t["dtype"] not in ("int8", "uint8") and i not in index_inputs), None)
    if bad is not None:
        reasons.append(f"Operation is working on an unsupported data type ({bad['dtype']} {bad['name']!r})")
    if any(t["dynamic"] for t in io):
        reasons.append("Tensor has an unsupported (dynamic) shape")
    if any(not t["const"] and len(t["shape"]) > 3 and any(d > 1 for d in t["shape"][:-3]) for t in io):
        reasons.append("Tensor has unsupported rank (more than 3 innermost dimensions above 1)")
    if reasons:
        return reasons
    fused = None
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        fused = _options(op, schema, "Pool2DOptions")
    elif name == "CONCATENATION":
        fused = _options(op, schema, "ConcatenationOptions")
    if fused is not None and fused.FusedActivationFunction() != 0:
        reasons.append(f"Fused activation {act_names.get(fused.FusedActivationFunction())} not supported on {name}")
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = _options(op, schema, "Conv2DOptions" if name == "CONV_2D" else "DepthwiseConv2DOptions")
        if o is not None and o.DilationHFactor() != o.DilationWFactor():
            reasons.append("Different dilation in x and y is not supported")
    if name == "FULLY_CONNECTED":
        o = _options(op, schema, "FullyConnectedOptions")
        if o is not None and o.WeightsFormat() != 0:
            reasons.append("Only the default fully-connected weights format is supported")
    if name == "SOFTMAX":
        t = tensors[op["inputs"][0]]
        if any(d > 1 for d in t["shape"][:-1]) or (t["shape"] and t["shape"][-1] > 16000):
            reasons.append("Softmax supports only a 1-D input of at most 16,000 elements")
    if name == "QUANTIZE" and tensors[op["inputs"][0]]["dtype"] not in ("int8", "uint8"):
        reasons.append("Operation is working on an unsupported data type (float QUANTIZE)")
    if name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN") and len(op["inputs"]) > 1:
        axes = _const_values(tensors[op["inputs"][1]])
        rank = len(tensors[op["inputs"][0]]["shape"])
        if axes is not None and any(int(a) % max(rank, 1) == 0 for a in axes) and rank > 1 \
                and tensors[op["inputs"][0]]["shape"][0] > 1:
            reasons.append("Reduction in the batch dimension is not supported")
    if name in ("PAD", "PADV2") and len(op["inputs"]) > 1:
        pads = _const_values(tensors[op["inputs"][1]])
        if pads is not None and len(pads) >= 2 and (pads[0] or pads[1]) and len(tensors[op["inputs"][0]]["shape"]) == 4:
            reasons.append("Padding in the batch dimension is not supported")
    if name == "STRIDED_SLICE":
        o = _options(op, schema, "StridedSliceOptions")
        strides = _const_values(tensors[op["inputs"][3]]) if len(op["inputs"]) > 3 else None
        if strides is not None and any(int(s) != 1 for s in strides):
            reasons.append("StridedSlice supports only strides of 1")
        if o is not None and (o.EllipsisMask() or o.NewAxisMask()):
            reasons.append("StridedSlice with ellipsis_mask or new_axis_mask is not supported")
    if name == "PACK":
        o = _options(op, schema, "PackOptions")
        if o is not None and o.Axis() == 0 and len(tensors[op["outputs"][0]]["shape"]) > 3:
            reasons.append("Packing in the batch dimension is not supported")
    if name == "SPLIT" and op["inputs"]:
        axis = _const_values(tensors[op["inputs"][0]])
        if axis is not None and len(axis) and int(axis[0]) == 0 and len(tensors[op["inputs"][1]]["shape"]) == 4:
            reasons.append("Splitting in the batch dimension is not supported")
    return reasons


def compare_with_compiler(prediction: dict, report: dict) -> dict:
    """How the prediction matches a parsed edgetpu_compiler report (edgekit.tool_output):
    same op types kept on the CPU, same counts, same cut op."""
    pred_cpu = set(prediction["unsupported_op_types"])
    comp_cpu = set(report.get("cpu_op_types", []))
    comp_cut = [o["op"] for o in report.get("ops", []) if not o["mapped"] and o["status"] != CUT_REASON]
    return {
        "same_unsupported_ops": pred_cpu == comp_cpu,
        "predicted_unsupported": sorted(pred_cpu),
        "compiler_unsupported": sorted(comp_cpu),
        "same_cut_op": (prediction["cut"] or {}).get("op") in comp_cut if comp_cut else prediction["cut"] is None,
        "predicted_tpu_ops": prediction["predicted_tpu_ops"],
        "compiler_tpu_ops": report.get("tpu_ops"),
        "predicted_total_ops": prediction["total_ops"],
        "compiler_total_ops": report.get("total_ops"),
    }


def supported_ops_markdown() -> str:
    """SUPPORTED as a Markdown table (op | since compiler | documented limits), sorted by op;
    the source is Coral's "Supported operations" table (compiler 16)."""
    rows = ["| TFLite op | since compiler | documented limits |", "|---|---|---|"]
    for k, (v, lim) in sorted(SUPPORTED.items()):
        rows.append(f"| {k} | {v} | {lim} |")
    return "\n".join(rows)

"""PT2E quantization (torchao.quantization.pt2e) for PyTorch sources.

export → prepare_pt2e(quantizer) → calibrate on real samples → convert_pt2e. The quantizer is the
backend's own: XNNPACK's for ExecuTorch, litert-torch's for TFLite, both symmetric and
per-channel, so `--quantize int8` means the same thing for either target.

One correction to both quantizers' annotation (`with_fused_clamp`): they fuse a conv or linear
with a following ReLU (one observer, after the ReLU) but not with ReLU6 (`aten.hardtanh`), so
the conv's output was observed over its whole pre-activation range and ReLU6 only shared that
scale: on EfficientNet-Lite0 (ReLU6 after every expand/depthwise conv) the values in [0, 6]
were left a fraction of the 256 levels. Both runtimes fuse the clamp into the conv (XNNPACK's
conv/linear configs list `hardtanh` among `fused_acts`; TFLite's RELU6 fused activation), so
the observer belongs after it. Measured with benchmarks/bench_int8_accuracy.py.
"""

from __future__ import annotations

from . import QuantRecipe


def calibration_batches(samples, names: list[str], dtypes) -> list[tuple]:
    """edgekit Samples → a list of argument tuples (batch 1), in forward() order."""
    import numpy as np
    import torch

    out = []
    for i in range(len(samples)):
        s = samples.sample(i)
        out.append(tuple(torch.from_numpy(np.ascontiguousarray(s[n])).to(dt) for n, dt in zip(names, dtypes)))
    return out


def quantizer_for(backend: str, recipe: QuantRecipe, fused_clamp: bool = True):
    """The PT2E quantizer of BACKEND ("xnnpack": ExecuTorch's XNNPACKQuantizer; "litert":
    litert-torch's PT2EQuantizer) set globally to symmetric per-channel int8, dynamic for the
    dynamic-int8 recipe. With FUSED_CLAMP (default) the static quantizer also fuses conv →
    ReLU6 and annotates litert-torch's adds (`with_fused_clamp`). ValueError for another backend
    (a programming error)."""
    dynamic = recipe.name == "dynamic-int8"
    if backend == "xnnpack":
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
    elif backend == "litert":
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer as XNNPACKQuantizer
        from litert_torch.quantize.pt2e_quantizer import get_symmetric_quantization_config
    else:
        raise ValueError(backend)
    cls = XNNPACKQuantizer if dynamic or not fused_clamp else with_fused_clamp(XNNPACKQuantizer, backend)
    return cls().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic))


CLAMP_OPS = ("hardtanh", "hardtanh_", "relu6")  # nn.ReLU6 exports as aten.hardtanh, F.relu6 as aten.relu6
FUSED_CONV_LINEAR = ("conv1d", "conv2d", "convolution", "linear")
# clamp ranges the backend fuses into a conv/linear: XNNPACK any output min/max (executorch
# backends/xnnpack/_passes/fuse_activation_pass.py); TFLite RELU6 and RELU_N1_TO_1
# (tensorflow/lite/schema/schema.fbs ActivationFunctionType)
FUSABLE_RANGES = {"xnnpack": None, "litert": ((0.0, 6.0), (-1.0, 1.0))}


def with_fused_clamp(quantizer_cls, backend: str):
    """A subclass of the PT2E QUANTIZER_CLS whose annotate() first annotates every conv/linear
    → clamp pair (`annotate_fused_clamp`) with the global config, and for litert-torch every
    add, mul, mean, clamp and softmax by op target (`annotate_by_target`), then annotates the
    rest as QUANTIZER_CLS does (its annotators skip nodes already annotated)."""

    class FusedClamp(quantizer_cls):
        def annotate(self, model):
            if self.global_config is not None:
                annotate_fused_clamp(model, self.global_config, FUSABLE_RANGES[backend])
                if backend == "litert":
                    annotate_by_target(model, self.global_config)
            return super().annotate(model)

    FusedClamp.__name__ = FusedClamp.__qualname__ = f"{quantizer_cls.__name__}FusedClamp"
    return FusedClamp


def _clamp_range(node) -> tuple[float, float]:
    """(min, max) of a relu6 or hardtanh node (hardtanh's defaults are -1, 1)."""
    if str(getattr(node.target, "__name__", node.target)).startswith("relu6"):
        return 0.0, 6.0
    lo = node.args[1] if len(node.args) > 1 else node.kwargs.get("min_val", -1.0)
    hi = node.args[2] if len(node.args) > 2 else node.kwargs.get("max_val", 1.0)
    return float(lo), float(hi)


def annotate_fused_clamp(gm, config, ranges=None) -> int:
    """Annotate GM's conv/linear → ReLU6/hardtanh pairs as one fused pattern, as PT2E's
    quantizers do for conv → relu: the conv's activation, weight and bias inputs with CONFIG's
    specs, no observer on the conv's output, the clamp's output with CONFIG's output spec (so
    the int8 range is the clamp's, [0, 6] for ReLU6). A conv with other users, an already
    annotated node, or a clamp range not in RANGES (None: any; see FUSABLE_RANGES) is left to the quantizer.
    Returns the number of pairs annotated."""
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    key = "quantization_annotation"
    done = 0
    for n in gm.graph.nodes:
        if n.op != "call_function" or not str(getattr(n.target, "__name__", n.target)).split(".")[0] in CLAMP_OPS:
            continue
        conv = n.args[0]
        if not isinstance(conv, torch.fx.Node) or conv.op != "call_function" or len(conv.users) != 1:
            continue
        if str(getattr(conv.target, "__name__", conv.target)).split(".")[0] not in FUSED_CONV_LINEAR:
            continue
        if ranges is not None and _clamp_range(n) not in ranges:
            continue
        weight, bias = conv.args[1], conv.args[2] if len(conv.args) > 2 else None
        partition = [n, conv, weight] + ([bias] if isinstance(bias, torch.fx.Node) else [])
        if not isinstance(conv.args[0], torch.fx.Node) or not isinstance(weight, torch.fx.Node) or \
                any(getattr(p.meta.get(key), "_annotated", False) for p in partition):
            continue
        qmap = {conv.args[0]: config.input_activation, weight: config.weight}
        if isinstance(bias, torch.fx.Node) and config.bias is not None:
            qmap[bias] = config.bias
        conv.meta[key] = QuantizationAnnotation(input_qspec_map=qmap, _annotated=True)
        n.meta[key] = QuantizationAnnotation(output_qspec=config.output_activation, _annotated=True)
        for p in partition[2:]:
            p.meta.setdefault(key, QuantizationAnnotation())._annotated = True
        done += 1
    return done


def quantize(graph_module, example_inputs: tuple, recipe: QuantRecipe, calibration: list | None,
             backend: str = "xnnpack", fold_quantize: bool = True, quantizer=None):
    """Return (converted GraphModule, quantizer). `graph_module` is `torch.export.export(...).module()`;
    QUANTIZER: a PT2E quantizer to use instead of `quantizer_for(backend, recipe)`."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    q = quantizer if quantizer is not None else quantizer_for(backend, recipe)
    prepared = prepare_pt2e(graph_module, q)
    with torch.no_grad():
        for args in calibration or [example_inputs]:
            prepared(*args)
    converted = convert_pt2e(prepared, fold_quantize=fold_quantize)
    move_exported_model_to_eval(converted)
    return converted, q


COMPUTE_OPS = ("conv", "linear", "addmm", "mm", "bmm", "matmul", "add", "mul", "sub")  # aten name prefixes


def summarize_graph(gm) -> dict:
    """Count the quantize/dequantize pairs PT2E left in GM (a converted GraphModule), and the
    compute ops (COMPUTE_OPS: convolutions, matrix products, binary add/mul/sub) that still take
    a float tensor: an input that is not a dequantize node's output (a get_attr or a scalar
    counts as quantized-or-constant). Returns {"quantize", "dequantize", "dynamic_qparams",
    "float_ops_by_type": {aten op name: count}}; absent counters are left out."""
    from collections import Counter

    import torch

    kinds = Counter()
    float_ops = Counter()
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        name = str(getattr(n.target, "__name__", n.target))
        if "quantize_per" in name and "dequantize" not in name:
            kinds["quantize"] += 1
        elif "dequantize" in name:
            kinds["dequantize"] += 1
        elif "choose_qparams" in name:
            kinds["dynamic_qparams"] += 1
        elif name.split(".")[0].startswith(COMPUTE_OPS):
            tensors = [a for a in n.args[:2] if isinstance(a, torch.fx.Node) and a.op == "call_function"]
            if tensors and any("dequantize" not in str(getattr(a.target, "__name__", a.target)) for a in tensors):
                float_ops[name.split(".")[0]] += 1
    out = dict(kinds)
    if float_ops:
        out["float_ops_by_type"] = dict(sorted(float_ops.items()))
    return out


BINARY_OPS = ("add", "mul")  # aten.<op>.Tensor that annotate_by_target annotates
UNARY_TARGETS = ("mean.dim", "clamp.default", "hardtanh.default")  # input and output int8, own ranges
FIXED_OUTPUT_TARGETS = ("_softmax.default", "softmax.int")  # output with the config's fixed qparams (1/256)


def annotate_by_target(gm, config) -> int:
    """Annotate, by op target as XNNPACK's quantizer does, what litert-torch's PT2EQuantizer
    leaves float in a `torch.export(...).module()` graph, whose nodes no longer carry the
    `source_fn_stack` its "add", "mul" and pooling annotators look for:

    - aten.add.Tensor / aten.mul.Tensor of two float tensors, or of a tensor and a scalar (the
      quantizer's transform_for_annotation makes scalars tensor attributes): residual ADDs,
      squeeze-excitation and hard-swish MULs, the `x * alpha + beta` of a decomposed hard-sigmoid;
    - aten.mean.dim, aten.clamp, aten.hardtanh not already fused into a conv (a squeeze-excitation
      pool, a hard-sigmoid's clip to [0, 1]);
    - softmax, with CONFIG's fixed output qparams (TFLite's int8 SOFTMAX output: scale 1/256).

    Inputs and outputs get CONFIG's activation specs. Nodes already annotated are left alone.
    Measured on PaddleOCR's text-direction classifier (.onnx → .tflite int8): 53 float ops
    before, none after (cosine 0.9946, top-1 agreement 0.90 on 40 real text lines);
    EfficientNet-Lite0's int8 .tflite is unchanged (top-1 0.92, 38.3 dB). Returns the number of
    nodes annotated."""
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    def targets(names):
        out = []
        for name in names:
            op, overload = name.split(".")
            out.append(getattr(getattr(torch.ops.aten, op), overload))
        return tuple(out)

    def float_tensor(x) -> bool:
        return isinstance(x, torch.fx.Node) and isinstance(x.meta.get("val"), torch.Tensor) and \
            x.meta["val"].is_floating_point()

    def scalar_attr(x) -> bool:  # a scalar operand the quantizer made a tensor attribute (no "val")
        return isinstance(x, torch.fx.Node) and x.op == "get_attr"

    key = "quantization_annotation"
    binary, unary, fixed_out = (targets(f"{op}.Tensor" for op in BINARY_OPS), targets(UNARY_TARGETS),
                                targets(FIXED_OUTPUT_TARGETS))
    fixed = getattr(config, "fixed_qparams", None)
    done = 0
    for n in gm.graph.nodes:
        if n.op != "call_function" or n.meta.get(key) is not None:
            continue
        if n.target in binary:
            inputs = [x for x in n.args[:2] if float_tensor(x)]
            if not inputs or n.kwargs.get("alpha", 1) != 1:  # integer arithmetic stays as it is
                continue
            inputs += [x for x in n.args[:2] if scalar_attr(x) and x not in inputs]
            output = config.output_activation
        elif n.target in unary or (n.target in fixed_out and fixed is not None):
            if not float_tensor(n.args[0]):
                continue
            inputs, output = [n.args[0]], (fixed if n.target in fixed_out else config.output_activation)
        else:
            continue
        n.meta[key] = QuantizationAnnotation(input_qspec_map={x: config.input_activation for x in inputs},
                                             output_qspec=output, _annotated=True)
        done += 1
    return done

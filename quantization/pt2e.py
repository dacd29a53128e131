"""PT2E quantization (torchao.quantization.pt2e) for PyTorch sources.

export → prepare_pt2e(quantizer) → calibrate on real samples → convert_pt2e. The quantizer is the
backend's own: XNNPACK's for ExecuTorch, litert-torch's for TFLite, both symmetric and
per-channel, so `--quantize int8` means the same thing for either target.
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


def quantizer_for(backend: str, recipe: QuantRecipe):
    """The PT2E quantizer of BACKEND ("xnnpack": ExecuTorch's XNNPACKQuantizer; "litert":
    litert-torch's PT2EQuantizer) set globally to symmetric per-channel int8, dynamic for the
    dynamic-int8 recipe. ValueError for another backend (a programming error)."""
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
    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic))


def quantize(graph_module, example_inputs: tuple, recipe: QuantRecipe, calibration: list | None,
             backend: str = "xnnpack", fold_quantize: bool = True):
    """Return (converted GraphModule, quantizer). `graph_module` is `torch.export.export(...).module()`."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    q = quantizer_for(backend, recipe)
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

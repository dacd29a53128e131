"""Per-channel weight scales without the activation's scale floor.

Both PT2E quantizers edgekit uses build their symmetric int8 config with one `extra_args =
{"eps": 2**-12}` for activations *and* weights (ExecuTorch backends/xnnpack/quantizer/
xnnpack_quantizer.py `get_symmetric_quantization_config`; litert-torch's pt2e_quantizer.py
copies it). For a per-channel weight observer that eps is a floor on each output channel's scale:
a channel whose largest |w| is below 127 · 2**-12 ≈ 0.031 is stored in steps of 2**-12, coarser
than its own values. Models whose BatchNorm or re-parameterised branches were folded into the
convolutions (PaddleOCR's PP-LCNetV3, RepVGG/MobileOne-style blocks) have many such channels:
PP-OCRv4's detector int8 had cosine 0.12 with the float model in PT2E's own simulation, 0.88
with the floor lowered to float32's epsilon (skimage text/photo crops, 24 held out; the fp32
weights quantized alone per channel, without the floor, keep cosine 0.994).

A scale of 2**-23 is still far inside what the int8 kernels accept (XNNPACK's requantization
scale input·weight/output must lie in [2**-32, 256)); the activation specs keep their eps.
"""

from __future__ import annotations

WEIGHT_EPS = 2.0 ** -23  # float32's machine epsilon: a floor only for channels that are (nearly) zero


def unfloor_weights(gm) -> int:
    """Give each per-channel weight spec annotated in GM (a torch.fx GraphModule after a PT2E
    quantizer's annotate()) the same observer with eps = WEIGHT_EPS. Returns the number of
    weight inputs changed (0 when none is per-channel)."""
    import dataclasses

    import torch

    per_channel = (torch.per_channel_symmetric, torch.per_channel_affine)
    done = 0
    for n in gm.graph.nodes:
        annotation = n.meta.get("quantization_annotation")
        if annotation is None:
            continue
        for inp, spec in list(annotation.input_qspec_map.items()):
            if getattr(spec, "qscheme", None) not in per_channel or getattr(spec, "is_dynamic", False):
                continue
            ctr = spec.observer_or_fake_quant_ctr
            partial = getattr(ctr, "p", None)  # torchao's PartialWrapper around functools.partial
            if partial is None or not hasattr(partial.func, "with_args"):
                continue
            annotation.input_qspec_map[inp] = dataclasses.replace(
                spec, observer_or_fake_quant_ctr=partial.func.with_args(**{**partial.keywords, "eps": WEIGHT_EPS}))
            done += 1
    return done


def unfloored(quantizer):
    """QUANTIZER (a PT2E quantizer instance) whose annotate() is followed by `unfloor_weights`;
    the instance is changed in place and returned."""
    annotate = quantizer.annotate

    def annotate_unfloored(model):
        model = annotate(model)
        unfloor_weights(model)
        return model

    quantizer.annotate = annotate_unfloored
    return quantizer


def quantize(graph_module, example_inputs: tuple, recipe, calibration: list | None, backend: str = "xnnpack",
             fold_quantize: bool = True):
    """`edgekit.quantization.pt2e.quantize` (same arguments and result: (converted GraphModule,
    quantizer)) with the quantizer wrapped by `unfloored`."""
    from . import pt2e

    return pt2e.quantize(graph_module, example_inputs, recipe, calibration, backend, fold_quantize,
                         quantizer=unfloored(pt2e.quantizer_for(backend, recipe)))

"""The accuracy-aware search on a float .tflite with ai-edge-quantizer (PyTorch → .tflite):
layers are the weighted ops named by their output tensor (search_tflite.weighted_layers); a layer
is kept float by ai-edge-quantizer's own selective quantization, a recipe entry whose regex
matches the op's scope (its output tensor names joined with ";", `tfl_flatbuffer_utils.
get_op_scope`) with algorithm `no_quantize`, the latest matching entry winning
(`recipe_manager.get_quantization_configs`, ai-edge-quantizer 0.10); every other op follows the
static_wi8_ai8 recipe (int8 per-channel weights, int8 activations).

Why not PT2E here, as plain `--quantize int8` does: litert-torch's static QDQ conversion
re-quantizes a float-weight layer that PT2E left float (a FULLY_CONNECTED between DEQUANTIZE and
QUANTIZE came out int8), so the file would not hold what the search chose. ai-edge-quantizer works
on the converted flatbuffer, so what it leaves float stays float.

The float model is calibrated once on the calibration split; a candidate is one `quantize` of
that calibration result with its recipe, run with ai-edge-litert on the search split. The
winner's flatbuffer is the artifact (float inputs and outputs: ai-edge-quantizer quantizes inside).
"""

from __future__ import annotations

import re

from . import search_tflite

# ops without weights the search may also keep float: their int8 output range is min/max
# calibrated (ai-edge-quantizer has no histogram observer), and a residual ADD's is wide.
# Keeping one float costs no size (0 params), only the DEQUANTIZE/QUANTIZE around it. Every op
# that computes a new range is here: an int8 activation left out caps what the search can reach
# (PP-OCRv4's detector with every ADD/MUL/conv float stayed at 24.5 dB, its 24 HARD_SWISH and
# 6 RESIZE_NEAREST_NEIGHBOR still int8). Layout-only ops (RESHAPE, SQUEEZE, ...) keep their
# input's scale, so keeping one float changes nothing.
ACTIVATION_OPS = ("ADD", "SUB", "MUL", "DIV", "MEAN", "SUM", "AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION",
                  "PAD", "TRANSPOSE", "HARD_SWISH", "LOGISTIC", "TANH", "RELU", "RELU6", "RELU_0_TO_1",
                  "LEAKY_RELU", "PRELU", "GELU", "SOFTMAX", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR",
                  "SQUARED_DIFFERENCE", "RSQRT", "SQRT", "EXP", "MAXIMUM", "MINIMUM")


class Engine:
    """The search engine (quantization.search) on a float .tflite.

    Args:
        flatbuffer: the float .tflite (bytes) from litert-torch.
        calibration: the calibration split as ai-edge-quantizer takes it: {signature key:
            [{input name: np.ndarray (batch 1)}, ...]}.
        search: the search split (data.Samples); ref_names: the reference's output names.
    """

    def __init__(self, flatbuffer: bytes, calibration: dict, search, ref_names: list):
        from .tflite import flat_biases

        self.fp32, self.search, self.ref_names = flat_biases(flatbuffer), search, ref_names
        self.layers = search_tflite.weighted_layers(flatbuffer, search_tflite.WEIGHTED_OPS + ACTIVATION_OPS)
        self.params = search_tflite.weight_sizes(flatbuffer)  # ranking ties and pruning (quantization.search)
        self.stats = search_tflite._quiet(lambda: self._quantizer(()).calibrate(calibration))
        self.built: dict = {}

    def _quantizer(self, float_layers):
        from ai_edge_quantizer import qtyping, recipe
        from ai_edge_quantizer import quantizer as aeq

        qz = aeq.Quantizer(self.fp32)
        qz.load_quantization_recipe(recipe.static_wi8_ai8())
        # float model inputs and outputs (a QUANTIZE/DEQUANTIZE inside): otherwise the input is
        # int8 whatever is kept float, and its min/max range, clipped to the calibration images,
        # alone held EfficientNet-Lite0 at 38 dB with every op float
        for io in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
            qz.update_quantization_recipe(regex=".*", operation_name=io, algorithm_key="no_quantize")
        for name in float_layers:
            qz.update_quantization_recipe(regex=f"^{re.escape(name)};", algorithm_key="no_quantize",
                                          operation_name=qtyping.TFLOperationName.ALL_SUPPORTED)
        return qz

    def build(self, float_layers) -> bytes:
        """The int8 flatbuffer with FLOAT_LAYERS (output tensor names) left float; cached."""
        key = tuple(sorted(float_layers))
        if key not in self.built:
            self.built = {k: v for k, v in self.built.items() if not k}  # keep full int8 only: memory
            qz = self._quantizer(key)
            self.built[key] = search_tflite._quiet(
                lambda: qz.quantize(self.stats, enable_progress_report=False).quantized_model)
        return self.built[key]

    def evaluate(self, float_layers: set) -> list:
        """Outputs on the search split of the int8 model with FLOAT_LAYERS kept float."""
        return search_tflite._run(self.build(float_layers), self.search, self.ref_names)


def searched(flatbuffer: bytes, calibration: dict, request: dict, ref_names: list):
    """Run the search on a float .tflite and return (flatbuffer of the winner, the
    `quantization` keys "float_layers" and "search").

    Args:
        flatbuffer, calibration: as `Engine`'s.
        request: `options.extra["search"]` from edgekit.build (bar, samples, reference, splits, log).
        ref_names: the reference's output names, in the order of request["reference"].
    """
    import time

    from . import search as S

    t0 = time.perf_counter()
    samples = request["samples"]
    engine = Engine(flatbuffer, calibration, samples, request.get("reference_names") or ref_names)
    info = S.run(engine, request["reference"], request["bar"], samples.labels, request.get("log", lambda m: None))
    chosen = [f["name"] for f in info["float_layers"]]
    winner = engine.build(chosen)
    for f in info["float_layers"]:
        f["params"] = engine.params.get(f["name"], 0)
    kept = sum(f["params"] for f in info["float_layers"])
    info.update({"cost": {"float_params": kept, "params": sum(engine.params.values()),
                          "extra_bytes_vs_full_int8_estimate": 3 * kept},"splits": request.get("splits"), "layers": len(engine.layers),
                 "seconds": round(time.perf_counter() - t0, 2),
                 "scored_on": "int8 .tflite candidates (ai-edge-quantizer static_wi8_ai8 with no_quantize for the "
                              "float layers, one calibration) run with ai-edge-litert",
                 "confirmed": next((r for r in info["tried"] if sorted(r["layers"]) == sorted(chosen)), None)})
    return winner, {"float_layers": info.pop("float_layers"), "search": info}

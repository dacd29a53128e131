"""The accuracy-aware search for Keras/SavedModel → TFLite: layers are the ops that carry weights
(CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ...), named by their output tensor in the float
.tflite; a layer is kept float with TFLite's own selective quantization: the MLIR quantizer's
`denylisted_nodes`, as tf.lite.experimental.QuantizationDebugger's
`QuantizationDebugOptions(denylisted_nodes=[...])` uses it (TF 2.21).

The model is calibrated once on the calibration split; a candidate is scored by quantizing that
calibrated model with its float layers denylisted and running it with ai-edge-litert on the
search split. The winner's flatbuffer is the artifact.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL")


def weighted_layers(flatbuffer: bytes, ops=WEIGHTED_OPS) -> list[str]:
    """Output tensor names of the ops of a float .tflite whose type is in OPS (default: the
    weighted ones, WEIGHTED_OPS), in op order: the names `denylisted_nodes` takes."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.native_log import capture_native_stderr

    with capture_native_stderr():
        interp = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    out = []
    for op in interp._get_ops_details():  # no public op list (as quantization.tflite.summarize)
        if op["op_name"] in ops and op["outputs"]:
            out.append(tensors[op["outputs"][0]])
    return out


def weight_sizes(flatbuffer: bytes) -> dict:
    """{layer (as `weighted_layers` names it): elements of its weight tensor (the op's second
    input)} of a float .tflite: what keeping that layer float costs."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.native_log import capture_native_stderr

    with capture_native_stderr():
        interp = Interpreter(model_content=flatbuffer)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    out = {}
    for op in interp._get_ops_details():
        if op["op_name"] in WEIGHTED_OPS and op["outputs"] and len(op["inputs"]) > 1 and op["inputs"][1] in tensors:
            out[tensors[op["outputs"][0]]["name"]] = int(np.prod(tensors[op["inputs"][1]]["shape"]))
    return out


def _run(flatbuffer: bytes, samples, ref_names: list) -> list:
    """FLATBUFFER run with ai-edge-litert on each of SAMPLES (batch 1): (N, ...) float arrays in
    REF_NAMES' order (matched by name, then shape, then position as parity does)."""
    from edgekit.parity import match_specs
    from edgekit.runtimes import run_float
    from edgekit.runtimes.tflite import TFLiteSession

    with tempfile.TemporaryDirectory(prefix="edgekit-search-") as d:
        path = Path(d) / "candidate.tflite"
        path.write_bytes(flatbuffer)
        session = TFLiteSession(path)
        per: dict = {}
        for i in range(len(samples)):
            outs = run_float(session, samples.sample(i))
            for k, v in outs.items():
                per.setdefault(k, []).append(np.asarray(v, np.float32))
    got = {k: np.concatenate(v, 0) for k, v in per.items()}
    mapping = match_specs(ref_names, {}, session.outputs, "output") if set(ref_names) != set(got) else None
    return [got[mapping[n].name] if mapping else got[n] for n in ref_names]


class Engine:
    """The search engine (quantization.search) on a TFLite conversion.

    Args:
        make_converter: () → a fresh tf.lite.TFLiteConverter configured for int8
            (quantization.tflite.configure) with the calibration split as representative data.
        search: the search split (data.Samples); ref_names: the reference's output names.
        io_dtype: "float32", "int8" or "uint8" (the artifact's I/O type).

    The model is calibrated once (the converter in calibrate-only mode, as the quantization
    debugger does); each candidate is TFLite's MLIR quantizer run on that calibrated model with
    the float layers denylisted, so scoring a candidate costs a quantization pass, not a
    conversion.
    """

    def __init__(self, make_converter, search, ref_names: list, io_dtype: str = "float32"):
        import tensorflow as tf

        self.search, self.ref_names = search, ref_names
        self.io = getattr(tf, io_dtype)
        conv = make_converter()
        conv.experimental_mlir_quantizer = True
        conv._experimental_calibrate_only = True  # as QuantizationDebugger._set_converter_options_for_calibration
        self.calibrated = _quiet(conv.convert)
        self.per_channel = not conv._experimental_disable_per_channel
        fp = make_converter()
        fp.optimizations, fp.representative_dataset = [], None
        fp.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        fp.inference_input_type = fp.inference_output_type = tf.float32
        self.layers = weighted_layers(_quiet(fp.convert))
        self.built: dict = {}

    def build(self, float_layers) -> bytes:
        """The int8 flatbuffer with FLOAT_LAYERS (output tensor names) denylisted; cached."""
        from tensorflow.lite.python import convert

        key = tuple(sorted(float_layers))
        if key not in self.built:
            self.built = {k: v for k, v in self.built.items() if not k}  # keep full int8 only: memory
            self.built[key] = _quiet(lambda: convert.mlir_quantize(
                self.calibrated, disable_per_channel=not self.per_channel, fully_quantize=not key,
                input_data_type=self.io, output_data_type=self.io, denylisted_nodes=list(key) or None))
        return self.built[key]

    def evaluate(self, float_layers: set) -> list:
        """Outputs on the search split of the int8 model with FLOAT_LAYERS kept float."""
        return _run(self.build(float_layers), self.search, self.ref_names)


def _quiet(fn):
    from edgekit.native_log import capture_native_stderr

    with contextlib.redirect_stdout(io.StringIO()), capture_native_stderr():
        return fn()


def searched(make_converter, request: dict, ref_names: list, io_dtype: str = "float32"):
    """Run the search for a TFLite conversion and return (flatbuffer of the winner, the
    `quantization` keys "float_layers" and "search").

    Args:
        make_converter: as `Engine`'s; io_dtype: the artifact's I/O type.
        request: `options.extra["search"]` from edgekit.build (bar, samples, reference, splits, log).
        ref_names: the reference's output names, in the order of request["reference"] (its
            "reference_names" when present win).
    """
    import time

    from . import search as S

    t0 = time.perf_counter()
    samples = request["samples"]
    engine = Engine(make_converter, samples, request.get("reference_names") or ref_names, io_dtype)
    info = S.run(engine, request["reference"], request["bar"], samples.labels, request.get("log", lambda m: None))
    chosen = [f["name"] for f in info["float_layers"]]
    flatbuffer = engine.build(chosen)
    info.update({"splits": request.get("splits"), "layers": len(engine.layers),
                 "seconds": round(time.perf_counter() - t0, 2),
                 "scored_on": "int8 .tflite candidates (TFLite MLIR quantizer, denylisted_nodes, one calibration) run with ai-edge-litert",
                 "confirmed": next((r for r in info["tried"] if sorted(r["layers"]) == sorted(chosen)), None)})
    return flatbuffer, {"float_layers": info.pop("float_layers"), "search": info}

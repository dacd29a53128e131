"""Keras models and TensorFlow SavedModels → `.onnx` with tf2onnx (from the same fixed-shape
SavedModel signature the TFLite path converts), recipes by ONNX Runtime's tools
(edgekit.quantization.onnx)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.errors import MissingDependency, UnsupportedModel, install_line
from edgekit.native_log import capture_native_stderr, first_error_line
from edgekit.quantization import QuantRecipe
from edgekit.quantization import onnx as onnx_quant

from . import _onnx_common

FRAMEWORKS = ("keras", "tf-savedmodel")
RECIPES = onnx_quant.RECIPES  # what ONNX Runtime's tools apply (edgekit.quantization.onnx)
SUFFIX = ".onnx"
OPSET = 17  # tf2onnx 1.17 supports opsets up to 18; 17 is ONNX Runtime's long-supported default


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """A Keras model or SavedModel → DEST, an ONNX model (opset OPSET) with RECIPE applied by
    ONNX Runtime.

    Args:
        source: the loaded `SourceModel` (framework one of FRAMEWORKS).
        recipe: the `QuantRecipe`, one of RECIPES.
        dest: the file to write (atomic_output's temporary path beside the final one).
        options: `converters.ConvertOptions`: calibration (`data.Samples`, for int8), io_dtype
            (float32 only), debug.

    Returns the `Artifact` (format "onnx"): inputs and outputs named as the source's. Raises
    MissingDependency (exit 3) without tf2onnx; BadInput (exit 2) for another io_dtype;
    UnsupportedModel (exit 2) when tf2onnx cannot translate an op (named) or ONNX Runtime
    cannot quantize; CheckFailed (exit 1) when the outputs differ in shape or are not finite.
    """
    from edgekit.converters import refuse_search

    refuse_search(options, "Keras → .onnx")
    _onnx_common.no_io_dtype(options)
    return _onnx_common.finish(source, recipe, dest, options, lambda path: write_onnx(source, path, options.debug),
                               ("tensorflow", "tf2onnx"))


def write_onnx(source, path: Path, debug: bool = False) -> None:
    """Write the Keras/SavedModel SOURCE to PATH as a float ONNX model (tf2onnx, opset OPSET) whose
    inputs and outputs carry the source's names. Raises MissingDependency (exit 3) without
    tf2onnx, UnsupportedModel (exit 2) naming a TensorFlow op tf2onnx cannot translate."""
    try:
        import tf2onnx
    except ImportError as exc:
        raise MissingDependency(f"Keras/TensorFlow → ONNX needs tf2onnx, which is not installed ({exc}).",
                                f"Install it with: {install_line('onnx')}") from exc
    import tensorflow as tf

    names = [s.name for s in source.inputs]
    out_names = list(source.extra["output_names"])
    with tempfile.TemporaryDirectory(prefix="edgekit-savedmodel-") as folder:
        loaded = tf.saved_model.load(source.extra["export_saved_model"](folder))  # keeps the variables alive
        sig = loaded.signatures["serving_default"]
        spec = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in source.inputs]

        @tf.function(input_signature=spec)
        def serve(*args):
            out = sig(**dict(zip(names, args)))
            return tuple(out[n] for n in out_names)

        try:
            with contextlib.redirect_stdout(io.StringIO()), capture_native_stderr(not debug) as log:
                proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)
        except Exception as exc:
            said = first_error_line(f"{exc}\n{log.text}")
            raise UnsupportedModel(f"tf2onnx cannot translate the model from {source.origin}: "
                                   f"{type(exc).__name__}: {said}",
                                   "Run with --debug for tf2onnx's log; --to tflite converts the same model "
                                   "with TensorFlow's own converter.") from exc
        foreign = sorted({n.op_type for n in proto.graph.node if n.domain not in ("", "ai.onnx", "ai.onnx.ml")})
        if foreign:  # tf2onnx keeps an op it cannot translate as a TensorFlow node: no runtime has it
            raise UnsupportedModel(f"tf2onnx has no ONNX translation for the TensorFlow op(s) "
                                   f"{', '.join(foreign)} of the model from {source.origin}.",
                                   "Replace the layers that use them, or use --to tflite (TensorFlow's own "
                                   "converter, with --allow-tf-ops for TensorFlow kernels).")
        _name_outputs(proto, out_names)
        import onnx

        onnx.save(proto, str(path))


def _name_outputs(proto, names: list[str]) -> None:
    """Rename the graph's outputs (tf2onnx calls them Identity:0, ...) to NAMES, in order,
    everywhere the tensor is used."""
    for out, name in zip(proto.graph.output, names):
        old = out.name
        if old == name:
            continue
        for node in proto.graph.node:
            node.output[:] = [name if o == old else o for o in node.output]
            node.input[:] = [name if i == old else i for i in node.input]
        out.name = name


def versions() -> dict:
    """{package: version} of this hop (tensorflow, tf2onnx)."""
    from . import package_versions

    return package_versions("tensorflow", "tf2onnx")

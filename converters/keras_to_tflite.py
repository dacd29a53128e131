"""Keras models and TensorFlow SavedModels → .tflite with tf.lite.TFLiteConverter."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.errors import BadInput, UnsupportedModel
from edgekit.native_log import capture_native_stderr, first_error_line
from edgekit.quantization import QuantRecipe
from edgekit.quantization import tflite as tflite_quant
from edgekit.runtimes.tflite import TFLiteSession

FRAMEWORKS = ("keras", "tf-savedmodel")
RECIPES = ("none", "fp16", "dynamic-int8", "int8", "int16x8")
SUFFIX = ".tflite"


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """A Keras model or SavedModel → DEST, a .tflite from tf.lite.TFLiteConverter (through a
    fixed-shape SavedModel, so input and output names survive).

    Args:
        source: the loaded `SourceModel` (framework one of FRAMEWORKS).
        recipe: the `QuantRecipe`, one of RECIPES (edgekit.build refuses others before calling).
        dest: the file to write; edgekit.build passes `atomic_output`'s temporary path beside
            the final one.
        options: `converters.ConvertOptions`: calibration (`data.Samples`, for int8 and
            int16x8), io_dtype (int8/uint8 for int8, int16 for int16x8; float32 otherwise),
            allow_tf_ops (embed Flex ops), debug (let the converter's log through).

    Returns the `Artifact` (its `to_dict()` is the artifact part of schema `$defs/convert`):
    I/O specs as the runtime reads them, `quantization` with what the file really holds
    (`quantization.tflite.summarize`, `effective`), `extra.flex_ops` and `extra.notes`.
    Raises UnsupportedModel (exit 2) when the converter fails (ops TFLite lacks, a failed
    quantization), or the model keeps state (stateful layers) and the .tflite has no variable to
    keep it in; CheckFailed (exit 1) when the written .tflite cannot be loaded.
    """
    import tensorflow as tf

    calibration = None
    if recipe.needs_calibration:
        samples = options.calibration

        def calibration():
            for i in range(len(samples)):
                yield samples.sample(i)  # keyed by input name, as the signature takes them

    # Through a SavedModel with one fixed-shape signature: the .tflite keeps the input and output
    # names (from_concrete_functions loses them with integer I/O, or keeps weights as variables).
    with tempfile.TemporaryDirectory(prefix="edgekit-savedmodel-") as folder:
        saved = source.extra["export_saved_model"](folder)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        tflite_quant.configure(converter, recipe, calibration, options.io_dtype, options.allow_tf_ops)
        try:
            # The converter prints progress to stdout and MLIR diagnostics to fd 2: keep both out
            # of the terminal (and stdout clean for --json); quote them when they explain a failure.
            with contextlib.redirect_stdout(io.StringIO()), capture_native_stderr(not options.debug) as log:
                if options.extra.get("search"):  # accuracy-aware int8: some layers stay float
                    from edgekit.quantization import search_tflite

                    def make_converter():
                        c = tf.lite.TFLiteConverter.from_saved_model(saved)
                        tflite_quant.configure(c, recipe, calibration, options.io_dtype, options.allow_tf_ops)
                        return c

                    flatbuffer, found = search_tflite.searched(make_converter, options.extra["search"],
                                                               [s.name for s in source.outputs], options.io_dtype)
                else:
                    flatbuffer, found = converter.convert(), {}
        except Exception as exc:
            raise _explain(f"{exc}\n{log.text}", options.allow_tf_ops, source.inputs) from exc
    dest.write_bytes(flatbuffer)
    session = TFLiteSession(dest)  # the artifact's real I/O, as the runtime sees it
    summary = tflite_quant.summarize(dest)
    if source.extra.get("stateful") and "ASSIGN_VARIABLE" not in summary.get("ops_by_type", {}):
        from edgekit.sources.state import dropped_state_reason

        raise UnsupportedModel(dropped_state_reason(source.origin, source.extra["stateful"], "this .tflite"),
                               "Keep the state as TFLite resource variables (a stateful Keras RNN with a fixed batch "
                               "does), or pass the state in and out of the model as inputs and outputs.")
    ok, why = tflite_quant.effective(recipe, summary)
    versions = {"tensorflow": tf.__version__}
    with contextlib.suppress(Exception):
        import keras

        versions["keras"] = keras.__version__
    return Artifact(
        path=dest,
        format="tflite",
        inputs=session.inputs,
        outputs=session.outputs,
        recipe=recipe.name,
        io_dtype=options.io_dtype,
        tools=versions,
        quantization={"recipe": recipe.name, "effective": ok, **({"note": why} if why else {}), **summary, **found},
        extra={
            "flex_ops": sorted(op for op in summary["ops_by_type"] if op.startswith("Flex")),
            "notes": [n for n in [tflite_quant.hybrid_note(recipe, summary), _signatures_note(source)] if n],
        },
    )


def _signatures_note(source) -> str | None:
    """Which SavedModel signature the file holds and which others exist (None for one only)."""
    others = source.extra.get("other_signatures")
    if not others:
        return None
    return (f"Converted and checked the SavedModel's {source.extra['signature']!r} signature; it also has "
            f"{', '.join(repr(o) for o in others)} (not in this file: convert each with --signature NAME).")


def unsupported_ops(msg: str) -> tuple[list[str], list[str]]:
    """(ops that Flex could run, ops nothing can run) named in the converter's diagnostics."""
    flex, neither = set(), set()
    for line in re.findall(r"^(?:Flex|Custom|TF Select) ops: (.+)$", msg, flags=re.M):
        flex.update(op.strip() for op in line.split(",") if op.strip())
    neither.update(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", msg))
    flex.update(re.findall(r"'tf\.(\w+)' op is not supported", msg))
    return sorted(flex - neither), sorted(neither)


def _explain(msg: str, allow_tf_ops: bool, inputs=()) -> Exception:
    flex, neither = unsupported_ops(msg)
    uncalibrated = re.search(r"Max and min for dynamic tensors should be recorded.*?tensor (\S+?)(?::\d+)?\s*$", msg,
                             flags=re.M)
    ints = [s.name for s in inputs if s.dtype.startswith(("int", "uint")) and uncalibrated
            and s.name in uncalibrated.group(1)]
    if ints:  # int16x8 records no range for an integer input (token ids); full int8 takes them
        return UnsupportedModel(
            f"TFLite cannot quantize this model to int16x8: it records no range for the integer input "
            f"{', '.join(ints)} ({first_error_line(msg)}).",
            "Use --quantize int8 (integer inputs such as token ids stay integer), or dynamic-int8 or fp16.")
    if allow_tf_ops and neither:  # with Flex enabled, "neither" is final
        return UnsupportedModel(
            f"The model uses TensorFlow ops that neither TFLite builtins nor Flex can run: {', '.join(neither)}.",
            "Replace those layers (or implement them as a TFLite custom op).",
        )
    if flex or neither:  # without Flex the converter cannot tell which ones Flex would take
        return UnsupportedModel(
            f"The model uses TensorFlow ops that TFLite's builtin op set does not have: "
            f"{', '.join(sorted(set(flex + neither)))}.",
            "Replace those layers with supported ones, or pass --allow-tf-ops to embed TensorFlow "
            "kernels (Flex ops) where TensorFlow has them. Beware: ai-edge-litert and most device "
            "runtimes cannot run Flex ops; only an app linked with the TensorFlow Lite Flex delegate can.",
        )
    if "quantiz" in msg.lower():
        return UnsupportedModel(
            f"TFLite could not quantize the model: {first_error_line(msg)}",
            "Some ops have no int8/int16 kernel. Try --quantize dynamic-int8 or fp16, or replace those ops.",
        )
    return UnsupportedModel(f"The TFLite converter failed: {first_error_line(msg)}",
                            "Run with --debug for the converter's full log.")


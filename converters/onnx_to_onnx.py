"""An ONNX model → `.onnx` with its dynamic dimensions fixed and a recipe applied by ONNX
Runtime's tools (edgekit.quantization.onnx): int8/fp16 for a published float model."""

from __future__ import annotations

from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.quantization import QuantRecipe
from edgekit.quantization import onnx as onnx_quant

from . import _onnx_common

FRAMEWORKS = ("onnx",)
RECIPES = onnx_quant.RECIPES  # what ONNX Runtime's tools apply (edgekit.quantization.onnx)
SUFFIX = ".onnx"


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """The ONNX source → DEST, one self-contained file (external data folded in) whose inputs
    have the resolved static shapes (what a device runtime plans memory for), constants folded
    by ONNX Runtime's basic optimizations (`_fold_constants`), RECIPE applied.

    Args:
        source: the SourceModel from `sources.onnx.load_file`.
        recipe: the `QuantRecipe`, one of RECIPES.
        dest: the file to write (atomic_output's temporary path beside the final one).
        options: `converters.ConvertOptions`: calibration (for int8), io_dtype (float32 only).

    Returns the `Artifact` (format "onnx"). Raises BadInput (exit 2) for another io_dtype;
    UnsupportedModel (exit 2) when ONNX Runtime cannot quantize the graph; CheckFailed (exit 1)
    when the result's outputs differ in shape from the source's or are not finite.
    """
    from edgekit.converters import refuse_search

    refuse_search(options, "ONNX → .onnx")
    _onnx_common.no_io_dtype(options)

    def write_float(path: Path) -> None:
        static_model(source, path)

    return _onnx_common.finish(source, recipe, dest, options, write_float, ())


def static_model(source, path: Path) -> None:
    """Write the ONNX SOURCE to PATH as one file, inputs fixed to the resolved shapes, constants
    folded (`_fold_constants`): the form every ONNX path starts from."""
    import onnx

    model = onnx.load(source.extra["onnx_path"])  # external data read from beside it
    by_name = {s.name: s for s in source.inputs}
    for value in model.graph.input:
        spec = by_name.get(value.name)
        if spec is None:
            continue
        for dim, size in zip(value.type.tensor_type.shape.dim, spec.shape):
            dim.Clear()
            dim.dim_value = int(size)
    fixed = path.with_name(path.stem + ".fixed.onnx")
    onnx.save(model, str(fixed))
    _fold_constants(fixed, path)
    fixed.unlink()


def _fold_constants(src: Path, dest: Path) -> None:
    """ONNX Runtime's basic graph optimizations (constant folding, Constant nodes to initializers,
    Conv+BatchNorm fusion, redundant node removal: standard ONNX ops only) from SRC into DEST.
    Exporters such as paddle2onnx store weights as Constant nodes, which ORT's quantizers do not
    treat as weights ("Expected ... to be an initializer") and fp16 conversion misjudges; folded,
    every recipe sees them as initializers. The shapes are static by then, so shape
    computations fold too."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(dest)
    opts.log_severity_level = 3
    ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])

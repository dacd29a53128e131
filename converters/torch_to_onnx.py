"""PyTorch (nn.Module, .pt2 ExportedProgram) → `.onnx` with torch.onnx.export (the dynamo-based
exporter: torch.export, then onnxscript's translation), recipes by ONNX Runtime's tools
(edgekit.quantization.onnx)."""

from __future__ import annotations

from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.errors import UnsupportedModel
from edgekit.native_log import capture_native_stderr
from edgekit.quantization import QuantRecipe
from edgekit.quantization import onnx as onnx_quant

from . import _onnx_common, _torch_common as common

FRAMEWORKS = ("torch", "torch-exported")
RECIPES = onnx_quant.RECIPES  # what ONNX Runtime's tools apply (edgekit.quantization.onnx)
SUFFIX = ".onnx"
OPSET = 18  # torch.onnx's dynamo exporter's default opset in torch 2.13


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """A PyTorch model → DEST, an ONNX model (opset OPSET) with RECIPE applied by ONNX Runtime.

    Args:
        source: the loaded `SourceModel` (framework one of FRAMEWORKS).
        recipe: the `QuantRecipe`, one of RECIPES.
        dest: the file to write (atomic_output's temporary path beside the final one).
        options: `converters.ConvertOptions`: calibration (`data.Samples`, for int8), io_dtype
            (float32 only), debug.

    Returns the `Artifact` (format "onnx"): I/O named as the source's inputs and outputs,
    `quantization` with the file's ops and weight types (`quantization.onnx.summarize`),
    `extra.opset`. Raises BadInput (exit 2) for another io_dtype; UnsupportedModel (exit 2) when
    torch.export or the ONNX translation fails (naming the operator) or ONNX Runtime cannot
    quantize; CheckFailed (exit 1) when the file's outputs differ in shape or are not finite.
    """
    from edgekit.converters import refuse_search

    refuse_search(options, "PyTorch → .onnx")
    _onnx_common.no_io_dtype(options)
    ep = common.export(source)

    def write_float(path: Path) -> None:
        import torch

        with capture_native_stderr(not options.debug), common.quiet():
            try:
                program = torch.onnx.export(ep, tuple(source.extra["example_inputs"]), dynamo=True,
                                            input_names=list(source.extra["input_names"]),
                                            output_names=list(source.extra["output_names"]),
                                            opset_version=OPSET, optimize=True, verbose=False)
                program.save(str(path), external_data=False)
            except Exception as exc:
                raise _explain(exc, source.origin) from exc

    return _onnx_common.finish(source, recipe, dest, options, write_float, ("torch", "onnxscript"))


def _explain(exc: Exception, origin: str) -> UnsupportedModel:
    """torch.onnx's failure → UnsupportedModel (exit 2) naming the operator it found no ONNX
    function for (its report: "No ONNX function found for <OpOverload(op='prims.bessel_j0', ...")."""
    import re

    text = str(exc)
    op = re.search(r"No ONNX function found for <OpOverload\(op='([^']+)'", text) or \
        re.search(r"target=torch\.ops\.([\w.]+?)(?:\.default)?\]", text)
    if op:
        return UnsupportedModel(f"torch.onnx has no ONNX translation for the operator {op.group(1)} in the model "
                                f"from {origin}.",
                                "Replace that operation in forward(), or register a translation for it "
                                "(torch.onnx.export(..., custom_translation_table=...)); --to executorch or "
                                "--to tflite may take the model as it is.")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return UnsupportedModel(f"torch.onnx cannot translate the model from {origin}: {type(exc).__name__}: "
                            f"{lines[0][:400] if lines else ''}",
                            "Run with --debug for the exporter's report.")

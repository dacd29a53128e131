"""What the two `--to onnx` converters share: the recipe applied to the exported float file, the
load-and-run check, and the Artifact with what the file holds."""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.errors import BadInput


def no_io_dtype(options) -> None:
    """BadInput (exit 2) unless options.io_dtype is float32: ONNX Runtime's QDQ models keep float
    I/O (QuantizeLinear/DequantizeLinear at the boundary)."""
    if options.io_dtype != "float32":
        raise BadInput(f"--io-dtype {options.io_dtype} is not available for --to onnx (a QDQ model keeps float "
                       "inputs and outputs; its Quantize/DequantizeLinear nodes sit at the boundary).",
                       "Leave --io-dtype at float32 for ONNX.")


def finish(source, recipe, dest: Path, options, write_float, tools: tuple[str, ...]) -> Artifact:
    """Export with WRITE_FLOAT(path) into a temporary file, apply RECIPE into DEST, run it once
    (shapes and finiteness against the source: CheckFailed, exit 1) and describe it.

    Args:
        source: the SourceModel; recipe: the QuantRecipe; dest: the file to write.
        options: ConvertOptions (calibration for int8).
        write_float: writes the float .onnx to the path it is given (raises UnsupportedModel).
        tools: the packages whose versions the manifest records.
    """
    from edgekit.quantization import onnx as onnx_quant
    from edgekit.runtimes.onnx import OnnxSession

    from . import _torch_common as common

    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp:
        float_model = Path(tmp) / "float.onnx"
        write_float(float_model)
        onnx_quant.apply(recipe.name, float_model, dest, options.calibration)
    session = OnnxSession(dest)
    common.check_outputs(session, source, ".onnx")
    summary = onnx_quant.summarize(dest)
    ok, why = onnx_quant.effective(recipe.name, summary)
    from . import package_versions

    versions = package_versions("onnx", "onnxruntime", *tools)
    quant = {"recipe": recipe.name, "effective": ok, **({"note": why} if why else {}), **summary}
    if recipe.name == "int8":
        quant["quantizer"] = "onnxruntime quantize_static (QDQ, S8S8, per-channel, MinMax)"
    return Artifact(path=dest, format="onnx", inputs=session.inputs, outputs=session.outputs, recipe=recipe.name,
                    io_dtype="float32", tools=versions, quantization=quant,
                    extra={"opset": _opset(dest)})


def _opset(path: Path) -> int | None:
    """The default-domain opset the file imports."""
    import onnx

    for o in onnx.load(str(path), load_external_data=False).opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return None

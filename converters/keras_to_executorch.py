"""Keras models and TensorFlow SavedModels → ExecuTorch `.pte`, through ONNX: tf2onnx
(converters/keras_to_onnx.py), onnx2torch (converters/_onnx_torch.py), then the PyTorch path
(converters/torch_to_executorch.py: torch.export, PT2E, XNNPACK). No maintained converter goes
from TensorFlow to PyTorch directly; ONNX is the common ground. Checked against the Keras model."""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.quantization import QuantRecipe

from . import _onnx_torch, keras_to_onnx, torch_to_executorch

FRAMEWORKS = ("keras", "tf-savedmodel")
RECIPES = torch_to_executorch.RECIPES
SUFFIX = torch_to_executorch.SUFFIX


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """The Keras SOURCE → DEST, a .pte as `torch_to_executorch.convert` writes it (same recipes,
    options, result and errors; `converted_via` "tf2onnx+onnx2torch"), parity against the Keras
    model. Also raises MissingDependency (exit 3) without tf2onnx or onnx2torch and
    UnsupportedModel (exit 2) naming an op either hop cannot translate."""
    from edgekit.converters import refuse_search

    refuse_search(options, "Keras → .pte")
    from edgekit.sources import SourceModel

    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp:
        path = Path(tmp) / "keras.onnx"
        keras_to_onnx.write_onnx(source, path, options.debug)
        as_onnx = SourceModel(framework="onnx", origin=source.origin, inputs=source.inputs, native=path,
                              reference=source.reference, sha256=source.sha256, size_bytes=source.size_bytes,
                              extra={"input_names": [s.name for s in source.inputs],
                                     "output_names": list(source.extra["output_names"]), "onnx_path": str(path)})
        torch_source = _onnx_torch.torch_source(as_onnx)
    artifact = torch_to_executorch.convert(torch_source, recipe, dest, options)
    artifact.extra["converted_via"] = "tf2onnx+onnx2torch"
    artifact.tools = {**artifact.tools, **_onnx_torch.versions(), **keras_to_onnx.versions()}
    return artifact

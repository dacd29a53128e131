"""An ONNX model → `.tflite` through onnx2torch (converters/_onnx_torch.py) and the PyTorch path
(converters/torch_to_tflite.py), checked against the ONNX file run by ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.quantization import QuantRecipe

from . import _onnx_torch, torch_to_tflite as torch_path

FRAMEWORKS = ("onnx",)
RECIPES = torch_path.RECIPES
SUFFIX = torch_path.SUFFIX


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """The ONNX SOURCE → DEST as `torch_to_tflite.convert` writes it (same recipes, options, result and
    errors), from onnx2torch's module of the static, constant-folded graph. Also raises
    MissingDependency (exit 3) without onnx2torch and UnsupportedModel (exit 2) naming an ONNX op
    it cannot convert. The artifact's `converted_via` says which hop was taken. An accuracy-aware
    search runs as PyTorch → .tflite's does, on the float .tflite's op names (no onnx2torch name
    is involved), against the ONNX Runtime reference."""
    return _onnx_torch.via_torch(torch_path, source, recipe, dest, options)

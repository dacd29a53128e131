"""Converters: SourceModel + recipe → Artifact. One module per path, registered in this table.

| --to         | from frameworks               | module              | recipes                                  |
|--------------|-------------------------------|---------------------|------------------------------------------|
| tflite       | keras, tf-savedmodel          | keras_to_tflite     | none fp16 dynamic-int8 int8 int16x8      |
| tflite       | torch, torch-exported         | torch_to_tflite     | none fp16 dynamic-int8 int8              |
| executorch   | torch, torch-exported         | torch_to_executorch | none fp16 dynamic-int8 int8              |
| torchscript  | torch, torchscript            | torch_to_torchscript| none                                     |
| edgetpu      | keras, tf-savedmodel, torch   | edgetpu             | int8 (then edgetpu_compiler when on PATH)|

Adding a converter is one module with `FRAMEWORKS`, `RECIPES`, `SUFFIX` and
`convert(source, recipe, dest, options) -> Artifact`, plus one line below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from edgekit.errors import BadInput

# (target format, framework) → module name in this package
TABLE = {
    ("tflite", "keras"): "keras_to_tflite",
    ("tflite", "tf-savedmodel"): "keras_to_tflite",
    ("tflite", "torch"): "torch_to_tflite",
    ("tflite", "torch-exported"): "torch_to_tflite",
    ("executorch", "torch"): "torch_to_executorch",
    ("executorch", "torch-exported"): "torch_to_executorch",
    ("torchscript", "torch"): "torch_to_torchscript",
    ("torchscript", "torchscript"): "torch_to_torchscript",
    **{("edgetpu", fw): "edgetpu" for fw in ("keras", "tf-savedmodel", "torch", "torch-exported")},
}

TARGET_FORMATS = ("tflite", "executorch", "torchscript", "edgetpu")


@dataclass
class ConvertOptions:
    """Everything a converter may need beyond the model and the recipe."""

    calibration: object = None  # edgekit.data.Samples
    io_dtype: str = "float32"
    allow_tf_ops: bool = False
    channels_last_io: bool = False
    debug: bool = False  # let native logs through
    extra: dict = field(default_factory=dict)


def converter_for(to: str, framework: str):
    name = TABLE.get((to, framework))
    if name is None:
        sources = sorted({fw for (t, fw) in TABLE if t == to})
        raise BadInput(
            f"edgekit cannot convert a {framework} model to {to}.",
            f"--to {to} takes models from: {', '.join(sources) or 'nothing yet'}."
            if sources else f"Known targets: {', '.join(TARGET_FORMATS)}.",
        )
    return importlib.import_module(f"{__name__}.{name}")

"""Quantization recipes: what the user asked for, independent of backend.

Each converter says which recipes it supports and applies them itself (TFLiteConverter flags,
PT2E, litert-torch); asking for one it cannot do is an error, never a silent float model.

| recipe        | weights | activations | needs calibration | parity preset |
|---------------|---------|-------------|-------------------|---------------|
| none          | fp32    | fp32        | no                | fp32          |
| fp16          | fp16    | fp32        | no                | fp16          |
| dynamic-int8  | int8    | fp32 (int8 on the fly) | no     | dynamic-int8  |
| int8          | int8    | int8        | yes               | int8          |
| int16x8       | int8    | int16       | yes               | int16x8       |
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.errors import BadInput


@dataclass(frozen=True)
class QuantRecipe:
    name: str
    weights: str
    activations: str
    needs_calibration: bool
    io_dtypes: tuple  # I/O types this recipe can give the artifact

    @property
    def precision(self) -> str:
        """Key of the parity preset that judges an artifact built with this recipe."""
        return {"none": "fp32"}.get(self.name, self.name)


RECIPES = {
    r.name: r
    for r in (
        QuantRecipe("none", "fp32", "fp32", False, ("float32",)),
        QuantRecipe("fp16", "fp16", "fp32", False, ("float32",)),
        QuantRecipe("dynamic-int8", "int8", "fp32", False, ("float32",)),
        QuantRecipe("int8", "int8", "int8", True, ("float32", "int8", "uint8")),
        QuantRecipe("int16x8", "int8", "int16", True, ("float32", "int16")),
    )
}


def get_recipe(name: str | None, io_dtype: str = "float32") -> QuantRecipe:
    recipe = RECIPES.get(name or "none")
    if recipe is None:
        raise BadInput(f"Unknown quantization {name!r}.", "Choose one of: " + ", ".join(RECIPES))
    if io_dtype not in recipe.io_dtypes:
        raise BadInput(
            f"--io-dtype {io_dtype} does not fit --quantize {recipe.name}.",
            f"With {recipe.name} the model's inputs and outputs can be: {', '.join(recipe.io_dtypes)}"
            + ("; integer I/O needs --quantize int8." if io_dtype in ("int8", "uint8") else "."),
        )
    return recipe

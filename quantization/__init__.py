"""Quantization recipes: what the user asked for, independent of backend.

`RECIPES` below is the one list of recipes: `--quantize` choices, `--io-dtype` choices, the
`quantize:` key of edgekit.yaml, error hints and the README's recipe table all derive from it
(tests/test_registries.py fails when the README disagrees). Each recipe names the parity preset
that judges it (`QuantRecipe.precision`, a key of `edgekit.parity.PRESETS`).

Each converter says which recipes it supports (its `RECIPES`) and applies them itself
(TFLiteConverter flags, PT2E, litert-torch); asking for one it cannot do is an error, never a
silent float model. Adding a recipe is one `QuantRecipe(...)` line below plus its preset in
edgekit/parity.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.errors import BadInput


@dataclass(frozen=True)
class QuantRecipe:
    """One quantization recipe.

    Args:
        name: the `--quantize` value ("none", "fp16", "dynamic-int8", "int8", "int16x8").
        weights: the stored weight type ("fp32", "fp16", "int8").
        activations: the type activations are computed in ("fp32", "int8", "int16").
        needs_calibration: True when activation ranges come from calibration samples.
        io_dtypes: the types this recipe can give the artifact's inputs/outputs (`--io-dtype`),
            the first one is the default.
    """

    name: str
    weights: str
    activations: str
    needs_calibration: bool
    io_dtypes: tuple

    @property
    def precision(self) -> str:
        """Key of the parity preset (edgekit.parity.PRESETS) that judges an artifact built with
        this recipe: the recipe's name, except "none" which is judged as "fp32"."""
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


def names() -> tuple[str, ...]:
    """The recipe names in registry order (the `--quantize` choices); no arguments."""
    return tuple(RECIPES)


def io_dtypes() -> tuple[str, ...]:
    """Every I/O type some recipe can give (the `--io-dtype` choices), in first-seen order."""
    return tuple(dict.fromkeys(d for r in RECIPES.values() for d in r.io_dtypes))


def precisions() -> tuple[str, ...]:
    """The parity preset keys the recipes are judged by (the `validate --preset` choices), in
    registry order. They equal edgekit.parity.PRESETS' keys (tests/test_registries.py checks);
    they are read from here because importing parity (numpy) would slow `edgekit --help`."""
    return tuple(dict.fromkeys(r.precision for r in RECIPES.values()))


def get_recipe(name: str | None, io_dtype: str = "float32") -> QuantRecipe:
    """The recipe called NAME (None means "none"), checked against IO_DTYPE.

    Raises BadInput (exit 2) for an unknown name or an I/O type the recipe cannot give.
    """
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

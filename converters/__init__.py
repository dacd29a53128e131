"""Converters: SourceModel + recipe → Artifact. One module per path, registered in `CONVERTERS`.

A converter module declares what it does — `FRAMEWORKS` (the source frameworks it takes),
`RECIPES` (the quantization recipes it applies), `SUFFIX` (the artifact's file ending) — and
implements `convert(source, recipe, dest, options) -> Artifact`. Adding one is that module plus
one `Converter(<--to format>, <module>)` line below. The `--to` choices, edgekit.yaml's `to:`
check, the default artifact name, the error hints and the README's `--to` list all derive from
this table (tests/test_registries.py checks the README). `edgekit convert --help` reads only
the formats, so the converter modules are imported when a conversion needs them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from edgekit.errors import BadInput


@dataclass(frozen=True)
class Converter:
    """One conversion path.

    Args:
        to: the `--to` format it writes ("tflite", "executorch", ...).
        module: a module of this package ("keras_to_tflite") or a full dotted module path
            (a converter that lives elsewhere, e.g. a test's).
    """

    to: str
    module: str

    def load(self):
        """Import and return the converter module (it may import numpy; frameworks load later)."""
        name = self.module if "." in self.module else f"{__name__}.{self.module}"
        return importlib.import_module(name)


CONVERTERS: list[Converter] = [
    Converter("tflite", "keras_to_tflite"),
    Converter("tflite", "torch_to_tflite"),
    Converter("executorch", "torch_to_executorch"),
    Converter("torchscript", "torch_to_torchscript"),
    Converter("edgetpu", "edgetpu"),
    Converter("onnx", "torch_to_onnx"),
    Converter("onnx", "keras_to_onnx"),
    Converter("onnx", "onnx_to_onnx"),
    Converter("executorch", "onnx_to_executorch"),
    Converter("tflite", "onnx_to_tflite"),
    Converter("executorch", "keras_to_executorch"),
]


def formats() -> tuple[str, ...]:
    """The `--to` formats in registry order, without importing any converter."""
    return tuple(dict.fromkeys(c.to for c in CONVERTERS))


def table() -> dict[tuple[str, str], Converter]:
    """(format, framework) → the converter for it; the first registered wins. Imports the
    converter modules to read their FRAMEWORKS."""
    out: dict[tuple[str, str], Converter] = {}
    for c in CONVERTERS:
        for fw in c.load().FRAMEWORKS:
            out.setdefault((c.to, fw), c)
    return out


def frameworks_for(to: str) -> list[str]:
    """The source frameworks some converter takes to format TO, sorted."""
    return sorted({fw for (t, fw) in table() if t == to})


def formats_for(framework: str) -> list[str]:
    """The formats a FRAMEWORK model can be converted to, in registry order."""
    return [t for t in formats() if (t, framework) in table()]


def suffix_for(to: str) -> str:
    """The file ending of a TO artifact (its first converter's SUFFIX).

    Raises BadInput (exit 2) for an unknown format.
    """
    for c in CONVERTERS:
        if c.to == to:
            return c.load().SUFFIX
    raise BadInput(f"Unknown target format {to!r}.", "Choose --to " + " | ".join(formats()))


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
    """The converter module that turns a FRAMEWORK model into a TO artifact.

    Raises BadInput (exit 2) when no registered converter does, naming what TO takes.
    """
    found = table().get((to, framework))
    if found is None:
        sources = frameworks_for(to)
        raise BadInput(
            f"edgekit cannot convert a {framework} model to {to}.",
            f"--to {to} takes models from: {', '.join(sources)}."
            if sources else f"Known targets: {', '.join(formats())}.",
        )
    return found.load()


def refuse_search(options, path: str) -> None:
    """Raise BadInput (exit 2) when OPTIONS carry an accuracy-aware search request
    (`extra["search"]`, from --max-accuracy-drop / --min-top1-agreement / --min-psnr) and PATH
    (e.g. "PyTorch → .tflite") has no search: judging full int8 against the bar without searching
    would report a search that never ran. WHY: one sentence on what blocks it there."""
    if options.extra.get("search"):
        bar = options.extra["search"].get("bar")
        raise BadInput(f"The accuracy-aware int8 search ({bar}) is not available for {path}: "
                       + SEARCH_BLOCKED.get(path, "this converter has no way to keep chosen layers float yet."),
                       "Drop the accuracy bar (plain --quantize int8 is judged by the int8 preset), or search on a "
                       "path that has it: a PyTorch model → --to executorch or tflite, a Keras or ONNX model → --to tflite.")


# what stops the search on a path, measured (issue 11)
ONNX_SEARCH = "ONNX Runtime's quantize_static can leave nodes float (nodes_to_exclude), but the search does not drive it yet."
VIA_ONNX_SEARCH = ("the search has not been checked through onnx2torch's modules (their layer names and inputs), "
                   "so it stays off there rather than answer unchecked.")
SEARCH_BLOCKED = {
    "PyTorch → .onnx": ONNX_SEARCH, "Keras → .onnx": ONNX_SEARCH, "ONNX → .onnx": ONNX_SEARCH,
    "Keras → .pte": VIA_ONNX_SEARCH, "ONNX → .pte": VIA_ONNX_SEARCH,
}


def package_versions(*names: str) -> dict:
    """{distribution: version} of NAMES that are installed (the manifest's `tools`)."""
    import importlib.metadata as md

    out = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def __getattr__(name: str):
    # Former constants, now derived so they never drift from CONVERTERS.
    if name == "TARGET_FORMATS":
        return formats()
    if name == "TABLE":
        return {k: c.module for k, c in table().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""edgekit: quantize, convert, verify and profile models for edge devices.

The Python API mirrors the CLI and returns the same result dicts that `--json` prints:

    edgekit.convert(model, to="tflite", quantize="int8", calibration=..., data=...)
    edgekit.validate(reference, candidate, data=..., per_layer=False)
    edgekit.profile(artifact, target="host", runs=50)
    edgekit.run("edgekit.yaml")

Frameworks are imported on first use, never at `import edgekit`.
"""

from ._version import __version__

__all__ = ["__version__", "convert", "validate", "profile", "run", "SCHEMA_PATH"]

_API = {
    "convert": ("build", "convert"),
    "validate": ("validation", "validate"),
    "profile": ("profiling", "profile"),
    "run": ("pipeline", "run"),
}


def __getattr__(name):
    if name in _API:
        import importlib

        module, attr = _API[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    if name == "SCHEMA_PATH":
        from pathlib import Path

        return Path(__file__).parent / "schemas" / "report.schema.json"
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")

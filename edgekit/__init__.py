"""edgekit: quantize, convert, verify and profile models for edge devices.

The Python API mirrors the CLI and returns the same result dicts that `--json` prints:
`edgekit.convert(...)`. Frameworks are imported on first use, never at `import edgekit`.
"""

from ._version import __version__

__all__ = ["__version__", "convert"]


def __getattr__(name):
    if name == "convert":
        from .build import convert

        return convert
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")

"""`edgekit inspect MODEL --edgetpu`: will a .tflite run on a Coral Edge TPU (offline)."""

from __future__ import annotations

import click

from .options import json_option
from .output import show


@click.command("inspect")
@click.argument("model")
@click.option("--edgetpu", is_flag=True, help="Predict what a Coral Edge TPU compiler will map (offline, any OS).")
@click.option("--require-full", is_flag=True, help="Exit 1 unless every op is predicted on the Edge TPU.")
@json_option()
def inspect_command(model, edgetpu, require_full, as_json):
    """Inspect a .tflite: with --edgetpu, whether and how much of it will run on a Coral Edge TPU.

    \b
    Reads the flatbuffer only (no compiler, no device): 8-bit tensors, static shapes, at most 3
    innermost dimensions above 1, Edge TPU ops within their documented limits, and where the
    compiler will cut the graph (everything after the first unsupported op runs on the CPU).
    """
    if not edgetpu:
        raise click.UsageError("Say what to inspect: --edgetpu.")
    from edgekit.edgetpu_compat import analyze
    from edgekit.errors import CheckFailed
    from edgekit.integrity import check_structure
    from edgekit.limits import regular_file
    from edgekit.report import print_inspect_edgetpu

    regular_file(model, "The model", hint="Pass the .tflite to inspect.")  # not a FIFO, device or folder
    with open(model, "rb") as f:
        if f.read(8)[4:8] == b"TFL3":  # a flatbuffer: check it is whole (analyze names other files)
            check_structure(model)  # a truncated .tflite is refused here, as profile and validate refuse it

    result = show(as_json, lambda con: {"schema_version": 1, "kind": "inspect-edgetpu", **analyze(model)},
                  lambda con, result: print_inspect_edgetpu(con, result, model))
    if require_full and not result["compatible"]:
        raise CheckFailed("Not every op is predicted to run on the Edge TPU (see above).",
                          "Replace the unsupported ops, quantize fully to int8, fix the shapes.")

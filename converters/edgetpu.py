"""Keras / TensorFlow / PyTorch / ONNX → full-int8 `.tflite` → Coral Edge TPU (`*_edgetpu.tflite`).

1. A full-integer int8 `.tflite` through the framework's TFLite converter (keras_to_tflite,
   torch_to_tflite, or onnx_to_tflite: onnx2torch then torch_to_tflite; recipe int8,
   calibrated). This file is the artifact edgekit checks for parity (it runs on any CPU) and
   the input of the Edge TPU compiler.
2. The offline Edge TPU prediction (edgekit.edgetpu_compat) on it, always.
3. `edgetpu_compiler -s -o DIR` when it is on PATH (x86-64 Linux only): writes
   `<name>_edgetpu.tflite` beside the artifact and its report, parsed into the manifest
   (`extra.edgetpu.compiler`). When it is missing, edgekit says so and keeps the int8 file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.quantization import QuantRecipe

FRAMEWORKS = ("keras", "tf-savedmodel", "torch", "torch-exported", "onnx")
RECIPES = ("int8",)
SUFFIX = ".tflite"
COMPILER = "edgetpu_compiler"
INSTALL_HINT = ("Install the Edge TPU compiler (x86-64 Debian/Ubuntu): add Coral's apt repository "
                "(https://coral.ai/docs/edgetpu/compiler) and `apt-get install edgetpu-compiler`, then run "
                "`edgetpu_compiler -s MODEL.tflite` on the int8 file.")


def final_path(tmp_dest: Path) -> Path:
    """The name edgekit.artifacts.atomic_output will give tmp_dest (`.NAME.XXXXXXXX.partial.tflite`)."""
    n = tmp_dest.name
    marker = ".partial" + tmp_dest.suffix
    if n.startswith(".") and n.endswith(marker):
        return tmp_dest.with_name(n[1:-len(marker)].rsplit(".", 1)[0])
    return tmp_dest


def edgetpu_name(path: Path) -> Path:
    """Where the compiled model goes: model.tflite → model_edgetpu.tflite (the compiler's naming)."""
    return path.with_name(path.stem + "_edgetpu.tflite")


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """A Keras/TF/PyTorch/ONNX model → DEST, the full-int8 .tflite (keras_to_tflite,
    torch_to_tflite or onnx_to_tflite, arguments as theirs; recipe int8, calibrated), then the
    offline Edge TPU prediction and, when `edgetpu_compiler` is on PATH, the compiled
    `<name>_edgetpu.tflite` beside the final artifact.

    Returns the int8 `Artifact` (schema `$defs/convert`) with `extra.edgetpu` {prediction,
    compiler (the parsed report, or None without the compiler), compiled_model} and notes.
    Raises what the underlying converter raises; CheckFailed (exit 1) when the compiler fails.
    """
    from edgekit import edgetpu_compat

    from . import keras_to_tflite, onnx_to_tflite, torch_to_tflite

    base = next(m for m in (keras_to_tflite, torch_to_tflite, onnx_to_tflite) if source.framework in m.FRAMEWORKS)
    artifact = base.convert(source, recipe, dest, options)
    prediction = edgetpu_compat.analyze(dest)
    prediction["model"] = str(final_path(dest))
    notes = artifact.extra.setdefault("notes", [])
    info = {"prediction": {k: v for k, v in prediction.items() if k != "ops"}}
    target = edgetpu_name(final_path(dest))
    exe = shutil.which(COMPILER)
    if exe:
        info["compiler"] = compile_model(exe, dest, target)
        artifact.tools["edgetpu_compiler"] = info["compiler"].get("compiler_version")
        if info["compiler"].get("compiled"):
            info["compiled_model"] = str(target)
    else:
        info["compiler"] = None
        notes.append(f"{COMPILER} is not on PATH: kept the full-int8 {final_path(dest).name} (runs on CPU); "
                     f"predicted on the Edge TPU: {prediction['predicted_tpu_ops']}/{prediction['total_ops']} ops"
                     + (f", cut at {prediction['cut']['op']} (op {prediction['cut']['index']})" if prediction["cut"] else "")
                     + f". {INSTALL_HINT}")
    for issue in prediction["model_issues"]:
        notes.append(f"Edge TPU: {issue}")
    artifact.extra["edgetpu"] = info
    return artifact


def compile_model(exe: str, model: Path, target: Path, timeout: float = 600) -> dict:
    """Run the real compiler on MODEL; its report (stdout + the .log) parsed. The compiled file is
    renamed to TARGET only when whole."""
    from edgekit.errors import CheckFailed
    from edgekit.tool_output import parse_edgetpu_compiler

    with tempfile.TemporaryDirectory(prefix="edgekit-edgetpu-", dir=target.parent) as out:
        src = Path(out) / (target.stem[: -len("_edgetpu")] + ".tflite")
        shutil.copyfile(model, src)
        p = subprocess.run([exe, "-s", "-o", out, str(src)], capture_output=True, text=True, timeout=timeout,
                           cwd=out)
        text = p.stdout + "\n" + p.stderr
        log = Path(out) / (src.stem + "_edgetpu.log")
        if log.is_file():
            text += "\n" + log.read_text(errors="replace")
        report = parse_edgetpu_compiler(text)
        report["exit_code"] = p.returncode
        produced = Path(out) / (src.stem + "_edgetpu.tflite")
        if p.returncode != 0 or not produced.is_file():
            report["compiled"] = False
            raise CheckFailed(f"{COMPILER} failed (exit {p.returncode}): "
                              f"{(p.stderr or p.stdout).strip().splitlines()[-1:] or ['no output']}",
                              "See `edgekit inspect MODEL --edgetpu` for the ops it cannot take.")
        os.replace(produced, target)
    return report

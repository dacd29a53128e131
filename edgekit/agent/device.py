"""What the agent runs on: the device's description and which runtimes it has."""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import sys

from ..native_log import capture_native_stderr

RUNTIME_PACKAGES = ("numpy", "ai-edge-litert", "tflite-runtime", "executorch", "torch", "onnxruntime")
# Modules that provide each format's runtime, in order of preference.
RUNTIME_MODULES = {
    "tflite": ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"),
    "executorch": ("executorch.runtime",),
    "torchscript": ("torch",),
    "onnx": ("onnxruntime",),
}
# What to pip-install on a board that lacks the runtime for a format (aarch64/x86_64 wheels exist).
INSTALL = {"numpy": "numpy", "tflite": "ai-edge-litert", "edgetpu": "ai-edge-litert", "executorch": "executorch",
           "torchscript": "torch", "onnx": "onnxruntime"}


def install_hint(fmt: str) -> str:
    """The pip line that installs FORMAT's runtime ("tflite", "executorch", "torchscript", "onnx",
    "numpy" ...) for this Python (sys.executable); a shell line, nothing is run.

    torch is pinned to the version edgekit[torch] pins (2.13.0, which executorch 1.5.1's native
    module links against) and taken from PyTorch's CPU-only index with --index-url, not
    --extra-index-url: torch 2.13's PyPI wheels pull CUDA packages (GBs) on x86_64 and aarch64,
    and PyTorch's aarch64 CPU wheels carry no +cpu suffix, so with both indexes pip could pick the
    PyPI one. executorch declares no torch requirement, so it comes from PyPI afterwards (pinned
    to the version that exports the host's .pte files) without touching that torch."""
    torch, executorch = "2.13.0", "1.5.1"  # edgekit[torch] in pyproject.toml
    pip = f"{sys.executable} -m pip install"
    cpu_torch = f"{pip} torch=={torch} --index-url https://download.pytorch.org/whl/cpu"
    if fmt == "torchscript":
        return cpu_torch
    if fmt == "executorch":
        return f"{cpu_torch} && {pip} executorch=={executorch}"
    return f"{pip} {INSTALL.get(fmt, fmt)}"


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        return None


def package_version(name: str) -> str | None:
    """The installed version of distribution NAME, or None."""
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


# CPU features that decide whether int8 kernels beat float ones: XNNPACK's int8 GEMM/conv kernels
# use VNNI (x86: AVX512-VNNI, AVX-VNNI, AMX-INT8) and dot-product / i8mm (Arm: asimddp, i8mm, SVE);
# without them int8 can be slower than fp32 (measured here: 1.3-1.5x slower on AVX2 without VNNI).
INT8_FEATURES = ("avx2", "avx512_vnni", "avx512vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sve", "sve2")


def int8_features(cpuinfo: str) -> list[str]:
    """The INT8_FEATURES present in CPUINFO (the text of /proc/cpuinfo: x86 "flags" or Arm
    "Features" lines), sorted; [] when none or unknown."""
    found = set()
    for m in re.finditer(r"^(?:flags|Features)\s*:\s*(.+)$", cpuinfo, re.M):
        found.update(f for f in m.group(1).split() if f in INT8_FEATURES)
    return sorted(found)


def device_info() -> dict:
    """hostname, machine, cpu, board (device-tree model), cores, usable_cores, os, kernel,
    python, runtimes {package: version}, int8_features (`int8_features`), memory_mb: the
    `device` entry of every result."""
    cpu = None
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.M)
        if m:
            cpu = m.group(1).strip()
            break
    os_name = None
    m = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', _read("/etc/os-release") or "", re.M)
    if m:
        os_name = m.group(1)
    board = _read("/proc/device-tree/model") or _read("/sys/firmware/devicetree/base/model")
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    info = {
        "hostname": platform.node(),
        "machine": platform.machine(),
        "cpu": cpu or platform.processor() or None,
        "board": board,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "os": os_name or platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "runtimes": {p: v for p in RUNTIME_PACKAGES if (v := package_version(p))},
        "int8_features": int8_features(text),
    }
    mem = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo") or "", re.M)
    if mem:
        info["memory_mb"] = round(int(mem.group(1)) / 1024)
    return info


def preload_runtime(fmt: str) -> None:
    """Import FORMAT's runtime ahead of the timed load, so init_ms is the model's load time, not
    Python's import time (reported apart as import_ms). Silent when missing: the load says so."""
    for mod in RUNTIME_MODULES.get(fmt, ()):
        try:
            with capture_native_stderr():
                importlib.import_module(mod)
            return
        except Exception:
            continue


def probe_formats() -> dict:
    """{format: {available, module, errors, install}}: which runtimes this Python can use.

    torch-based runtimes are looked up, not imported (seconds natively, a minute emulated);
    tflite-runtime built for numpy 1 counts as missing under numpy 2 (it fails on first use)."""
    out = {}
    for fmt, mods in RUNTIME_MODULES.items():
        ok, errs = None, []
        for mod in mods:
            try:
                if fmt != "tflite":
                    if importlib.util.find_spec(mod) is None:
                        raise ImportError(f"No module named {mod!r}")
                    ok = mod.split(".")[0]
                    break
                with capture_native_stderr():
                    importlib.import_module(mod)
                if mod.startswith("tflite_runtime"):
                    import numpy

                    if int(numpy.__version__.split(".")[0]) >= 2:
                        errs.append(f"{mod}: built for numpy<2, numpy {numpy.__version__} installed")
                        continue
                ok = mod.split(".")[0]
                break
            except Exception as exc:
                errs.append(f"{mod}: {exc.__class__.__name__}: {exc}")
        out[fmt] = {"available": ok is not None, "module": ok, "errors": errs,
                    "install": None if ok else install_hint(fmt)}
    return out

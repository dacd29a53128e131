"""Issue 6 figures: a cached second `edgekit run` of the bundled example over the first run, and
report generation time for a 6-build matrix.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EDGEKIT = str(Path(sys.executable).with_name("edgekit"))


def timed(cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ratios, firsts, seconds = [], [], []
    for _ in range(args.repeats):
        work = Path(tempfile.mkdtemp(prefix="edgekit-bench-run-")) / "proj"
        shutil.copytree(ROOT / "examples" / "digits", work, ignore=shutil.ignore_patterns("edgekit-out"))
        first = timed([EDGEKIT, "run", str(work / "edgekit.yaml")])
        second = timed([EDGEKIT, "run", str(work / "edgekit.yaml")])
        firsts.append(first), seconds.append(second), ratios.append(second / first)
    print(f"cached second run / first run: {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}; "
          f"{statistics.median(seconds):.2f} s vs {statistics.median(firsts):.2f} s)  target ≤ 0.1")

    # a 6-build matrix, then time only the rendering of its report (JSON + Markdown + HTML)
    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-matrix-")) / "proj"
    shutil.copytree(ROOT / "examples" / "digits", work, ignore=shutil.ignore_patterns("edgekit-out"))
    cfg = yaml.safe_load((work / "edgekit.yaml").read_text())
    cfg["builds"] = [{"name": q, "to": "tflite", "quantize": q} for q in ("none", "fp16", "dynamic-int8", "int8", "int16x8")]
    cfg["builds"].append({"name": "int8-io", "to": "tflite", "quantize": "int8", "io_dtype": "int8"})
    (work / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    subprocess.run([EDGEKIT, "run", str(work / "edgekit.yaml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sys.path.insert(0, str(ROOT))
    from edgekit.report_files import load_report, write_all

    report = load_report(work / "edgekit-out" / "report.json")
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        write_all(report, work / "edgekit-out")
        times.append(time.perf_counter() - t0)
    print(f"report generation (json + md + html), {len(report['builds'])}-build matrix: "
          f"median {statistics.median(times) * 1000:.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})")


if __name__ == "__main__":
    main()

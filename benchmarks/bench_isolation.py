"""What running the converter in a child process costs (edgekit.isolation, issue 12).

`edgekit convert` runs the framework work in a child so that a native crash cannot take the CLI
down. This times whole `edgekit convert` commands with isolation (the default) and without
(EDGEKIT_ISOLATE=0), alternating, on the bundled digits example (full int8 with calibration and
parity on 397 held-out digits) and on a float conversion. Target: ≤ 1.1×.

    .venv/bin/python benchmarks/bench_isolation.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import cpu_features, paired, show  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EDGEKIT = str(Path(sys.executable).with_name("edgekit"))
DIGITS = ROOT / "examples" / "digits"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {cpu_features()}")
    with tempfile.TemporaryDirectory() as d:
        cases = {
            "int8 + calibration + parity": ["--quantize", "int8", "--calibration", str(DIGITS / "data" / "calib.npz"),
                                            "--data", str(DIGITS / "data" / "test.npz")],
            "float, parity on 32 random samples": [],
        }
        for label, extra in cases.items():
            cmd = [EDGEKIT, "-q", "convert", str(DIGITS / "models" / "digits.keras"), *extra, "-o", f"{d}/m.tflite"]
            isolated = dict(os.environ, EDGEKIT_ISOLATE="1")
            in_process = dict(os.environ, EDGEKIT_ISOLATE="0")
            r = paired(cmd, cmd, runs=args.runs, env=isolated, env_b=in_process)
            show(f"convert wall time, isolated / in-process ({label})", r, "≤ 1.1")


if __name__ == "__main__":
    main()

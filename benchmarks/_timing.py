"""Whole-process timing shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import subprocess
import time


def wall(cmd: list[str], env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def paired(a: list[str], b: list[str], runs: int = 5, warmup: int = 1, env=None) -> dict:
    """Run A and B alternately; the ratio A/B per pair, and the medians of each."""
    for _ in range(warmup):
        wall(a, env), wall(b, env)
    ta, tb, ratios = [], [], []
    for _ in range(runs):
        x, y = wall(a, env), wall(b, env)
        ta.append(x), tb.append(y), ratios.append(x / y)
    return {
        "a_median_s": statistics.median(ta),
        "b_median_s": statistics.median(tb),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def show(label: str, r: dict, target: str = "") -> None:
    print(f"{label}: {r['ratio_median']:.3f}× (min {r['ratio_min']:.3f}, max {r['ratio_max']:.3f}; "
          f"{r['a_median_s'] * 1000:.0f} ms vs {r['b_median_s'] * 1000:.0f} ms){'  target ' + target if target else ''}")

"""Whole-process timing shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import subprocess
import time


def wall(cmd: list[str], env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def paired(a: list[str], b: list[str], runs: int = 5, warmup: int = 1, env=None, env_b=None) -> dict:
    """Run A and B alternately (B under ENV_B when given, else ENV); the ratio A/B per pair, and
    the medians of each."""
    env_b = env if env_b is None else env_b
    for _ in range(warmup):
        wall(a, env), wall(b, env_b)
    ta, tb, ratios = [], [], []
    for _ in range(runs):
        x, y = wall(a, env), wall(b, env_b)
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


def cpu_features() -> str:
    """The CPU model and the SIMD features that decide int8 and fp32 speed (from /proc/cpuinfo),
    printed beside every figure: machines of one kind differ (AVX2 only vs AVX-512 VNNI)."""
    import os
    import platform
    import re

    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return f"{platform.machine()} (no /proc/cpuinfo)"
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = set((re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M) or [None, ""])[1].split())
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "asimddp", "i8mm", "sve")
    have = [f for f in wanted if f in flags]
    return (f"{model.group(1).strip() if model else platform.machine()} · {os.cpu_count()} cores · "
            f"{' '.join(have) or 'no AVX2/VNNI/dot-product'}")

"""Latency and memory statistics of a profiling run (pure Python: runs on any board)."""

from __future__ import annotations

import math
import re
import resource
import sys


def percentile(sorted_values, q: float) -> float:
    """The Q-th percentile (0..100) of an already sorted sequence, linearly interpolated between
    the two nearest ranks (numpy's default `linear` method, Hyndman & Fan type 7); NaN when empty."""
    n = len(sorted_values)
    if n == 0:
        return float("nan")
    pos = (n - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def latency_stats(samples_ms) -> dict:
    """Latencies in milliseconds → {min, p50, p90, p99, mean, std (population), max} in ms.

    Raises ValueError for an empty sequence."""
    xs = sorted(float(x) for x in samples_ms)
    if not xs:
        raise ValueError("no latency samples")
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
    return {"min": xs[0], "p50": percentile(xs, 50), "p90": percentile(xs, 90), "p99": percentile(xs, 99),
            "mean": mean, "std": std, "max": xs[-1]}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: VmHWM from /proc/self/status, the high-water mark of this program's own memory.
    Not ru_maxrss there: it survives fork+exec, so a child of a 1.5 GB parent (pytest, an IDE)
    would report the parent's size. Elsewhere ru_maxrss (KiB; bytes on macOS)."""
    try:
        with open("/proc/self/status") as f:
            m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
    except OSError:
        m = None
    if m:
        return int(m.group(1)) / 1024
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024

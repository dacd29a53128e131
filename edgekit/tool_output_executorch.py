"""Parser of ExecuTorch's `executor_runner` output (its ET_LOG lines), as data: success,
executions and timings in milliseconds, planned buffers, outputs, missing kernels, errors.
Pure functions, no imports of frameworks.
"""

from __future__ import annotations

import math
import re

from .tool_output_common import NUM, SOURCE_MARKER, latency_ms, to_int, tool_lines

# ET_LOG prefix: "I 00:00:00.091459 executorch:executor_runner.cpp:340] " (newer builds may drop the
# timestamp: "I executorch:executor_runner.cpp:889] ")
_ET_PREFIX = re.compile(r"^([DIWEF]) (?:(\d\d:\d\d:\d\d\.\d+) )?executorch:([\w.]+):?(\d+)?\] ?")
_ET_EXEC = re.compile(rf"Model executed successfully(?: (\d+) time\(s\) in ({NUM}) ms)?\.")
_ET_ITER = re.compile(rf"Iteration (\d+) of (\d+): ({NUM}) ms")
_ET_LOADED = re.compile(rf"Model loaded in ({NUM}) ms")
_ET_OUTPUT = re.compile(r"^Output\w* (\d+): tensor\(sizes=\[([\d, ]*)\]")
_ET_FAILED = re.compile(r"(?:Loading|Execution) of method (\S+) failed with status (0x[0-9a-fA-F]+)")
_ET_MISSING = re.compile(r"(?:Missing operator: \[\d+\] (\S+)|kernel '([^']+)' not found)")


def parse_executor_runner(text: str) -> dict:
    """What ExecuTorch's `executor_runner` printed, as data: model_file, method, planned_buffers
    (bytes), threads, success (bool), executions, total_ms / mean_ms (runners that print
    "executed successfully N time(s) in X ms"), iterations_ms (per-iteration lines), load_ms,
    outputs [{index, sizes}], etdump (path written), errors [lines], missing_ops, status (hex)."""
    r: dict = {"success": False, "outputs": [], "errors": []}
    for raw in tool_lines(text):
        if raw.startswith(SOURCE_MARKER):
            continue
        m = _ET_PREFIX.match(raw)
        level, body = (m.group(1), raw[m.end():]) if m else (None, raw.strip())
        if (m2 := re.match(r"Model file (.+) is loaded\.", body)):
            r["model_file"] = m2.group(1)
        elif (m2 := re.match(r"(?:Using|Running) method (\S+)", body)):
            r["method"] = m2.group(1)
        elif (m2 := re.match(r"Setting up (?:\w+ )?planned buffer (\d+), size (\d+)", body)):
            if to_int(m2.group(2)) is not None:
                r.setdefault("planned_buffers", []).append(to_int(m2.group(2)))
        elif (m2 := re.search(r"Resetting threadpool with num threads = (\d+)", body)):
            if to_int(m2.group(1)) is not None:
                r["threads"] = to_int(m2.group(1))
        elif (m2 := _ET_EXEC.search(body)):
            r["success"] = True
            if to_int(m2.group(1)) is not None:
                r["executions"], r["total_ms"] = to_int(m2.group(1)), float(m2.group(2))
                r["mean_ms"] = r["total_ms"] / max(1, r["executions"])
        elif (m2 := _ET_ITER.search(body)):
            if math.isfinite(float(m2.group(3))):  # 1e999 ms is not a measurement
                r.setdefault("iterations_ms", []).append(float(m2.group(3)))
        elif (m2 := _ET_LOADED.search(body)):
            r["load_ms"] = float(m2.group(1))
        elif (m2 := _ET_OUTPUT.match(body)):
            sizes = [to_int(s) for s in m2.group(2).replace(" ", "").split(",") if s]
            if to_int(m2.group(1)) is not None and None not in sizes:
                r["outputs"].append({"index": to_int(m2.group(1)), "sizes": sizes})
        elif (m2 := re.search(r"ETDump written to file '([^']*)'", body)):
            r["etdump"] = m2.group(1)
        else:
            if (m2 := _ET_FAILED.search(body)):
                r["status"] = m2.group(2)
            if (m2 := _ET_MISSING.search(body)):
                op = m2.group(1) or m2.group(2)
                if op not in r.setdefault("missing_ops", []):
                    r["missing_ops"].append(op)
            if level in ("E", "F") or _ET_FAILED.search(body):
                r["errors"].append(body.strip())
    if "iterations_ms" in r and "executions" not in r:
        r["executions"] = len(r["iterations_ms"])
    return r


def executor_runner_to_latency_ms(parsed: dict) -> dict:
    """executor_runner's timings → edgekit's latency_ms keys: per-iteration statistics when the
    runner printed "Iteration i of n: X ms", else only the mean from its total (others None).
    Percentiles here are nearest-rank on the sorted iteration times (index round(q * (n - 1))),
    as this parser has always reported them."""
    it = sorted(parsed.get("iterations_ms") or [])
    if it:
        import statistics

        pct = lambda q: it[min(len(it) - 1, int(round(q * (len(it) - 1))))]  # noqa: E731
        return latency_ms(min=it[0], p50=pct(0.5), p90=pct(0.9), p99=pct(0.99),
                          mean=statistics.fmean(it), std=statistics.pstdev(it), max=it[-1])
    return latency_ms(mean=parsed.get("mean_ms"))

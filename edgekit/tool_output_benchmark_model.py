"""Parser of LiteRT/TFLite `benchmark_model` output (the CLI, `adb shell`, or the Android
benchmark app's logcat lines), as data. Pure functions, no imports of frameworks.

Read: every `count= first= curr= min= max= avg= std= [p5= median= p95=]` line (µs, scientific
notation too), the `Inference timings in us:` line, memory footprint (old "Peak memory footprint
(MB): init= overall=" and new "Memory footprint delta from the start of the tool (MB): ..."),
delegate coverage ("Replacing N out of M node(s) with delegate (...)", GPU "N operations will
run on the GPU, and the remaining M operations will run on the CPU"), and the op-profiling
tables (tab separated or CSV mode). Output holding several runs (one per delegate) is split
into `runs`. Times are in microseconds as the tool prints them (floats), memory in MB.
"""

from __future__ import annotations

import math
import re

from .tool_output_common import NUM, latency_ms, to_int, tool_lines

# logcat prefixes: "I tflite  : ", "04-01 12:00:00.123  1234  1234 I tflite  : ", "I/tflite  ( 1234): "
_LOGCAT = re.compile(
    r"^(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+)?[VDIWEF][/ ]\s*tflite\s*(?:\(\s*\d+\))?\s*:\s?"
)
_KV = re.compile(rf"(\w+)=({NUM})")
_STATS_KEYS = ("count", "first", "curr", "min", "max", "avg", "std", "p5", "median", "p95")


_LEVEL = re.compile(r"^(?:INFO|VERBOSE|WARNING|ERROR): ")


def strip_logcat(line: str) -> str:
    """Drop a logcat prefix and the `INFO: `/`VERBOSE: ` level newer builds put on each line."""
    return _LEVEL.sub("", _LOGCAT.sub("", line, count=1), count=1)


def parse_stats_line(line: str) -> dict | None:
    """`count=50 first=... avg=2.95e+06 std=...` → {count: 50, first: ..., ...} (µs), else None."""
    line = strip_logcat(line).strip()
    if line.startswith("Timings (microseconds):"):
        line = line.split(":", 1)[1].strip()
    if not line.startswith("count="):
        return None
    out = {}
    for k, v in _KV.findall(line):
        if k in _STATS_KEYS and (k != "count" or math.isfinite(float(v))):  # count=1e400: not a count
            out[k] = int(float(v)) if k == "count" else float(v)
    return out


_TIMINGS = re.compile(
    rf"Inference timings in us:\s*Init:\s*({NUM}),\s*First inference:\s*({NUM}),\s*"
    rf"Warmup \(avg\):\s*({NUM}),\s*Inference \(avg\):\s*({NUM})"
)
_MEM_OLD = re.compile(rf"Peak memory footprint \(MB\):\s*init=({NUM})\s+overall=({NUM})")
_MEM_NEW = re.compile(rf"Memory footprint delta from the start of the tool \(MB\):\s*init=({NUM})\s+overall=({NUM})")
_PEAK_MEM_NEW = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*({NUM})")
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]*)\)(?: node, yielding (\d+) partitions?)?")
_GPU = re.compile(r"(?:First )?(\d+) operations will run on the GPU, and the remaining (\d+) (?:operations? will run )?on the CPU")
_GPU_UNSUPPORTED = re.compile(r"^(?:ERROR: )?(?:Following|Next) operations are not supported by GPU delegate:")
_INIT_SESSION = re.compile(rf"Initialized session in ({NUM})ms")
_SECTION = re.compile(r"^=+ (.+?) =+$")


def _table_row(line: str, header: list[str]) -> dict | None:
    cells = [c.strip() for c in (line.split("\t") if "\t" in line else line.split(","))]
    cells = [c for c in cells if c != ""] if "\t" in line else cells
    if len(cells) != len(header):
        return None
    row = {}
    for h, c in zip(header, cells):
        key = h.strip("[] ").lower().replace(" ", "_").replace("%", "pct")
        v = c.rstrip("%")
        try:
            row[key] = (int(v) if key in ("count", "times_called") else float(v)) if re.fullmatch(NUM, v) else c
        except ValueError:
            row[key] = c
    return row


def _parse_profile_tables(lines: list[str]) -> dict:
    """The op-profiling blocks: {"init": {...}, "runs": {...}}, each with run_order,
    top_by_time, by_node_type, nodes_executed."""
    blocks: dict = {}
    current = None
    section = None
    header = None
    for raw in lines:
        line = strip_logcat(raw).rstrip("\n")
        s = line.strip()
        if s.startswith("Profiling Info for Benchmark Initialization"):
            current, section, header = blocks.setdefault("init", {}), None, None  # a block cut short ends here
            continue
        if s.startswith("Operator-wise Profiling Info for Regular Benchmark Runs"):
            current, section, header = blocks.setdefault("runs", {}), None, None
            continue
        if current is None:
            continue
        m = _SECTION.match(s)
        if m:
            section = {"Run Order": "run_order", "Top by Computation Time": "top_by_time",
                       "Summary by node type": "by_node_type", "Top by Memory Use": "top_by_memory"}.get(m.group(1))
            header = None
            if section:
                current[section] = []
            continue
        if section and header is None and s.startswith("["):
            header = [h.strip() for h in (s.split("\t") if "\t" in s else s.split(","))]
            header = [h for h in header if h]
            continue
        m = re.match(r"Number of nodes executed:\s*(\d+)", s)
        if m:
            if to_int(m.group(1)) is not None:
                current["nodes_executed"] = to_int(m.group(1))
            section, header = None, None
            continue
        if s.startswith("Timings (microseconds):"):
            current["timings_us"] = parse_stats_line(s)
            section, header = None, None
            continue
        if section and header and s:
            row = _table_row(s, header)
            if row is not None:
                current[section].append(row)
            continue
        if not s:
            header = None if section else header
    return blocks


def parse_benchmark_model(text: str) -> dict:
    """Everything `benchmark_model` printed, as data. Keys (each present when printed):

    runs: [{warmup: stats, inference: stats, timings_us: {init, first_inference, warmup_avg,
           inference_avg}, memory_mb: {init, overall, kind}}] — one per benchmark pass/delegate
    stats lines are µs dicts {count, first, curr, min, max, avg, std, p5?, median?, p95?}
    delegation: [{replaced, total, delegate, partitions?}] ; gpu: {gpu_ops, cpu_ops}
    init_session_ms, op_profile: {init: ..., runs: ...}
    """
    lines = tool_lines(text)
    runs: list[dict] = []
    pending_stats: list[dict] = []
    result: dict = {}
    delegation = []
    gpu_unsupported = None
    in_profile = False
    for raw in lines:
        line = strip_logcat(raw).strip()
        if line.startswith("Profiling Info for Benchmark Initialization") or line.startswith("Operator-wise Profiling"):
            in_profile = True
        if in_profile and re.match(r"\d+ nodes observed", line):
            in_profile = False
            continue
        if not in_profile:
            st = parse_stats_line(line)
            if st is not None:
                pending_stats.append(st)
                continue
        m = _TIMINGS.search(line)
        if m:
            run = {"timings_us": dict(zip(("init", "first_inference", "warmup_avg", "inference_avg"),
                                          map(float, m.groups())))}
            # the last stats line before the summary is the timed runs; one before it the warmup
            if pending_stats:
                run["inference"] = pending_stats[-1]
                if len(pending_stats) >= 2:
                    run["warmup"] = pending_stats[-2]
            pending_stats = []
            runs.append(run)
            in_profile = False
            continue
        for rx, kind in ((_MEM_OLD, "peak"), (_MEM_NEW, "delta")):
            m = rx.search(line)
            if m and runs:
                runs[-1]["memory_mb"] = {"init": float(m.group(1)), "overall": float(m.group(2)), "kind": kind}
        m = _PEAK_MEM_NEW.search(line)
        if m and runs:
            runs[-1].setdefault("memory_mb", {})["peak_monitored"] = float(m.group(1))
        m = _REPLACING.search(line)
        if m and to_int(m.group(1)) is not None and to_int(m.group(2)) is not None:
            d = {"replaced": to_int(m.group(1)), "total": to_int(m.group(2)), "delegate": m.group(3)}
            if to_int(m.group(4)) is not None:
                d["partitions"] = to_int(m.group(4))
            delegation.append(d)
        if _GPU_UNSUPPORTED.match(line):
            gpu_unsupported = {}
            continue
        m = _GPU.search(line)
        if m and to_int(m.group(1)) is not None and to_int(m.group(2)) is not None:
            result["gpu"] = {"gpu_ops": to_int(m.group(1)), "cpu_ops": to_int(m.group(2)),
                             "unsupported": gpu_unsupported or {}}
            gpu_unsupported = None
            continue
        if gpu_unsupported is not None:
            m = re.match(r"^([A-Z][A-Z0-9_]*):\s*(.*)$", line)
            if m:
                gpu_unsupported[m.group(1)] = m.group(2)
                continue
        m = _INIT_SESSION.search(line)
        if m:
            result["init_session_ms"] = float(m.group(1))
    if pending_stats and not runs:  # output cut before the summary: keep what was measured
        runs.append({"inference": pending_stats[-1], "incomplete": True})
    result["runs"] = runs
    if delegation:
        result["delegation"] = delegation
    prof = _parse_profile_tables(lines)
    if prof:
        result["op_profile"] = prof
    return result


def benchmark_to_latency_ms(stats: dict) -> dict:
    """A benchmark_model stats dict (µs) → edgekit's latency_ms keys where the tool gives them
    (p90/p99 are not printed by benchmark_model: None)."""
    ms = lambda k: stats[k] / 1000.0 if k in stats else None  # noqa: E731
    return latency_ms(min=ms("min"), p50=ms("median"), mean=ms("avg"), std=ms("std"), max=ms("max"))

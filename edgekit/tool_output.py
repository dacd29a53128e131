"""Parsers for what the device-side tools print (pure functions, no imports of frameworks).

- `parse_benchmark_model(text)`: LiteRT/TFLite `benchmark_model` (CLI, `adb shell`, or the
  Android benchmark app's logcat lines): every `count= first= curr= min= max= avg= std=
  [p5= median= p95=]` line (µs, scientific notation too), the `Inference timings in us:` line,
  memory footprint (old "Peak memory footprint (MB): init= overall=" and new "Memory footprint
  delta from the start of the tool (MB): ..."), delegate coverage ("Replacing N out of M
  node(s) with delegate (...)", GPU "N operations will run on the GPU, and the remaining M
  operations will run on the CPU"), and the op-profiling tables (tab separated or CSV mode).
  Output holding several runs (one per delegate) is split into `runs`.
- `parse_edgetpu_compiler(text)`: `edgetpu_compiler` stdout and its `_edgetpu.log` table: ops
  on the Edge TPU / on the CPU, the operator table with each status (why an op stays on the
  CPU), on-chip memory used/remaining, off-chip streaming, subgraphs.

Times are returned in microseconds as the tools print them (floats), sizes in bytes or MB as
named.
"""

from __future__ import annotations

import re

# logcat prefixes: "I tflite  : ", "04-01 12:00:00.123  1234  1234 I tflite  : ", "I/tflite  ( 1234): "
_LOGCAT = re.compile(
    r"^(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+)?[VDIWEF][/ ]\s*tflite\s*(?:\(\s*\d+\))?\s*:\s?"
)
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_KV = re.compile(rf"(\w+)=({_NUM})")
_STATS_KEYS = ("count", "first", "curr", "min", "max", "avg", "std", "p5", "median", "p95")


_LEVEL = re.compile(r"^(?:INFO|VERBOSE|WARNING|ERROR): ")


def strip_logcat(line: str) -> str:
    """Drop a logcat prefix and the `INFO: `/`VERBOSE: ` level newer builds put on each line."""
    return _LEVEL.sub("", _LOGCAT.sub("", line, count=1), count=1)


def _num(s: str) -> float:
    return float(s)


def parse_stats_line(line: str) -> dict | None:
    """`count=50 first=... avg=2.95e+06 std=...` → {count: 50, first: ..., ...} (µs), else None."""
    line = strip_logcat(line).strip()
    if line.startswith("Timings (microseconds):"):
        line = line.split(":", 1)[1].strip()
    if not line.startswith("count="):
        return None
    out = {}
    for k, v in _KV.findall(line):
        if k in _STATS_KEYS:
            out[k] = int(float(v)) if k == "count" else _num(v)
    return out


_TIMINGS = re.compile(
    rf"Inference timings in us:\s*Init:\s*({_NUM}),\s*First inference:\s*({_NUM}),\s*"
    rf"Warmup \(avg\):\s*({_NUM}),\s*Inference \(avg\):\s*({_NUM})"
)
_MEM_OLD = re.compile(rf"Peak memory footprint \(MB\):\s*init=({_NUM})\s+overall=({_NUM})")
_MEM_NEW = re.compile(rf"Memory footprint delta from the start of the tool \(MB\):\s*init=({_NUM})\s+overall=({_NUM})")
_PEAK_MEM_NEW = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*({_NUM})")
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]*)\)(?: node, yielding (\d+) partitions?)?")
_GPU = re.compile(r"(?:First )?(\d+) operations will run on the GPU, and the remaining (\d+) (?:operations? will run )?on the CPU")
_GPU_UNSUPPORTED = re.compile(r"^(?:ERROR: )?(?:Following|Next) operations are not supported by GPU delegate:")
_INIT_SESSION = re.compile(rf"Initialized session in ({_NUM})ms")
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
            row[key] = (int(v) if key in ("count", "times_called") else float(v)) if re.fullmatch(_NUM, v) else c
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
            current = blocks.setdefault("init", {})
            continue
        if s.startswith("Operator-wise Profiling Info for Regular Benchmark Runs"):
            current = blocks.setdefault("runs", {})
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
            current["nodes_executed"] = int(m.group(1))
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
    lines = text.splitlines()
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
                                          map(_num, m.groups())))}
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
                runs[-1]["memory_mb"] = {"init": _num(m.group(1)), "overall": _num(m.group(2)), "kind": kind}
        m = _PEAK_MEM_NEW.search(line)
        if m and runs:
            runs[-1].setdefault("memory_mb", {})["peak_monitored"] = _num(m.group(1))
        m = _REPLACING.search(line)
        if m:
            d = {"replaced": int(m.group(1)), "total": int(m.group(2)), "delegate": m.group(3)}
            if m.group(4):
                d["partitions"] = int(m.group(4))
            delegation.append(d)
        if _GPU_UNSUPPORTED.match(line):
            gpu_unsupported = {}
            continue
        m = _GPU.search(line)
        if m:
            result["gpu"] = {"gpu_ops": int(m.group(1)), "cpu_ops": int(m.group(2)),
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
            result["init_session_ms"] = _num(m.group(1))
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
    return {"min": ms("min"), "p50": ms("median"), "p90": None, "p99": None,
            "mean": ms("avg"), "std": ms("std"), "max": ms("max")}


# -- edgetpu_compiler ---------------------------------------------------------------------------

_SIZE = re.compile(r"({num})\s*([KMG]?i?B)".format(num=_NUM))
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}


def parse_size(s: str) -> int | None:
    m = _SIZE.search(s)
    if not m:
        return None
    return int(round(float(m.group(1)) * _UNITS.get(m.group(2), 1)))


_TABLE_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")


def parse_edgetpu_compiler(text: str) -> dict:
    """`edgetpu_compiler` stdout (and/or its .log): a dict with compiler_version, input_model,
    output_model, sizes (bytes), on_chip_used/on_chip_remaining/off_chip_streaming (bytes),
    subgraphs, total_ops, tpu_ops, cpu_ops, compiled (bool), ops [{op, count, status, mapped}],
    cpu_ops_by_reason {reason: [op...]}, all_others_mapped (the "... All other operators were
    mapped" footer)."""
    r: dict = {}
    ops: list[dict] = []
    fields = {
        "Edge TPU Compiler version": ("compiler_version", str),
        "Input model": ("input_model", str), "Input": ("input_model", str),
        "Output model": ("output_model", str), "Output": ("output_model", str),
        "Input size": ("input_size_bytes", parse_size), "Output size": ("output_size_bytes", parse_size),
        "On-chip memory used for caching model parameters": ("on_chip_used_bytes", parse_size),
        "On-chip memory remaining for caching model parameters": ("on_chip_remaining_bytes", parse_size),
        "Off-chip memory used for streaming uncached model parameters": ("off_chip_streaming_bytes", parse_size),
        "Number of Edge TPU subgraphs": ("subgraphs", int),
        "Total number of operations": ("total_ops", int),
        "Operation log": ("operation_log", str),
        "Number of operations that will run on Edge TPU": ("tpu_ops", int),
        "Number of operations that will run on CPU": ("cpu_ops", int),
    }
    seen_logs = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#source:"):
            continue
        if line.startswith("Edge TPU Compiler version"):
            r.setdefault("compiler_version", line.rsplit(" ", 1)[-1])
            continue
        m = re.match(r"Model compiled successfully in (\d+) ms", line)
        if m:
            r["compiled"] = True
            r["compile_ms"] = int(m.group(1))
            continue
        if line.startswith("Compilation succeeded"):
            r["compiled"] = True
            continue
        if "failed" in line.lower() and ("compil" in line.lower() or line.startswith("ERROR")):
            r["compiled"] = False
            r.setdefault("errors", []).append(line)
            continue
        if line.startswith("ERROR:"):
            r.setdefault("errors", []).append(line)
            continue
        if line.startswith("Model successfully compiled but not all operations are supported"):
            r["partial"] = True
            continue
        if line.startswith("... All other operators were mapped successfully"):
            r["all_others_mapped"] = True
            continue
        if line.startswith("---") and line.endswith("---"):
            seen_logs.add(line.strip("- "))
            continue
        if ":" in line and not _TABLE_ROW.match(line):
            key, _, val = line.partition(":")
            spec = fields.get(key.strip())
            if spec:
                name, conv = spec
                v = val.strip()
                try:
                    r.setdefault(name, conv(v)) if name in ("input_model", "output_model") else r.__setitem__(name, conv(v))
                except ValueError:
                    pass
                continue
        m = _TABLE_ROW.match(line)
        if m and not line.startswith("Operator "):
            status = m.group(3)
            ops.append({"op": m.group(1), "count": int(m.group(2)), "status": status,
                        "mapped": status.startswith("Mapped to Edge TPU")})
    if ops:
        r["ops"] = ops
        by_reason: dict = {}
        for o in ops:
            if not o["mapped"]:
                by_reason.setdefault(o["status"], []).append(o["op"])
        r["cpu_ops_by_reason"] = by_reason
        r["cpu_op_types"] = sorted({o["op"] for o in ops if not o["mapped"]})
    if "tpu_ops" in r and "cpu_ops" not in r and "total_ops" in r:
        r["cpu_ops"] = r["total_ops"] - r["tpu_ops"]
    if "total_ops" in r and "tpu_ops" in r and r["total_ops"]:
        r["tpu_share"] = r["tpu_ops"] / r["total_ops"]
    elif "total_ops" in r and "tpu_ops" not in r and r.get("compiled"):
        r["tpu_ops"], r["cpu_ops"], r["tpu_share"] = r["total_ops"], 0, 1.0  # everything mapped
    return r


# -- ExecuTorch executor_runner -----------------------------------------------------------------

# ET_LOG prefix: "I 00:00:00.091459 executorch:executor_runner.cpp:340] " (newer builds may drop the
# timestamp: "I executorch:executor_runner.cpp:889] ")
_ET_PREFIX = re.compile(r"^([DIWEF]) (?:(\d\d:\d\d:\d\d\.\d+) )?executorch:([\w.]+):?(\d+)?\] ?")
_ET_EXEC = re.compile(rf"Model executed successfully(?: (\d+) time\(s\) in ({_NUM}) ms)?\.")
_ET_ITER = re.compile(rf"Iteration (\d+) of (\d+): ({_NUM}) ms")
_ET_LOADED = re.compile(rf"Model loaded in ({_NUM}) ms")
_ET_OUTPUT = re.compile(r"^Output\w* (\d+): tensor\(sizes=\[([\d, ]*)\]")
_ET_FAILED = re.compile(r"(?:Loading|Execution) of method (\S+) failed with status (0x[0-9a-fA-F]+)")
_ET_MISSING = re.compile(r"(?:Missing operator: \[\d+\] (\S+)|kernel '([^']+)' not found)")


def parse_executor_runner(text: str) -> dict:
    """What ExecuTorch's `executor_runner` printed, as data: model_file, method, planned_buffers
    (bytes), threads, success (bool), executions, total_ms / mean_ms (runners that print
    "executed successfully N time(s) in X ms"), iterations_ms (per-iteration lines), load_ms,
    outputs [{index, sizes}], etdump (path written), errors [lines], missing_ops, status (hex)."""
    r: dict = {"success": False, "outputs": [], "errors": []}
    for raw in text.splitlines():
        if raw.startswith("#source:"):
            continue
        m = _ET_PREFIX.match(raw)
        level, body = (m.group(1), raw[m.end():]) if m else (None, raw.strip())
        if (m2 := re.match(r"Model file (.+) is loaded\.", body)):
            r["model_file"] = m2.group(1)
        elif (m2 := re.match(r"(?:Using|Running) method (\S+)", body)):
            r["method"] = m2.group(1)
        elif (m2 := re.match(r"Setting up (?:\w+ )?planned buffer (\d+), size (\d+)", body)):
            r.setdefault("planned_buffers", []).append(int(m2.group(2)))
        elif (m2 := re.search(r"Resetting threadpool with num threads = (\d+)", body)):
            r["threads"] = int(m2.group(1))
        elif (m2 := _ET_EXEC.search(body)):
            r["success"] = True
            if m2.group(1):
                r["executions"], r["total_ms"] = int(m2.group(1)), _num(m2.group(2))
                r["mean_ms"] = r["total_ms"] / max(1, r["executions"])
        elif (m2 := _ET_ITER.search(body)):
            r.setdefault("iterations_ms", []).append(_num(m2.group(3)))
        elif (m2 := _ET_LOADED.search(body)):
            r["load_ms"] = _num(m2.group(1))
        elif (m2 := _ET_OUTPUT.match(body)):
            sizes = [int(s) for s in m2.group(2).replace(" ", "").split(",") if s]
            r["outputs"].append({"index": int(m2.group(1)), "sizes": sizes})
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
    runner printed "Iteration i of n: X ms", else only the mean from its total (others None)."""
    it = sorted(parsed.get("iterations_ms") or [])
    if it:
        import statistics

        pct = lambda q: it[min(len(it) - 1, int(round(q * (len(it) - 1))))]  # noqa: E731
        return {"min": it[0], "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
                "mean": statistics.fmean(it), "std": statistics.pstdev(it), "max": it[-1]}
    mean = parsed.get("mean_ms")
    return {"min": None, "p50": None, "p90": None, "p99": None, "mean": mean, "std": None, "max": None}

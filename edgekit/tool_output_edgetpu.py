"""Parser of the Edge TPU compiler's output: `edgetpu_compiler` stdout and its `_edgetpu.log`
table, as data: ops on the Edge TPU / on the CPU, the operator table with each status (why an op
stays on the CPU), on-chip memory used/remaining, off-chip streaming, subgraphs. Sizes in bytes.
Pure functions, no imports of frameworks.
"""

from __future__ import annotations

import math
import re

from .tool_output_common import NUM, SOURCE_MARKER, to_int, tool_lines

_SIZE = re.compile(r"({num})\s*([KMG]?i?B)".format(num=NUM))
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}


def parse_size(s: str) -> int | None:
    """The first size in `s` in bytes ('7.62MiB' → 7990149; KiB/MiB/GiB are powers of 1024,
    KB/MB/GB of 1000); None when `s` holds no size (or one too large to be finite: 1e999MiB)."""
    m = _SIZE.search(s)
    if not m:
        return None
    size = float(m.group(1)) * _UNITS.get(m.group(2), 1)
    return int(round(size)) if math.isfinite(size) else None


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
    for raw in tool_lines(text):
        line = raw.strip()
        if not line or line.startswith(SOURCE_MARKER):
            continue
        if line.startswith("Edge TPU Compiler version"):
            r.setdefault("compiler_version", line.rsplit(" ", 1)[-1])
            continue
        m = re.match(r"Model compiled successfully in (\d+) ms", line)
        if m:
            r["compiled"] = True
            if to_int(m.group(1)) is not None:
                r["compile_ms"] = to_int(m.group(1))
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
        if m and not line.startswith("Operator ") and to_int(m.group(2)) is not None:
            status = m.group(3)
            ops.append({"op": m.group(1), "count": to_int(m.group(2)), "status": status,
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

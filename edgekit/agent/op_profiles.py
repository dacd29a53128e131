"""Per-operator times where the runtime records them: ExecuTorch's ETDump (read with
`executorch.devtools.Inspector`) and onnxruntime's profile. The tables follow the ExecuTorch
devtools Inspector's event naming (DELEGATE_CALL, native_call_*)."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile

from ..native_log import capture_native_stderr
from .stats import percentile


def ops_table(rows, top: int = 15) -> dict:
    """rows of (event name, op type, [ms per run, in run order]) → {top: the TOP operators by mean
    time, by_type: totals per op type with their share, operators: count, runs: how many runs each
    mean is over, per_run_ms: the operators' summed mean (one instrumented run), source,
    delegate_calls: the whole-delegate envelopes (their kernels are listed too, so they are not
    summed)}.

    The first run of an instrumented session is cold (allocation, weight packing, caches): it is
    left out when there are others, as the timed runs leave out their warm-up. With it, one
    operator's first call (several ms) dominated its mean and the table summed to several times
    the measured latency. The times stay those of the instrumented runs (tracing slows each
    operator): the reports show the shares, scaled to the measured latency."""
    per_op, by_type, envelope, runs = [], {}, {}, 0
    for name, op_type, xs in rows:
        xs = list(xs)
        if not xs:
            continue
        if len(xs) > 1:
            xs = xs[1:]  # the cold first run
        runs = max(runs, len(xs))
        mean = sum(xs) / len(xs)
        xs = sorted(xs)
        if op_type == "DELEGATE_CALL":
            envelope["count"] = envelope.get("count", 0) + 1
            envelope["total_ms"] = envelope.get("total_ms", 0.0) + mean
            continue
        per_op.append({"name": name, "type": op_type, "mean_ms": mean, "p50_ms": percentile(xs, 50),
                       "p90_ms": percentile(xs, 90), "calls": len(xs)})
        t = by_type.setdefault(op_type, {"type": op_type, "total_ms": 0.0, "count": 0})
        t["total_ms"] += mean
        t["count"] += 1
    per_op.sort(key=lambda r: -r["mean_ms"])
    types = sorted(by_type.values(), key=lambda r: -r["total_ms"])
    per_run = sum(t["total_ms"] for t in types)
    for t in types:
        t["share"] = t["total_ms"] / (per_run or 1.0)
    out = {"top": per_op[:top], "by_type": types, "operators": len(per_op), "runs": runs, "per_run_ms": per_run,
           "source": "separately instrumented runs (the first, cold one left out)"}
    if envelope:
        out["delegate_calls"] = envelope
    return out


def executorch_ops(path: str, threads: int, feeds: list[dict], runs: int):
    """Per-operator times from an ETDump of RUNS extra runs in a separate, instrumented load (the
    timed runs are not slowed by the event tracer). Returns (ops table or None, why not or None)."""
    try:
        from executorch.devtools import Inspector
    except Exception as exc:  # devtools need pandas & co; a board may only have the runtime
        return None, f"per-operator times need executorch.devtools ({exc.__class__.__name__}: {exc})"
    from ..runtimes.executorch import ExecuTorchSession

    session = ExecuTorchSession(path, threads, etdump=True)
    for i in range(runs):
        session.set_inputs(feeds[i % len(feeds)])
        session.invoke()
    fd, etdump = tempfile.mkstemp(suffix=".etdp", prefix="edgekit-")
    os.close(fd)
    try:
        session.write_etdump(etdump)
        with capture_native_stderr():
            inspector = Inspector(etdump_path=etdump)
        rows = []
        for block in inspector.event_blocks:
            if block.name != "Execute":
                continue
            for ev in block.events:
                # OPERATOR_CALL is the envelope of each portable kernel's native_call_* event: counted
                # too, it doubled the portable ops and their time share.
                if not ev.perf_data or ev.name in ("Method::execute", "Program::load_method", "Method::init",
                                                   "OPERATOR_CALL"):
                    continue
                if ev.name == "DELEGATE_CALL":
                    op_type = "DELEGATE_CALL"
                elif ev.is_delegated_op or ev.delegate_backend_name:
                    base = re.sub(r"\s*#\d+$", "", ev.name).strip()
                    op_type = f"{ev.delegate_backend_name or 'XNNPACK'}:{base}"
                else:
                    op_type = ev.name.replace("native_call_", "")
                rows.append((ev.name, op_type, list(ev.perf_data.raw)))
        if not rows:
            return None, "the ETDump held no operator events"
        return ops_table(rows), None
    except Exception as exc:
        return None, f"could not read the ETDump ({exc.__class__.__name__}: {exc})"
    finally:
        for f in (etdump, etdump + ".debug"):
            with contextlib.suppress(OSError):
                os.remove(f)


def executorch_delegation(ops: dict | None) -> dict | None:
    """Delegated vs portable operators from ETDump events (when the program was profiled)."""
    if not ops:
        return None
    portable = {t["type"]: t["count"] for t in ops["by_type"] if ":" not in t["type"] and t["type"] != "DELEGATE_CALL"}
    delegated = sum(t["count"] for t in ops["by_type"] if ":" in t["type"])
    return {"backend": "XNNPACK", "delegate_calls": ops.get("delegate_calls", {}).get("count", 0),
            "delegated_kernels": delegated, "portable_ops": sum(portable.values()), "not_delegated": sorted(portable),
            "not_delegated_counts": portable, "source": "etdump"}


def onnx_ops(path: str, threads: int, feeds: list[dict], runs: int) -> dict:
    """Per-node times from onnxruntime's profiler over RUNS runs of a separate session."""
    from ..runtimes.onnx import OnnxSession

    session = OnnxSession(path, threads, profile=True)
    for i in range(runs):
        session.set_inputs(feeds[i % len(feeds)])
        session.invoke()
    return ops_table(session.op_profile())

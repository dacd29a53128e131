"""edgekit's device agent: open an artifact with edgekit's runtime layer, time it or run it, and
print one JSON result.

    python3 edgekit_agent.pyz probe
    python3 edgekit_agent.pyz profile MODEL [--runs N] [--warmup N] [--threads N] [--inputs X.npz] [--ops]
    python3 edgekit_agent.pyz run MODEL --inputs X.npz --outputs Y.npz [--threads N]

The result is printed on stdout as one line `EDGEKIT-RESULT {json}` (runtimes may print their
own chatter). Exit codes are edgekit's: 0 ok, 1 failed, 2 bad input, 3 a runtime or numpy
missing, 4 no device behind a delegate. With --cleanup DIR the agent removes DIR when it is
signalled or, with --watch-stdin, when its controlling connection drops (stdin reaching EOF).
After a normal exit the host fetches what it needs and removes DIR itself (or the agent does,
with --remove-when-done).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from ..errors import EdgekitError, MissingDependency
from .cleanup import arm_cleanup
from .device import device_info, install_hint, package_version, preload_runtime, probe_formats
from .stats import latency_stats, peak_rss_mb

AGENT_VERSION = 2
SCHEMA_VERSION = 1
RESULT_PREFIX = "EDGEKIT-RESULT "
RUNTIME_DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}
EDGEKIT_EXTRAS = {"tflite": "tf", "executorch": "torch", "torchscript": "torch", "onnx": "onnx"}


def _numpy():
    try:
        import numpy
    except ImportError as exc:
        raise MissingDependency(f"numpy is not installed for {sys.executable} ({exc}).",
                                f"{sys.executable} -m pip install numpy") from exc
    return numpy


def open_session(path: str, threads: int | None, external_delegate: dict | None = None, **options):
    """(format, session) for the artifact at PATH through edgekit.runtimes, with the board's
    pip line as the hint when its runtime is missing. The format is the file's extension
    (`_edgetpu.tflite` files report `tflite`)."""
    _numpy()
    from ..artifacts import format_of
    from .. import runtimes

    if not os.path.isfile(path):
        raise runtimes.BadInput(f"The artifact {path} does not exist.")
    fmt = format_of(path)
    fmt = "tflite" if fmt == "edgetpu" else fmt
    if fmt == "tflite":
        options.update(warm_up=False, external_delegate=external_delegate)
    try:
        return fmt, runtimes.session_class(fmt)(path, threads=threads, **options)
    except MissingDependency as exc:
        if type(exc) is not MissingDependency:  # MissingLibrary: the delegate's own hint says what to do
            raise
        missing = MissingDependency(exc.message, install_hint(fmt))
        missing.extra = EDGEKIT_EXTRAS.get(fmt)  # for a host target: the edgekit extra to install
        raise missing from exc


def _io(session, feed) -> list[dict]:
    """Input specs as run: dynamic dimensions replaced by the fed shape."""
    return [dict(s.to_dict(), shape=list(feed[s.name].shape)) if s.name in feed else s.to_dict()
            for s in session.inputs]


def cmd_probe(args) -> dict:
    """Python, numpy, device and the runtime for each format."""
    out = {"agent_version": AGENT_VERSION, "python": sys.executable, "device": device_info()}
    try:
        import numpy

        out["numpy"] = numpy.__version__
    except ImportError as exc:
        out["numpy"], out["numpy_error"] = None, str(exc)
    out["formats"] = probe_formats()
    return out


def cmd_profile(args) -> dict:
    """Load (timed), first inference, warm-up, then `--runs` timed invokes; the profile payload."""
    _numpy()
    from ..artifacts import FORMATS
    from .feeds import load_feeds, random_feeds

    threads = args.threads or (os.cpu_count() or 1)
    t0 = time.perf_counter()
    preload_runtime(FORMATS.get(os.path.splitext(args.model)[1].lower(), ""))
    import_ms = (time.perf_counter() - t0) * 1000.0
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    fmt, session = open_session(args.model, threads, args.external_delegate)
    init_ms = (time.perf_counter() - t0) * 1000.0
    feeds = load_feeds(args.inputs, session.inputs) if args.inputs else [random_feeds(session.inputs)]
    session.set_inputs(feeds[0])
    t = time.perf_counter()
    session.invoke()
    first_ms = (time.perf_counter() - t) * 1000.0
    session.get_outputs()
    for i in range(args.warmup):
        session.set_inputs(feeds[i % len(feeds)])
        session.invoke()
    times = []
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for i in range(args.runs):
        session.set_inputs(feeds[i % len(feeds)])
        a = clock()
        session.invoke()
        times.append((clock() - a) / 1e6)
    wall = time.perf_counter() - started
    result = {
        "format": fmt,
        "runtime": session.runtime,
        "runtime_version": package_version(RUNTIME_DISTRIBUTIONS.get(session.runtime, session.runtime)),
        "latency_ms": latency_stats(times),
        "samples_ms": times,
        "init_ms": init_ms,
        "import_ms": import_ms,
        "first_inference_ms": first_ms,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": rss0,
        "size_bytes": os.path.getsize(args.model),
        "threads": threads,
        "runs": args.runs,
        "warmup": args.warmup,
        "timed_wall_s": wall,
        "inputs": _io(session, feeds[0]),
        "input_source": "data" if args.inputs else "random",
        "delegation": session.delegation(),
        "ops": None,
        "notes": [],
        "device": device_info(),
    }
    if args.ops and fmt in ("executorch", "onnx"):
        from .op_profiles import executorch_delegation, executorch_ops, onnx_ops

        del session
        runs = max(1, min(args.runs, 20))
        if fmt == "executorch":
            ops, why = executorch_ops(args.model, threads, feeds, runs)
            result["ops"], result["delegation"] = ops, executorch_delegation(ops)
            if why:
                result["notes"].append("No per-operator times: " + why)
        else:
            result["ops"] = onnx_ops(args.model, threads, feeds, runs)
    return result


def cmd_run(args) -> dict:
    """Run every sample of --inputs and write the raw outputs to --outputs (an .npz, samples
    concatenated on the first axis): the device half of on-device parity (the host dequantizes,
    as for local runs)."""
    np = _numpy()
    from .feeds import load_feeds

    fmt, session = open_session(args.model, args.threads or (os.cpu_count() or 1), args.external_delegate)
    feeds = load_feeds(args.inputs, session.inputs)
    outs: dict = {}
    for feed in feeds:
        for name, v in session.run(feed).items():
            outs.setdefault(name, []).append(np.asarray(v))
    np.savez(args.outputs, **{k: np.concatenate(v) for k, v in outs.items()})
    return {"format": fmt, "runtime": session.runtime, "samples": len(feeds), "inputs": _io(session, feeds[0]),
            "outputs": [s.to_dict() for s in session.outputs], "device": device_info()}


def parser() -> argparse.ArgumentParser:
    """The agent's command line (global options go before the subcommand)."""
    p = argparse.ArgumentParser(prog="edgekit_agent", description=__doc__.split("\n\n")[0])
    p.add_argument("--cleanup", metavar="DIR", help="Remove DIR when killed or signalled (and when stdin closes, with --watch-stdin).")
    p.add_argument("--watch-stdin", action="store_true", help="Exit (and clean up) when stdin reaches EOF.")
    p.add_argument("--remove-when-done", action="store_true",
                   help="Also remove the --cleanup DIR after a normal exit (nothing left to fetch: saves a round trip).")
    p.add_argument("--delegate", metavar="LIB", help="Load this external TFLite delegate (e.g. libedgetpu.so.1).")
    p.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE",
                   help="An option for --delegate (repeatable), e.g. device=usb.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("probe")
    pr = sub.add_parser("profile")
    pr.add_argument("model")
    pr.add_argument("--runs", type=int, default=50)
    pr.add_argument("--warmup", type=int, default=5)
    pr.add_argument("--threads", type=int)
    pr.add_argument("--inputs")
    pr.add_argument("--ops", action="store_true", help="Per-operator times where the runtime gives them.")
    ru = sub.add_parser("run")
    ru.add_argument("model")
    ru.add_argument("--inputs", required=True)
    ru.add_argument("--outputs", required=True)
    ru.add_argument("--threads", type=int)
    return p


def main(argv=None) -> int:
    """Run one agent command; print `EDGEKIT-RESULT {json}` and return the exit code."""
    args = parser().parse_args(argv)
    if args.cleanup:
        arm_cleanup(args.cleanup, args.watch_stdin)
    args.external_delegate = None
    if args.delegate:
        args.external_delegate = {"library": args.delegate,
                                  "options": dict(o.split("=", 1) for o in args.delegate_option if "=" in o)}
    t0 = time.perf_counter()
    try:
        body = {"probe": cmd_probe, "profile": cmd_profile, "run": cmd_run}[args.cmd](args)
        payload = {"ok": True, "agent_version": AGENT_VERSION, "result": body, "agent_wall_s": time.perf_counter() - t0}
        code = 0
    except EdgekitError as exc:
        payload = {"ok": False, "agent_version": AGENT_VERSION,
                   "error": {"kind": exc.kind, "message": exc.message, "hint": exc.hint,
                             **({"extra": exc.extra} if getattr(exc, "extra", None) else {})}}
        code = exc.exit_code
    except Exception as exc:  # report, do not crash without a result
        payload = {"ok": False, "agent_version": AGENT_VERSION,
                   "error": {"kind": "failed", "message": f"{exc.__class__.__name__}: {exc}", "hint": None}}
        code = 1
    sys.stdout.write(RESULT_PREFIX + json.dumps(payload, default=_json_default) + "\n")
    sys.stdout.flush()
    if args.cleanup and args.remove_when_done:
        shutil.rmtree(args.cleanup, ignore_errors=True)
    return code


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)

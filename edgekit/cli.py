"""The `edgekit` command. Only click is imported at start-up: frameworks load inside commands,
so `edgekit --help` stays fast."""

from __future__ import annotations

import contextlib
import json
import os
import sys

import click

from ._version import __version__
from .errors import INTERRUPTED, EdgekitError, is_interrupt, watch_ctrl_c

QUANTIZE = ("none", "fp16", "dynamic-int8", "int8", "int16x8")
IO_DTYPES = ("float32", "int8", "uint8", "int16")


class _State:
    debug = False
    quiet = False
    verbose = False
    interrupted_note = "Interrupted; nothing partial was left behind."  # what Ctrl-C leaves, per command


STATE = _State()


def console():
    from rich.console import Console

    # A CI log is not an 80-column terminal: tables there keep their rows on one line.
    width = None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160
    return Console(stderr=True, quiet=STATE.quiet, highlight=False, width=width)


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool):
    """While a command works, anything printed to stdout (TF, converters) goes to stderr, so that
    `--json` output on stdout stays machine-readable."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    saved = os.dup(fd) if fd is not None else None
    try:
        if fd is not None:
            os.dup2(sys.stderr.fileno(), fd)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        if saved is not None:
            os.dup2(saved, fd)
            os.close(saved)


def emit_json(result: dict) -> None:
    click.echo(json.dumps(result, indent=2, default=_json_default))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


QUIET_LOGGERS = ("torchao", "torch.utils._pytree", "executorch", "litert_torch", "absl")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgekit")
@click.option("--debug", is_flag=True, help="Show tracebacks and framework logs.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="More detail on stderr.")
def cli(debug, quiet, verbose):
    """Quantize, convert, verify and profile models for edge devices.

    \b
    Exit codes: 0 ok · 1 a check or budget failed · 2 usage or bad input ·
                3 a dependency or tool is missing · 4 a device or target is unreachable
    """
    STATE.debug, STATE.quiet, STATE.verbose = debug, quiet, verbose
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("GLOG_minloglevel", "2")
        import logging

        # Import-time notices of the PyTorch stack (torchao's optional CUDA kernels, torch's
        # pytree deprecations) are not the user's business; --debug shows them.
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


@cli.command()
@click.argument("model")
@click.option("--to", "to", type=click.Choice(["tflite", "executorch", "torchscript", "edgetpu"]), default="tflite",
              show_default=True, help="Target format.")
@click.option("--quantize", type=click.Choice(QUANTIZE), default="none", show_default=True,
              help="Quantization recipe.")
@click.option("--calibration", metavar="DATA", help="Calibration samples (.npy, .npz, image folder, or 'random').")
@click.option("--data", metavar="DATA", help="Samples for the parity check (default: the calibration data, else random).")
@click.option("--io-dtype", type=click.Choice(IO_DTYPES), default="float32", show_default=True,
              help="Type of the artifact's inputs and outputs (int8/uint8 need --quantize int8).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=1x224x224x3",
              help="Fix a dynamic input shape (repeat per input).")
@click.option("--allow-tf-ops", is_flag=True, help="Allow TensorFlow (Flex) ops; most device runtimes cannot run them.")
@click.option("--weights", metavar="FILE", help="PyTorch state_dict for a file.py:Class model.")
@click.option("--channels-last-io", is_flag=True, help="PyTorch→TFLite: NHWC inputs/outputs for an NCHW model.")
@click.option("--etrecord", is_flag=True,
              help="ExecuTorch: also write MODEL.pte.etrecord (≈2× the .pte) for validate --per-layer.")
@click.option("-o", "--output", metavar="PATH", help="Artifact path (default: MODEL's name + recipe, in the current folder).")
@click.option("--no-validate", is_flag=True, help="Skip the parity check.")
@click.option("--samples", type=click.IntRange(1), help="At most this many parity samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def convert(model, to, quantize, calibration, data, io_dtype, input_shapes, allow_tf_ops, weights,
            channels_last_io, etrecord, output, no_validate, samples, as_json):
    """Convert MODEL to an on-device format, quantize it, and check it against the original.

    \b
    MODEL is a Keras .keras/.h5 file, a TensorFlow SavedModel folder, a PyTorch .pt2
    (torch.export.save) or TorchScript .pt file, or a factory: file.py:function or
    package.module:function returning a keras.Model or torch.nn.Module.

    \b
    Examples:
      edgekit convert digits.keras --quantize int8 --calibration calib.npz
      edgekit convert fcn.h5 --input-shape input=1x40x256x1 --quantize dynamic-int8
    """
    from .build import convert as do_convert, raise_for_parity
    from .report import print_convert

    con = console()
    with stdout_to_stderr(as_json), _progress(con) as progress:
        result = do_convert(
            model, to=to, quantize=quantize, calibration=calibration, data=data, io_dtype=io_dtype,
            input_shapes=input_shapes, allow_tf_ops=allow_tf_ops, output=output, validate=not no_validate,
            weights=weights, channels_last_io=channels_last_io, samples=samples, etrecord=etrecord,
            progress=progress, log=lambda m: con.log(m) if STATE.verbose else None, debug=STATE.debug,
        )
        print_convert(con, result)
    if as_json:
        emit_json(result)
    raise_for_parity(result)


@contextlib.contextmanager
def _progress(con):
    """A progress callback (done, total) that shows a bar only for runs longer than a moment."""
    from rich.progress import Progress

    bar = Progress(console=con, transient=True, disable=STATE.quiet)
    task = None
    with bar:
        def update(done, total):
            nonlocal task
            if task is None:
                task = bar.add_task("parity", total=total)
            bar.update(task, completed=done)

        yield update


@cli.command()
@click.argument("reference")
@click.argument("candidate")
@click.option("--data", metavar="DATA", help="Samples (.npy, .npz keyed by input name with optional 'labels', image folder); default random.")
@click.option("--samples", type=click.IntRange(1), help="At most this many samples.")
@click.option("--per-layer", is_flag=True, help="Localise the divergence: compare intermediate tensors layer by layer.")
@click.option("--preset", type=click.Choice(["fp32", "fp16", "dynamic-int8", "int8", "int16x8"]),
              help="Verdict preset (default: the candidate's precision, from its manifest or the file).")
@click.option("--min-psnr", type=float, metavar="DB", help="Fail below this PSNR (dB) on any output.")
@click.option("--max-abs", type=float, metavar="X", help="Fail above this max absolute difference.")
@click.option("--min-cosine", type=float, metavar="X", help="Fail below this cosine similarity.")
@click.option("--min-top1-agreement", type=float, metavar="X", help="Fail below this top-1 agreement (0..1).")
@click.option("--max-accuracy-drop", type=float, metavar="X", help="Fail when accuracy on labels drops more (0..1).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=1x224x224x3",
              help="Fix a dynamic input shape of the reference model (repeat per input).")
@click.option("--weights", metavar="FILE",
              help="PyTorch reference as file.py:Class: its state_dict or checkpoint (loaded with weights_only=True).")
@click.option("--target", "-t", default=None, metavar="TARGET",
              help="Run the candidate there (host, ssh://user@host[:port], qemu-arm64[:ROOTFS]); the reference runs here.")
@click.option("--accept-new-host-key", is_flag=True, help="SSH: trust an unknown host key and record it in known_hosts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def validate(reference, candidate, data, samples, per_layer, preset, min_psnr, max_abs, min_cosine,
             min_top1_agreement, max_accuracy_drop, input_shapes, weights, as_json, target=None,
             accept_new_host_key=False):
    """Check that CANDIDATE (an artifact) computes what REFERENCE computes.

    \b
    REFERENCE is any MODEL `convert` takes, or an artifact; CANDIDATE is a .tflite, .pte,
    .ptl or .onnx file. Inputs/outputs are matched by name, shape (NCHW/NHWC) and values;
    quantized I/O is handled. Exit 0 pass, 1 fail, 2 bad input.

    \b
    Examples:
      edgekit validate digits.keras digits_int8.tflite --data test.npz
      edgekit validate model_fp32.tflite model_int8.tflite --data test.npz --per-layer --json
      edgekit validate net.py:Net --weights net.pt --input-shape x=1x3x32x32 net.pte
    """
    from .report import print_validate
    from .validation import raise_for_result, validate as do_validate

    thresholds = {"min_psnr_db": min_psnr, "max_abs": max_abs, "min_cosine": min_cosine,
                  "min_top1_agreement": min_top1_agreement, "max_accuracy_drop": max_accuracy_drop}
    con = console()
    with stdout_to_stderr(as_json), _progress(con) as progress:
        result = do_validate(
            reference, candidate, data=data, samples=samples, per_layer=per_layer,
            thresholds={k: v for k, v in thresholds.items() if v is not None}, preset=preset,
            input_shapes=input_shapes, weights=weights, progress=progress,
            log=lambda m: con.log(m) if STATE.verbose else None,
            target=target, target_options={"accept_new_host_key": accept_new_host_key} if target else None,
        )
        print_validate(con, result)
    if as_json:
        emit_json(result)
    raise_for_result(result)


@cli.command("run")
@click.argument("pipeline", required=False, default="edgekit.yaml", metavar="[PIPELINE]")
@click.option("--only", multiple=True, metavar="NAME", help="Run only this build (repeatable).")
@click.option("--out", metavar="DIR", help="Output folder (default: edgekit-out/ beside the pipeline file).")
@click.option("--force", is_flag=True, help="Rebuild and re-measure even when nothing changed.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def run_pipeline(pipeline, only, out, force, as_json):
    """Build, check and profile every build of an edgekit.yaml; exit 1 when a budget fails.

    \b
    Writes OUT/<build>/ (artifact + manifest), OUT/report.json, report.md (for a CI job
    summary) and report.html. Unchanged inputs reuse what OUT already holds.
    """
    from .pipeline import run as run_it
    from .report import print_run

    con = console()
    status = {"built": "[green]built[/]", "cached": "[cyan]cached[/]", "failed": "[red]failed[/]"}

    def on_build(name, state):
        if state != "start":
            con.print(f"  {name}: {status.get(state, state)}")

    STATE.interrupted_note = "Interrupted: the partial report in the output folder says what finished."
    with stdout_to_stderr(as_json):
        with con.status("running the pipeline", spinner="dots") if not STATE.quiet else contextlib.nullcontext():
            report = run_it(pipeline, only=only or None, out=out, force=force,
                            log=lambda m: con.log(m) if STATE.verbose else None, on_build=on_build)
        print_run(con, report)
    if as_json:
        emit_json(report)
    if not report["passed"]:
        from .errors import CheckFailed

        raise CheckFailed(
            f"{report['failed_budgets']} budget(s) failed"
            + (f", build(s) failed: {', '.join(report['failed_builds'])}" if report["failed_builds"] else "") + ".",
            f"See {report['out']}/report.md.",
        )


@cli.command("report")
@click.argument("report_json", metavar="REPORT.json")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("-o", "--output", metavar="PATH", help="Write here instead of stdout.")
def rerender(report_json, fmt, output):
    """Re-render a saved report.json as Markdown or HTML."""
    from .report_files import load_report, to_html, to_json, to_markdown

    report = load_report(report_json)
    text = {"md": to_markdown, "html": to_html, "json": to_json}[fmt](report)
    if output:
        from pathlib import Path

        from .artifacts import atomic_output

        with atomic_output(Path(output).resolve()) as tmp:
            tmp.write_text(text)
    else:
        click.echo(text, nl=False)


TARGET_HELP = "host (default), ssh://user@host[:port] or qemu-arm64[:ROOTFS]."


@cli.command("profile")
@click.argument("artifact")
@click.option("--target", "-t", default="host", show_default=True, metavar="TARGET", help="Where to run: " + TARGET_HELP)
@click.option("--runs", type=click.IntRange(1), default=50, show_default=True, help="Timed runs.")
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True, help="Untimed runs first.")
@click.option("--threads", type=click.IntRange(1), help="Runtime threads (default: the target's core count).")
@click.option("--data", metavar="DATA", help="Inputs (.npy, .npz, image folder); default random by the input specs.")
@click.option("--no-ops", is_flag=True, help="Skip per-operator times (ExecuTorch ETDump, onnxruntime profiler).")
@click.option("--accept-new-host-key", is_flag=True, help="SSH: trust an unknown host key and record it in known_hosts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def profile_cmd(artifact, target, runs, warmup, threads, data, no_ops, accept_new_host_key, as_json):
    """Measure ARTIFACT where it will run: latency distribution, init, first inference, peak
    memory, delegate coverage, per-operator times where the runtime gives them.

    \b
    Each measurement runs in a fresh process with a fixed thread count. Exit 4 when the
    target cannot be reached or lacks the runtime (the message says what to install).

    \b
    Examples:
      edgekit profile model.tflite --runs 100 --threads 4
      edgekit profile model.pte --target ssh://pi@raspberrypi.local --json
      edgekit profile model.tflite --target qemu-arm64
    """
    from .profiling import profile
    from .report import print_profile

    con = console()
    with stdout_to_stderr(as_json):
        with con.status(f"profiling on {target}", spinner="dots") if not STATE.quiet else contextlib.nullcontext():
            result = profile(artifact, target=target, runs=runs, warmup=warmup, threads=threads, data=data,
                             ops=not no_ops, accept_new_host_key=accept_new_host_key)
        print_profile(con, result)
    if as_json:
        emit_json(result)


@cli.group("devices")
def devices():
    """Check the devices edgekit can run on."""


@devices.command("check")
@click.argument("target", default="host")
@click.option("--accept-new-host-key", is_flag=True, help="SSH: trust an unknown host key and record it in known_hosts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def devices_check(target, accept_new_host_key, as_json):
    """Is TARGET reachable, what runtimes does it have, and what to install for the rest.

    TARGET is host (default), ssh://user@host[:port] or qemu-arm64[:ROOTFS]. Exit 4 when it
    cannot be reached.
    """
    from edgekit import targets

    from .report import print_device_check

    con = console()
    with stdout_to_stderr(as_json):
        result = targets.get(target, accept_new_host_key=accept_new_host_key).check()
        print_device_check(con, result)
    if as_json:
        emit_json(result)


@cli.group("emulator")
def emulator():
    """Emulated boards for running artifacts on ARM without hardware."""


@emulator.command("create")
@click.argument("kind", type=click.Choice(["rpi"]))
@click.option("--dir", "dest", metavar="DIR", help="Where to build it (default: ~/.cache/edgekit/emulators/rpi).")
@click.option("--no-executorch", is_flag=True, help="Only ai-edge-litert (skips torch: ~700 MB less).")
@click.option("--force", is_flag=True, help="Rebuild even when a matching one exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def emulator_create(kind, dest, no_executorch, force, as_json):
    """Build an emulated 64-bit Raspberry Pi: arm64 Debian + Python 3.11 + ai-edge-litert and
    ExecuTorch, run with qemu-user (needs root, mmdebstrap, qemu-user-static, binfmt-support).

    Use it with --target qemu-arm64[:DIR]. Its timings are emulated (200–600× slower than a board).
    """
    from edgekit.targets import qemu

    con = console()
    runtimes = ("litert",) if no_executorch else ("litert", "executorch")
    with stdout_to_stderr(as_json):
        with con.status("building the emulated board", spinner="dots") if not STATE.quiet else contextlib.nullcontext():
            result = qemu.create(kind, dest, runtimes=runtimes, force=force, log=con.log)
        where = result["path"]
        con.print(f"[green]{'found' if result['cached'] else 'built'}[/] {kind} at {where} "
                  f"({', '.join(result['runtimes'])}); use --target qemu-arm64"
                  + ("" if dest is None else f":{where}"))
    if as_json:
        emit_json(result)


@cli.command("inspect")
@click.argument("model")
@click.option("--edgetpu", is_flag=True, help="Predict what a Coral Edge TPU compiler will map (offline, any OS).")
@click.option("--require-full", is_flag=True, help="Exit 1 unless every op is predicted on the Edge TPU.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def inspect_cmd(model, edgetpu, require_full, as_json):
    """Inspect a .tflite: with --edgetpu, whether and how much of it will run on a Coral Edge TPU.

    \b
    Reads the flatbuffer only (no compiler, no device): 8-bit tensors, static shapes, at most 3
    innermost dimensions above 1, Edge TPU ops within their documented limits, and where the
    compiler will cut the graph (everything after the first unsupported op runs on the CPU).
    """
    from .edgetpu_compat import analyze

    if not edgetpu:
        raise click.UsageError("Say what to inspect: --edgetpu.")
    result = {"schema_version": 1, "kind": "inspect-edgetpu", **analyze(model)}
    con = console()
    from rich.table import Table

    t = Table(title=f"Edge TPU prediction · {model}", title_justify="left")
    for col in ("op", "count", "predicted status"):
        t.add_column(col, justify="right" if col == "count" else "left")
    for row in result["table"]:
        style = "green" if row["status"] == "Mapped to Edge TPU" else "yellow"
        t.add_row(row["op"], str(row["count"]), f"[{style}]{row['status']}[/]")
    con.print(t)
    for issue in result["model_issues"]:
        con.print(f"[yellow]{issue}[/]")
    if result["cut"]:
        c = result["cut"]
        con.print(f"[yellow]The compiler will cut the graph at op {c['index']} ({c['op']}: {c['reason']}); "
                  f"{c['ops_after_on_cpu']} op(s) after it run on the CPU.[/]")
    from rich.markup import escape

    for r in result["risks"]:
        con.print(f"  risk: {escape(r)}")
    con.print(f"predicted on the Edge TPU: {result['predicted_tpu_ops']}/{result['total_ops']} ops "
              f"({100 * result['predicted_tpu_share']:.0f}%)" + (" · already compiled" if result["already_compiled"] else ""))
    if as_json:
        emit_json(result)
    if require_full and not result["compatible"]:
        raise CheckFailedForInspect()


@devices.command("adb")
@click.option("--clean", "clean", metavar="SERIAL", help="Remove edgekit-* folders left in /data/local/tmp on SERIAL.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def devices_adb(clean, as_json):
    """List Android devices (adb): serial, state, model, ABI, Android version; use one with
    --target adb:SERIAL."""
    from edgekit.targets import android

    con = console()
    if clean:
        n = android.AndroidTarget(f"adb:{clean}").cleanup_stale()
        result = {"schema_version": 1, "kind": "devices-adb-clean", "serial": clean, "removed": n}
        con.print(f"removed {n} edgekit folder(s) on {clean}")
    else:
        devs = android.list_devices()
        result = {"schema_version": 1, "kind": "devices-adb", "devices": devs}
        from rich.table import Table

        t = Table(title="adb devices", title_justify="left")
        for col in ("target", "state", "model", "abi", "android", "soc"):
            t.add_column(col)
        for d in devs:
            t.add_row(d["target"], d["state"], *(str(d.get(k) or "") for k in ("model", "abi", "android", "soc")))
        con.print(t if devs else "no Android device attached (adb devices -l)")
    if as_json:
        emit_json(result)


def CheckFailedForInspect():
    from .errors import CheckFailed

    return CheckFailed("Not every op is predicted to run on the Edge TPU (see above).",
                       "Replace the unsupported ops, quantize fully to int8, fix the shapes.")


def main(argv=None):
    watch_ctrl_c()
    try:
        cli.main(args=argv, prog_name="edgekit", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        interrupted = is_interrupt(exc) or isinstance(exc, click.exceptions.Abort)
        if not interrupted and isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if not interrupted and not isinstance(exc, EdgekitError):
            raise
        if STATE.debug:
            import traceback

            traceback.print_exc()
        if interrupted:
            exc = EdgekitError(STATE.interrupted_note)
        _print_error(exc)
        sys.exit(INTERRUPTED if interrupted else exc.exit_code)


def _print_error(exc: EdgekitError) -> None:
    msg = f"error: {exc.message}"
    if exc.hint:
        msg += f"\n  {exc.hint}"
    click.echo(msg, err=True)

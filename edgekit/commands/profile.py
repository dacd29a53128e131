"""`edgekit profile ARTIFACT`: latency, memory and delegation where the artifact will run."""

from __future__ import annotations

import click

from .options import host_key_option, json_option, target_option, threads_warning, within_limit
from .output import show


@click.command("profile")
@click.argument("artifact")
@target_option()
@click.option("--runs", type=click.IntRange(1), default=50, show_default=True, callback=within_limit("max_runs"),
              help="Timed runs.")
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True, callback=within_limit("max_warmup"),
              help="Untimed runs first.")
@click.option("--threads", type=click.IntRange(1), callback=within_limit("max_threads"),
              help="Runtime threads (default: the target's core count).")
@click.option("--data", metavar="DATA", help="Inputs (.npy, .npz, image folder); default random by the input specs.")
@click.option("--no-ops", is_flag=True, help="Skip per-operator times (ExecuTorch ETDump, onnxruntime profiler).")
@click.option("--baseline", metavar="ARTIFACT",
              help="Also profile this artifact (e.g. the float build) on the same target with the same settings "
                   "and state how ARTIFACT compares: will int8 help on this device?")
@host_key_option
@json_option()
def profile_command(artifact, target, runs, warmup, threads, data, no_ops, baseline, accept_new_host_key, as_json):
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
      edgekit profile model_int8.pte --baseline model.pte
    """
    from edgekit.limits import existing_regular
    from edgekit.profiling import profile
    from edgekit.report import print_profile

    existing_regular(artifact, "The artifact")  # a FIFO or device: refused before anything reads it
    if baseline:
        existing_regular(baseline, "The baseline artifact")

    def work(con):
        kw = dict(target=target, runs=runs, warmup=warmup, threads=threads, data=data, ops=not no_ops,
                  accept_new_host_key=accept_new_host_key)
        base = profile(baseline, **kw) if baseline else None
        result = profile(artifact, **kw)
        if base is not None:
            from edgekit.profiling import compare

            result["comparison"] = compare(result, base)
        warning = threads_warning(threads, result)  # more threads than cores: a warning, not an error
        if warning:
            result.setdefault("warnings", []).append(warning)
        return result

    show(as_json, work, print_profile, status=f"profiling on {target}")

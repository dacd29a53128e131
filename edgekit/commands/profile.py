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
    if baseline is not None:
        _check_baseline(artifact, baseline)

    def work(con):
        kw = dict(target=target, runs=runs, warmup=warmup, threads=threads, data=data, ops=not no_ops,
                  accept_new_host_key=accept_new_host_key)
        result = profile(artifact, **kw)  # first: a bad artifact fails before the baseline is measured
        base = _profile_baseline(profile, baseline, kw) if baseline is not None else None
        if base is not None:
            from edgekit.profiling import MIN_COMPARE_RUNS, compare

            result["comparison"] = compare(result, base)
            if runs < MIN_COMPARE_RUNS:
                result.setdefault("warnings", []).append(
                    f"The comparison rests on {runs} timed run(s) of each: medians of so few runs can move by "
                    f"several times between two profiles. Use --runs {MIN_COMPARE_RUNS * 5} or more for a verdict.")
            shapes = [[i["name"], i["shape"]] for i in result["inputs"]], [[i["name"], i["shape"]] for i in base["inputs"]]
            if shapes[0] != shapes[1]:  # not two builds of one model: the speeds answer a different question
                result.setdefault("warnings", []).append(
                    f"{baseline} takes other inputs than {artifact} ({_shapes(shapes[1])} vs {_shapes(shapes[0])}): "
                    "it is not a build of the same model, so the comparison is not about quantization.")
        warning = threads_warning(threads, result)  # more threads than cores: a warning, not an error
        if warning:
            result.setdefault("warnings", []).append(warning)
        return result

    show(as_json, work, print_profile, status=f"profiling on {target}")


def _check_baseline(artifact: str, baseline: str) -> None:
    """Refuse (BadInput, exit 2) an empty, missing or non-regular BASELINE, and one that is
    ARTIFACT itself (a comparison with itself says nothing), before anything is measured."""
    import os
    from pathlib import Path

    from edgekit.errors import BadInput
    from edgekit.limits import existing_regular

    if not baseline.strip():
        raise BadInput("--baseline is empty.", "Pass the artifact to compare with, e.g. --baseline model.tflite "
                       "(the float build of the same model).")
    existing_regular(baseline, "The baseline artifact")
    if not Path(baseline).exists():
        raise BadInput(f"The baseline artifact {baseline} does not exist.",
                       "Pass the other build of the model (a .tflite, .pte, .ptl or .onnx file).")
    if Path(artifact).exists() and os.path.samefile(artifact, baseline):
        raise BadInput(f"--baseline {baseline} is {artifact} itself: a comparison with itself says nothing.",
                       "Pass the other build of the model, e.g. the float one beside the int8 one.")


def _profile_baseline(profile, baseline: str, kw: dict) -> dict:
    """PROFILE(BASELINE, **KW); an input error (exit 2: data that does not fit, a corrupt file)
    names the baseline, since the user would otherwise look for it in the artifact."""
    from edgekit.errors import BadInput

    try:
        return profile(baseline, **kw)
    except BadInput as exc:
        if baseline not in exc.message:
            exc.message = f"The baseline {baseline}: {exc.message}"
            exc.args = (exc.message,)
        raise


def _shapes(named: list) -> str:
    """[[name, shape]] as "image 1x8x8x1, mask 1x8"."""
    return ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in named)

"""edgekit: quantize, convert, verify and profile models for edge devices.

The Python API mirrors the CLI. Each function returns a typed result (edgekit/results.py)
that is also the very dict `--json` prints, so both styles work:

    result = edgekit.convert(model, to="tflite", quantize="int8", calibration=..., data=...)
    result.parity.passed == result["parity"]["passed"]
    result.to_dict()                       # plain JSON data, as `convert --json` prints it
    edgekit.validate(reference, candidate, data=..., per_layer=False)   -> ValidateResult
    edgekit.profile(artifact, target="host", runs=50)                   -> ProfileResult
    edgekit.run("edgekit.yaml")                                         -> RunReport

Errors are `edgekit.errors.EdgekitError` subclasses carrying the CLI's exit code:
BadInput (2), CheckFailed (1), MissingDependency (3), TargetUnreachable (4).
Frameworks are imported on first use, never at `import edgekit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .results import ConvertResult, ProfileResult, RunReport, ValidateResult

__all__ = ["__version__", "convert", "validate", "profile", "run", "SCHEMA_PATH",
           "ConvertResult", "ValidateResult", "ProfileResult", "RunReport"]

_RESULT_TYPES = ("ConvertResult", "ValidateResult", "ProfileResult", "RunReport")


def convert(model, to: str = "tflite", quantize: str = "none", calibration=None, data=None,
            io_dtype: str = "float32", input_shapes=(), allow_tf_ops: bool = False, output=None,
            validate: bool = True, weights=None, signature: str | None = None, channels_last_io: bool = False,
            samples: int | None = None, etrecord: bool = False, thresholds: dict | None = None,
            allow_float_fallback: bool = False, max_accuracy_drop: float | None = None,
            min_top1_agreement: float | None = None, min_psnr: float | None = None, progress=None, log=None,
            debug: bool = False, **options) -> ConvertResult:
    """Quantize and convert MODEL to an on-device artifact, write it with its manifest, check parity.

    The same work as `edgekit convert` (edgekit/build.py `convert`). The artifact is written
    atomically, with `<artifact>.json` (its manifest) beside it.

    Args:
        model: a Keras `.keras`/`.h5`/`.hdf5` file, a TensorFlow SavedModel folder, a PyTorch
            `.pt2` ExportedProgram or TorchScript `.pt`, a factory `"file.py:function"` or
            `"package.module:function"` (str or Path); or a model object built in Python: a
            `keras.Model`, a `torch.nn.Module`, or a pair `(module, example_inputs)`.
        to: target format: "tflite", "executorch" (.pte), "torchscript" (.ptl) or "edgetpu";
            the formats each framework supports are in edgekit.converters.TARGET_FORMATS.
        quantize: recipe: "none", "fp16", "dynamic-int8", "int8" (full integer, needs
            calibration) or "int16x8" (int16 activations, needs calibration).
        calibration: representative samples for "int8"/"int16x8": a `.npy` file (one input,
            samples stacked on axis 0), a `.npz` (one array per input name), a folder of images
            (resized to the input shape, scaled to [0, 1]), or "random" to accept random ranges
            knowingly. Float inputs need float arrays (integer arrays are refused).
        data: samples for the parity check, in the same forms (a `labels` array in the `.npz`
            adds task accuracy); default: the calibration data, else 32 random samples.
        io_dtype: dtype of the artifact's inputs and outputs: "float32", "int8", "uint8"
            (with quantize="int8") or "int16".
        input_shapes: fixed shapes for dynamic dimensions: strings like `"image=1x224x224x3"`
            (as `--input-shape`, one per input; a bare `"1x224x224x3"` applies by position), or
            a dict `{name or position: [dims]}`.
        allow_tf_ops: allow TensorFlow (Flex) ops; parity is then skipped (ai-edge-litert
            cannot run them).
        output: artifact path (str or Path) with the format's suffix; default: the model's
            name plus the recipe, in the current folder.
        validate: run the artifact beside the model and report parity (False skips it:
            `parity` is None).
        weights: a state_dict file for a PyTorch model given as `"file.py:Class"`
            (loaded with `torch.load(weights_only=True)`).
        signature: the signature of a SavedModel folder to convert and check (default
            "serving_default"; the others are named in a warning).
        channels_last_io: NHWC inputs/outputs for an NCHW PyTorch model converted to TFLite.
        samples: at most this many parity samples (None: all).
        etrecord: ExecuTorch only: also write `<name>.pte.etrecord` for per-layer validation.
        thresholds: overrides of the parity preset, keys "min_psnr_db" (dB), "max_abs",
            "min_cosine", "min_top1_agreement" (fraction), "max_accuracy_drop" (fraction);
            presets per recipe are edgekit/parity.py PRESETS.
        allow_float_fallback: accept an int8 build that came back float or hybrid (otherwise
            the files are written and the result says so; the CLI exits 1).
        max_accuracy_drop, min_top1_agreement, min_psnr: a bar for accuracy-aware int8
            (points of task accuracy with labels, a fraction 0..1, dB): the fewest most harmful
            layers stay float until the bar holds on held-out samples (`quantization.search`).
        progress: a callable `(done, total)` called after each parity sample.
        log: a callable taking one message string per step (None: silent).
        debug: let the converter's native log output through (as `--debug`).
        **options: any further keyword of edgekit.build.convert, passed through.

    Returns:
        ConvertResult (`$defs/convert` in edgekit/schemas/report.schema.json); a parity
        failure is `result.parity.passed` False, not an exception.

    Raises:
        BadInput (exit 2): unknown format or recipe, missing calibration, bad data or shapes,
            an unwritable or misnamed output, a model that cannot be loaded.
        MissingDependency (exit 3): the framework or converter is not installed.
        CheckFailed (exit 1): the converted artifact fails to load or run (missing kernel).
    """
    from .build import convert as _convert
    from .results import ConvertResult

    return ConvertResult.from_dict(_convert(
        model, to=to, quantize=quantize, calibration=calibration, data=data, io_dtype=io_dtype,
        input_shapes=input_shapes, allow_tf_ops=allow_tf_ops, output=output, validate=validate, weights=weights,
        signature=signature, channels_last_io=channels_last_io, samples=samples, etrecord=etrecord,
        thresholds=thresholds, allow_float_fallback=allow_float_fallback, max_accuracy_drop=max_accuracy_drop,
        min_top1_agreement=min_top1_agreement, min_psnr=min_psnr, progress=progress, debug=debug,
        **_given(log=log), **options))


def validate(reference, candidate, data=None, samples: int | None = None, per_layer: bool = False,
             thresholds: dict | None = None, target: str | None = None, *, preset: str | None = None,
             input_shapes=(), weights: str | None = None, signature: str | None = None, threads: int | None = None,
             target_options: dict | None = None, progress=None, log=None, **options) -> ValidateResult:
    """Check that CANDIDATE (an artifact) still computes what REFERENCE computes, on DATA.

    The same work as `edgekit validate` (edgekit/validation.py `validate`): inputs and outputs
    are matched by name, then shape (NCHW ↔ NHWC transposed), then values; integer I/O is
    (de)quantized with its scale and zero-point.

    Args:
        reference: anything `convert` accepts as `model` (file, factory string or model
            object), or another artifact file.
        candidate: the artifact file (str or Path): `.tflite`, `.pte`, `.ptl` or `.onnx`.
        data: samples as for `convert` (`.npy`, `.npz` with optional `labels`, image folder);
            None or "random": 32 random samples, with a warning (plumbing, not accuracy).
        samples: at most this many samples (None: all).
        per_layer: also compare intermediate tensors layer by layer (`.tflite` against a
            Keras/PyTorch model or another `.tflite`; `.pte` converted with `etrecord=True`):
            adds `layers` and `first_divergence`.
        thresholds: overrides of the preset (keys as for `convert`).
        target: where the candidate runs: None/"host" (here), "ssh://user@host[:port]" or
            "qemu-arm64[:ROOTFS]"; the reference always runs on the host.
        preset: verdict preset "fp32", "fp16", "dynamic-int8", "int8" or "int16x8"; default
            from the candidate's manifest recipe, else from its tensor types.
        input_shapes: fixed shapes for the reference, as for `convert`.
        weights: state_dict for a PyTorch reference given as `"file.py:Class"`.
        signature: the signature of a SavedModel reference to compare (default "serving_default").
        threads: interpreter threads for the runtimes (None: the runtime's default).
        target_options: keyword options for the target (e.g. `accept_new_host_key`).
        progress: a callable `(done, total)` called after each sample.
        log: a callable taking one message string per step (None: silent).
        **options: any further keyword of edgekit.validation.validate, passed through.

    Returns:
        ValidateResult (`$defs/validate` in edgekit/schemas/report.schema.json);
        `passed` False is a failed check (the CLI exits 1), not an exception.

    Raises:
        BadInput (exit 2): a missing, unknown or corrupt candidate, unknown preset, bad data,
            inputs that cannot be matched, per-layer on an unsupported pair.
        MissingDependency (exit 3): a runtime or framework is not installed.
        TargetUnreachable (exit 4): `target` cannot be reached or lacks its runtime.
    """
    from .results import ValidateResult
    from .validation import validate as _validate

    return ValidateResult.from_dict(_validate(
        reference, candidate, data=data, samples=samples, per_layer=per_layer, thresholds=thresholds, target=target,
        preset=preset, input_shapes=input_shapes, weights=weights, signature=signature, threads=threads,
        target_options=target_options,
        progress=progress, **_given(log=log), **options))


def profile(artifact, target: str | None = "host", *, runs: int = 50, warmup: int = 5, threads: int | None = None,
            data=None, ops: bool = True, accept_new_host_key: bool = False, python: str | None = None,
            **options) -> ProfileResult:
    """Measure ARTIFACT's latency, memory and delegation where it will run.

    The same work as `edgekit profile` (edgekit/profiling.py `profile`). Every measurement
    runs in a fresh process with a fixed thread count.

    Args:
        artifact: `.tflite`, `.pte`, `.ptl` or `.onnx` file (str or Path).
        target: "host" (default, or None), "ssh://user@host[:port]" (key auth; edgekit pushes
            the artifact and an agent) or "qemu-arm64[:ROOTFS]" (emulated: timings labelled
            `emulated`, not device speed).
        runs: timed runs, ≥ 1 (latency percentiles are taken over these).
        warmup: untimed runs before them, ≥ 0.
        threads: interpreter threads (None: the runtime's default, reported in `threads`).
        data: input samples (`.npy`/`.npz` as for `convert`); None: random inputs.
        ops: per-operator times where the runtime gives them (ExecuTorch ETDump, onnxruntime).
        accept_new_host_key: ssh only: trust a host key not yet in known_hosts (else refused).
        python: ssh only: the board's Python that runs the agent (None: the target string's
            setting, else $EDGEKIT_SSH_PYTHON, else "python3").
        **options: any further keyword of edgekit.profiling.profile, passed through.

    Returns:
        ProfileResult (`$defs/profile` in edgekit/schemas/report.schema.json): `latency_ms`
        (min/p50/p90/p99/mean/std/max, ms), `init_ms`, `first_inference_ms`, `peak_rss_mb`
        (MiB), `size_bytes`, `delegation`, `device`.

    Raises:
        BadInput (exit 2): runs < 1 or warmup < 0, unknown target string, missing or corrupt
            artifact.
        MissingDependency (exit 3): the artifact's runtime is not installed on the host.
        TargetUnreachable (exit 4): the device cannot be reached or lacks its runtime.
    """
    from .profiling import profile as _profile
    from .results import ProfileResult

    return ProfileResult.from_dict(_profile(artifact, target, runs=runs, warmup=warmup, threads=threads, data=data,
                                            ops=ops, accept_new_host_key=accept_new_host_key, python=python,
                                            **options))


def run(pipeline, only=None, out=None, force: bool = False, log=None, on_build=None, **options) -> RunReport:
    """Run a pipeline file: every build converted, checked, profiled on every target, judged.

    The same work as `edgekit run` (edgekit/pipeline.py `run`). Writes report.json,
    report.md and report.html to the output folder; unchanged builds are reused from it.

    Args:
        pipeline: path (str or Path) to an edgekit.yaml, or a loaded
            edgekit.pipeline_file.Pipeline.
        only: iterable of build names to run (None: all).
        out: output folder (default: `edgekit-out` beside the pipeline file).
        force: rebuild even when a cached artifact matches.
        log: a callable taking one message string per step (None: silent).
        on_build: a callable `(build_name, status)`, told "start" and then the build's status.
        **options: any further keyword of edgekit.pipeline.run, passed through.

    Returns:
        RunReport (`$defs/run` in edgekit/schemas/report.schema.json); failed budgets or
        builds are `passed` False (the CLI exits 1), not an exception.

    Raises:
        BadInput (exit 2): a malformed pipeline file, unknown `only` names, missing data
            paths, a build that cannot apply, an unwritable output folder.
        KeyboardInterrupt: after writing the partial report (`interrupted` true).
    """
    from .pipeline import run as _run
    from .results import RunReport

    return RunReport.from_dict(_run(pipeline, only=only, out=out, force=force,
                                    **_given(log=log, on_build=on_build), **options))


def _given(**callbacks) -> dict:
    """The callbacks the caller gave (None keeps the underlying function's silent default)."""
    return {k: v for k, v in callbacks.items() if v is not None}


def __getattr__(name):
    if name in _RESULT_TYPES:
        from . import results

        return getattr(results, name)
    if name == "SCHEMA_PATH":
        from pathlib import Path

        return Path(__file__).parent / "schemas" / "report.schema.json"
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")

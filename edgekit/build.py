"""`edgekit convert`: load → quantize/convert → load-and-run → parity → artifact + manifest."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

from . import __version__
from .artifacts import atomic_output, check_writable
from .data import DataWarning, load_samples, shapes_from_data
from .errors import BadInput, CheckFailed, DataRejected, MissingDependency, ShapeNeeded, raise_if_ctrl_c_seen
from .isolation import plain, run_in_child, step
from .specs import parse_input_shapes

SCHEMA_VERSION = 1


def default_output(model: str, to: str, recipe: str, io_dtype: str) -> Path:
    """The artifact path when -o is not given: MODEL's stem (file_function for a factory) +
    "_<recipe>" (not for "none") + "_<io_dtype>io" (not for float32) + the format's suffix
    (edgekit.converters.suffix_for), in the current folder; "_static" is added when that would be
    the model file itself (an .onnx requantized or fixed to static shapes). Raises BadInput for
    an unknown TO."""
    from edgekit.converters import suffix_for

    suffix = suffix_for(to)
    factory = ":" in model and not Path(model).exists()
    base, _, func = model.rpartition(":") if factory else (model, "", "")
    stem = Path(base.rstrip("/")).stem or "model"
    if factory:  # file.py:build → file_build; package.module:build → module_build
        stem = f"{stem.rpartition('.')[2]}_{func}"
    tag = "" if recipe == "none" else f"_{recipe.replace('-', '_')}"
    if io_dtype != "float32":
        tag += f"_{io_dtype}io"
    path = Path.cwd() / f"{stem}{tag}{suffix}"
    if not factory and path == Path(base).resolve():  # model.onnx --to onnx: never the original's name
        path = path.with_name(f"{stem}_static{suffix}")
    return path


def convert(
    model,
    to: str = "tflite",
    quantize: str = "none",
    calibration=None,
    data=None,
    io_dtype: str = "float32",
    input_shapes=(),
    allow_tf_ops: bool = False,
    output=None,
    validate: bool = True,
    weights=None,
    signature: str | None = None,
    channels_last_io: bool = False,
    samples: int | None = None,
    etrecord: bool = False,
    thresholds: dict | None = None,
    allow_float_fallback: bool = False,
    max_accuracy_drop: float | None = None,
    min_top1_agreement: float | None = None,
    min_psnr: float | None = None,
    progress=None,
    log=lambda msg: None,
    debug: bool = False,
    isolate: bool | None = None,
) -> dict:
    """Convert MODEL and check it. Returns the result dict that `--json` prints.

    With ISOLATE (default: on unless the environment sets EDGEKIT_ISOLATE=0) and arguments that
    are plain data (a model path or factory reference, data paths: what the CLI and pipelines
    pass), the work runs in a child process (edgekit.isolation): a native crash in a converter
    becomes CheckFailed (exit 1) naming the step and signal, with nothing partial left.
    In-memory models and arrays run in this process. EDGEKIT_ISOLATE=0 saves the child's
    framework imports (~4 s) in a long-lived Python that already has them, at the price of that
    process dying with a native crash.

    ALLOW_FLOAT_FALLBACK accepts an int8/int16x8/fp16/dynamic-int8 build that came back float
    or hybrid; otherwise the result's `quantization.fallback.passed` is false and the CLI exits
    1 after writing the files (edgekit.quantization.fallback).

    MAX_ACCURACY_DROP (points, needs labels in the data), MIN_TOP1_AGREEMENT (0..1) or MIN_PSNR
    (dB), with `quantize="int8"`, run the accuracy-aware search (edgekit.quantization.search):
    the most harmful layers stay float until the bar holds; calibration, search and verdict
    use disjoint splits of the data (`quantization.search.splits`), and `parity` is judged on
    the held-out split against that bar. Raises BadInput (exit 2) for a bar without int8, two
    bars, or data too small to split.

    SIGNATURE picks the signature of a SavedModel folder (default serving_default); the file
    holds that one and the others are named in a note.

    Raises EdgekitError subclasses for bad input; a parity failure is reported in the result
    (`parity.passed` false), and the CLI turns it into exit 1 after the files are written.
    """
    from edgekit import converters
    from edgekit.quantization import get_recipe

    from .sources import from_object, load_model

    if to not in converters.formats():
        raise BadInput(f"Unknown target format {to!r}.", "Choose --to " + " | ".join(converters.formats()))
    recipe = get_recipe(quantize, io_dtype)
    from edgekit.quantization.search import bar_from

    bar = bar_from(max_accuracy_drop, min_top1_agreement, min_psnr, recipe.name)
    if recipe.needs_calibration and calibration is None:
        raise BadInput(
            f"--quantize {recipe.name} needs calibration data to choose the ranges of the activations.",
            "Pass --calibration DATA with a few hundred representative samples (.npy, .npz keyed by input "
            "name, or a folder of images), or --calibration random to accept random ranges knowingly "
            "(the accuracy will suffer).",
        )
    shapes = parse_input_shapes(input_shapes)
    model_label = model if isinstance(model, (str, Path)) else type(model).__name__
    dest = Path(output) if output else default_output(str(model_label), to, recipe.name, io_dtype)
    dest = dest.resolve()
    if isinstance(model, (str, Path)) and Path(model).is_file() and Path(model).resolve() == dest:
        raise BadInput(f"The output {dest} is the model itself: converting would overwrite the original.",
                       "Pass -o with another file name.")
    check_writable(dest)  # before minutes of work, not after
    args = dict(model=model, to=to, quantize=quantize, calibration=calibration, data=data, io_dtype=io_dtype,
                input_shapes=input_shapes, allow_tf_ops=allow_tf_ops, output=str(dest), validate=validate,
                weights=weights, signature=signature, channels_last_io=channels_last_io, samples=samples,
                etrecord=etrecord,
                thresholds=thresholds, allow_float_fallback=allow_float_fallback,
                max_accuracy_drop=max_accuracy_drop, min_top1_agreement=min_top1_agreement, min_psnr=min_psnr,
                debug=debug)
    if isolate is None:
        isolate = os.environ.get("EDGEKIT_ISOLATE", "1") != "0"
    if isolate and plain(args):
        return run_in_child("edgekit.build:convert", {**args, "isolate": False}, output=dest, log=log,
                            progress=progress, debug=debug)
    timings = {}
    t0 = time.perf_counter()
    log(f"Loading {model_label}")
    step(f"loading {model_label}")
    by_signature = {"signature": signature} if signature else {}  # loaders without the option keep working

    def load(given):
        return (load_model(str(model), given, weights, **by_signature) if isinstance(model, (str, Path))
                else from_object(model, model_label, given))

    from_data = {}
    try:
        source = load(shapes)
    except ShapeNeeded:
        from_data = {} if shapes else shapes_from_data(data if data is not None else calibration)
        if not from_data:
            raise
        source = load(from_data)  # an input without a fixed shape takes the data's, batch 1
    timings["load_s"] = time.perf_counter() - t0
    module = converters.converter_for(to, source.framework)
    if recipe.name not in module.RECIPES:
        raise BadInput(
            f"--quantize {recipe.name} is not available for {source.framework} → {to}.",
            f"This path supports: {', '.join(module.RECIPES)}.",
        )
    if dest.suffix != module.SUFFIX and not (to in ("tflite", "edgetpu") and dest.name.endswith(".tflite")):
        raise BadInput(f"The output {dest.name} does not end in {module.SUFFIX}.", f"Name it *{module.SUFFIX}.")
    notes: list[str] = []
    if from_data:
        notes.append("No --input-shape given: input shapes taken from the data ("
                     + ", ".join(f"{s.name}={'x'.join(map(str, s.shape))}" for s in source.inputs) + ").")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calib = None
        if recipe.needs_calibration:
            calib = load_samples(calibration, source.inputs, n_random=100, what="calibration data")
            step("running the model on the calibration data")
            check_calibration_finite(source, calib)
        check_samples = None
        if validate:
            check_samples = load_samples(data if data is not None else calibration, source.inputs,
                                         n_random=32, what="validation data")
            check_samples = check_samples.take(samples)
        search_request = None
        if bar is not None:  # disjoint calibration / search / held-out splits; the verdict is on held-out
            calib, check_samples, search_request = _search_request(source, calib, data, calibration, bar, samples,
                                                                   log)
            thresholds = {**(thresholds or {}), bar.threshold_key: bar.threshold}
            validate = True
    notes += [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    notes += calibration_notes(calib, check_samples if validate and data is None and bar is None else None)
    options = converters.ConvertOptions(calibration=calib, io_dtype=io_dtype, allow_tf_ops=allow_tf_ops,
                                        channels_last_io=channels_last_io, debug=debug,
                                        extra={"etrecord": True} if etrecord else {})
    if search_request is not None:
        options.extra["search"] = search_request
    parity = None
    with atomic_output(dest) as tmp_dest:  # renamed to dest only when everything below succeeded
        log(f"Converting to {to} ({recipe.name})")
        step(f"converting to {to} ({recipe.name})", crash_hint(source, recipe))
        t0 = time.perf_counter()
        artifact = module.convert(source, recipe, tmp_dest, options)
        timings["convert_s"] = time.perf_counter() - t0
        if validate and artifact.extra.get("flex_ops"):
            notes.append(
                f"Parity not checked: the model needs TensorFlow Flex ops ({', '.join(artifact.extra['flex_ops'])}), "
                "which ai-edge-litert cannot run. Only an app linked with the Flex delegate can run this file."
            )
        elif validate:
            from . import parity as parity_mod
            from .runtimes import load as load_runtime

            log(f"Checking parity on {len(check_samples)} sample(s)")
            step("checking parity (running the artifact)")
            t0 = time.perf_counter()
            session = load_runtime(tmp_dest)
            try:
                parity = parity_mod.check(source.reference, session, check_samples, recipe.precision, thresholds,
                                          progress)
            except (MissingDependency, DataRejected):  # the user's data breaks the model itself: bad input
                raise
            except Exception as exc:  # the build is whole: a check that cannot run it is a failed check, kept
                parity = parity_mod.failed_run(exc, recipe.precision, thresholds, check_samples)
            timings["parity_s"] = time.perf_counter() - t0
        raise_if_ctrl_c_seen()  # the converter may have swallowed it and calibrated on fewer samples
    artifact.path = dest
    if artifact.quantization.get("effective") is False and artifact.quantization.get("note"):
        notes.append(f"--quantize {recipe.name} had no effect: {artifact.quantization['note']}")
    notes += artifact.extra.pop("notes", [])
    from edgekit.quantization.fallback import assess
    from edgekit.quantization.search import notes as search_notes

    notes += search_notes(artifact.quantization)

    fb = assess(recipe.name, artifact.quantization, allow_float_fallback)
    artifact.quantization["fallback"] = fb
    if fb["reason"]:
        notes.append(f"{fb['reason']}: " + ("accepted (--allow-float-fallback)." if fb["accepted"] else
                                             "the build fails (exit 1) unless --allow-float-fallback accepts it."))
    artifact.source = source.provenance()
    artifact.tools = {"edgekit": __version__, **artifact.tools}
    if parity is not None:
        artifact.extra["parity"] = parity.to_dict()
    artifact.write_manifest()
    result = {
        "schema_version": SCHEMA_VERSION,
        "kind": "convert",
        **artifact.to_dict(),
        "manifest": str(artifact.manifest_path),
        "source_size_bytes": source.size_bytes,
        "parity": parity.to_dict() if parity else None,
        "timings": timings,
        "warnings": notes,
    }
    return result


def _search_request(source, calib, data, calibration, bar, samples, log):
    """Split the user's data for the accuracy-aware search (edgekit.quantization.search.split)
    and compute the float reference on the search split. Returns (calibration split, held-out
    split capped at SAMPLES, the converter's `options.extra["search"]`). BadInput (exit 2) from
    `split`."""
    from edgekit.quantization.search import split

    other = None
    if data is not None and str(data) != str(calibration):
        other = load_samples(data, source.inputs, n_random=0, what="validation data")
    calib, search, holdout, sizes = split(calib, other, bar)
    holdout = holdout.take(samples)
    sizes["holdout"] = len(holdout)
    log(f"Accuracy-aware int8 ({bar}): calibration {sizes['calibration']}, search {sizes['search']}, "
        f"held-out {sizes['holdout']} samples")
    reference = source.reference(search.inputs)
    return calib, holdout, {"bar": bar, "samples": search, "reference": list(reference.values()),
                            "reference_names": list(reference), "splits": sizes, "log": log}


FEW_CALIBRATION_SAMPLES = 10


def calibration_notes(calib, checked_on_calib) -> list[str]:
    """Warnings a calibrated build's verdict needs: ranges from fewer than
    FEW_CALIBRATION_SAMPLES real samples, and parity checked on the calibration samples themselves
    (CHECKED_ON_CALIB: the check's Samples when no --data was given, else None), where ranges
    fitted to those very samples make the verdict kinder than on new data."""
    if calib is None or calib.is_random:
        return []
    notes = []
    if len(calib) < FEW_CALIBRATION_SAMPLES:
        notes.append(f"Quantization ranges come from {len(calib)} calibration sample(s): activations outside what "
                     "they cover are clipped. Give at least 100 representative samples with --calibration.")
    if checked_on_calib is not None:
        notes.append(f"Parity was checked on {len(checked_on_calib)} calibration sample(s), the ones the ranges "
                     "were fitted to (no --data): new data can do worse. Pass held-out samples with --data.")
    return notes


def check_calibration_finite(source, calib, chunk: int = 32) -> None:
    """Run the reference on every calibration sample and refuse samples that make an output NaN
    or Inf (a model taking log() of a silent audio clip): int8 cannot express that range, and
    TensorFlow's calibrator dies on it with SIGSEGV instead of saying so.

    Args:
        source: the loaded SourceModel (its `reference` takes a batch of inputs by name).
        calib: the calibration Samples.
    Raises BadInput (exit 2) naming the first offending samples and outputs."""
    import numpy as np

    from .data import random_rejected

    bad: dict[str, list[int]] = {}
    for start in range(0, len(calib), chunk):
        batch = {k: v[start : start + chunk] for k, v in calib.inputs.items()}
        try:
            outs = source.reference(batch)
        except DataRejected as exc:
            raise random_rejected(exc, calib) from exc
        for name, out in outs.items():
            out = np.asarray(out)
            if out.dtype.kind != "f" or out.ndim == 0:
                continue
            rows = np.flatnonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1))
            bad.setdefault(name, []).extend(int(start + r) for r in rows)
    bad = {k: v for k, v in bad.items() if v}
    if bad:
        said = "; ".join(f"output {k!r} on sample(s) {', '.join(map(str, v[:8]))}{' …' if len(v) > 8 else ''} "
                         f"({len(v)} of {len(calib)})" for k, v in bad.items())
        raise BadInput(f"The model computes NaN or Inf on calibration data: {said}. int8/int16 calibration "
                       "needs finite ranges (TensorFlow's calibrator crashes on them).",
                       "Drop those samples from --calibration, or make the model finite on them (e.g. "
                       "log(x + 1e-6) instead of log(x) for silent inputs).")


def crash_hint(source, recipe) -> str:
    """What to try when the converter dies natively on SOURCE with RECIPE (shown by isolation)."""
    rnn = []
    if source.framework == "keras":
        todo = list(getattr(source.native, "layers", []))
        while todo:
            layer = todo.pop()
            todo.extend(getattr(layer, "layers", []))
            inner = getattr(layer, "layer", None) or getattr(layer, "forward_layer", None)  # Bidirectional, RNN
            if inner is not None:
                todo.append(inner)
            if type(layer).__name__ in ("LSTM", "GRU", "SimpleRNN", "RNN") and not getattr(layer, "unroll", True):
                rnn.append(layer.name)
    if rnn and recipe.name in ("int8", "int16x8"):
        return (f"TensorFlow's {recipe.name} calibration crashes on recurrent layers that keep their time loop "
                f"({', '.join(rnn)}): build them with unroll=True and a fixed time length (keras.Input((T, F))), or use "
                "--quantize dynamic-int8 or fp16.")
    if recipe.name == "none":
        return ("The float conversion itself crashed: try another --to format, or fix the input shape "
                "(--input-shape); --debug shows the native log.")
    return "Try another --quantize recipe or --to format; --debug shows the native log."


def raise_for_parity(result: dict) -> None:
    """Raise CheckFailed (exit 1) when a convert RESULT failed a check: the device kernel check
    (`kernels.passed` false: an operator the target runtime has no kernel for) or parity. The
    files are already written (the verdict is in the manifest), so the message says so and names
    the cause the check found (kernel, state, data-dependent sizes, batch)."""
    k = result.get("kernels")
    if k and k.get("passed") is False:
        raise CheckFailed(f"{k.get('failure') or 'Missing kernels: ' + ', '.join(k['missing'])} "
                          f"({result['artifact']}: files written).",
                          "Replace those operators in the model (or make them lower to XNNPACK), or ship a device "
                          "runtime built with the kernel library named.")
    p = result.get("parity")
    if p and not p["passed"]:
        raise CheckFailed(
            f"Parity check failed for {result['artifact']} (files written).{parity_cause(p)}",
            "See the table above; pass real --data, relax thresholds knowingly" + (", or choose a gentler --quantize." if result.get("recipe", "none") != "none" else "; an unquantized build that differs points at the converter: try another --to format."),
        )


def parity_cause(parity: dict) -> str:
    """What a failed PARITY (the `parity` dict) was checked on, as a sentence naming the cause to
    look at: state (a stream), outputs whose size depends on the data, the declared batch."""
    b = parity.get("batching") or {}
    if parity.get("error"):
        return f" The artifact failed while being checked: {parity['error']}"
    if b.get("stream"):
        return (f" The model keeps state ({', '.join(b['stream']['state'])}): on a stream from its initial state the "
                "artifact diverges, so it drops, resets or updates that state differently.")
    if any(o.get("data_dependent_shape") and not o.get("passed") for o in parity.get("outputs", [])):
        return " An output whose size depends on the data differs in size or values on some samples."
    if b.get("batch", 1) > 1:
        return f" Both sides were fed groups of {b['batch']} samples, as the model declares its batch."
    return ""

"""What the three PyTorch converters share: torch.export with an explained failure, calibration
batches, and the post-build load-and-run check against the source's output shapes."""

from __future__ import annotations

import contextlib
import io
import warnings

from edgekit.errors import BadInput, CheckFailed, UnsupportedModel


def module_of(source):
    """The runnable nn.Module (for a .pt2 source, the ExportedProgram's module)."""
    if source.framework == "torch-exported":
        return source.native.module()
    return source.native


def export(source, module=None, example=None, kwargs=None):
    """torch.export.export with the exporter's reason in one paragraph when it cannot trace."""
    import torch

    if module is None and source.framework == "torch-exported":
        if _exported_as_resolved(source):
            return source.native
        module = source.native.module()  # dynamic dims: re-exported at the shapes edgekit resolved and checks
    module = module if module is not None else module_of(source)
    example = example if example is not None else source.extra["example_inputs"]
    try:
        with quiet():
            return torch.export.export(module, tuple(example), kwargs=kwargs)
    except Exception as exc:
        raise explain_export_error(exc, source.origin) from exc


def _exported_as_resolved(source) -> bool:
    """True when the .pt2's user inputs have exactly the static shapes edgekit resolved (a
    dynamic batch defaults to 1, --input-shape sets the others); lowered as it is otherwise, a
    dynamic dimension reaches the .pte at its upper bound (batch 16 for Dim(max=16))."""
    import torch

    ep = source.native
    kinds = torch.export.graph_signature.InputKind
    names = [s.arg.name for s in ep.graph_signature.input_specs if s.kind == kinds.USER_INPUT]
    vals = {n.name: n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"}
    for name, spec in zip(names, source.inputs):
        shape = getattr(vals.get(name), "shape", None)
        if shape is None or not all(isinstance(d, int) for d in shape) or tuple(shape) != tuple(spec.shape):
            return False
    return True


def explain_export_error(exc: Exception, origin: str) -> Exception:
    """torch.export's failure EXC → an UnsupportedModel (exit 2) to raise: its first lines, and
    for data-dependent control flow the torch.cond / torch.where rewrite as the hint."""
    text = str(exc)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    reason = " ".join(lines[:3])[:600] if lines else type(exc).__name__
    data_dependent = ("data-dependent" in text.lower() or "GuardOnDataDependent" in type(exc).__name__
                      or "Could not guard on data-dependent" in text)
    where = [l for l in lines if l.startswith("Caused by") or "File " in l][:1]
    if data_dependent:
        return UnsupportedModel(
            f"torch.export cannot trace the model from {origin}: its control flow depends on tensor values "
            f"({type(exc).__name__}: {reason}{' ' + where[0] if where else ''}).",
            "An on-device graph cannot branch on data in Python. Rewrite the branch with torch.cond(pred, "
            "true_fn, false_fn, (x,)) or torch.where, or move the decision out of forward().",
        )
    return UnsupportedModel(
        f"torch.export cannot trace the model from {origin}: {type(exc).__name__}: {reason}",
        "torch.export needs a model without Python side effects or data-dependent control flow; see "
        "https://pytorch.org/docs/stable/export.html (add --debug for the full exporter log).",
    )


@contextlib.contextmanager
def quiet():
    """Framework chatter (FutureWarnings, progress on stdout) stays out of the terminal and --json."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def calibration_batches(source, options, layout=None) -> list[tuple] | None:
    """options.calibration (`data.Samples`) → argument tuples of batch 1 in forward() order, in
    the example inputs' torch dtypes, each tensor passed through LAYOUT when given (NHWC);
    None without calibration data."""
    from edgekit.quantization import pt2e

    if options.calibration is None:
        return None
    example = source.extra["example_inputs"]
    batches = pt2e.calibration_batches(options.calibration, source.extra["input_names"], [t.dtype for t in example])
    if layout:
        batches = [tuple(layout(t) for t in b) for b in batches]
    return batches


def reference_shapes(source, feeds: dict | None = None) -> list[tuple]:
    """The source's output shapes on FEEDS ({input name: array}; default: zeros of its input
    specs), computed now on those same values: an output whose size depends on the data
    (x[x > 0.5]) has no shape of its own, only one per input."""
    import numpy as np

    return [tuple(np.shape(v)) for v in reference_outputs(source, feeds)]


def reference_outputs(source, feeds: dict | None = None) -> list:
    """The source's outputs (in its output order) on FEEDS, default zeros of its input specs."""
    import numpy as np

    feeds = feeds or {s.name: np.zeros(s.shape, s.dtype if s.dtype != "float16" else "float32") for s in source.inputs}
    outs = source.reference(feeds)
    return [outs[n] for n in source.extra.get("output_names", list(outs))]


def check_outputs(session, source, what: str, sample=None, nhwc_outputs=()) -> None:
    """Run the artifact once on zeros (or SAMPLE) and the source on the same values; the outputs
    must have the same shapes (CheckFailed, exit 1, otherwise) and be finite.

    Args:
        session: the artifact's runtime session; source: the SourceModel; what: ".pte" etc.
        sample: {artifact input name: array} to feed instead of zeros (the source then gets
            zeros too only when SAMPLE is None: pass SAMPLE only for inputs of the source's layout).
        nhwc_outputs: indices of outputs the artifact gives NHWC for the source's NCHW.
    """
    import numpy as np

    from edgekit.runtimes import run_float

    feeds = sample or {s.name: np.zeros(s.shape, s.dtype if s.dtype != "float16" else "float32")
                       for s in session.inputs}
    outs = run_float(session, feeds)
    got = [tuple(np.shape(v)) for v in outs.values()]
    # zeros are the same values in any layout: the source sees what the artifact saw
    ref = reference_outputs(source, None if sample is None else {s.name: v for s, v in zip(source.inputs, feeds.values())})
    want = [tuple(np.shape(v)) for v in ref]
    for i in nhwc_outputs:
        if i < len(want) and len(want[i]) == 4:
            n, c, h, w = want[i]
            want[i] = (n, h, w, c)
    if len(got) != len(want) or any(sorted(g) != sorted(w) or np.prod(g) != np.prod(w) for g, w in zip(got, want)):
        raise CheckFailed(
            f"The {what} runs but gives outputs of shape {got} where the source model gives {want} on the same "
            "input.",
            "The converted file computes outputs of other sizes than the model; run edgekit validate on real data "
            "to see which output differs (add --debug for the converter's log).",
        )
    for i, (name, v) in enumerate(outs.items()):
        r = np.asarray(ref[i]) if i < len(ref) else None
        if r is not None and r.dtype.kind == "f" and not np.isfinite(r).all():
            continue  # the model itself computes NaN/inf there (log of zeros): not the conversion's doing
        if np.asarray(v).dtype.kind == "f" and not np.isfinite(v).all():
            raise CheckFailed(f"The {what} gives NaN/inf in output {name!r} on a plain input.",
                              "Try a gentler --quantize (fp16 overflows above 65504).")


def no_io_dtype(recipe, options, target: str) -> None:
    """BadInput (exit 2) unless options.io_dtype is float32 (TARGET names the format)."""
    if options.io_dtype != "float32":
        raise BadInput(f"--io-dtype {options.io_dtype} is not available for PyTorch → {target}.",
                       "Leave --io-dtype at float32 for this target.")

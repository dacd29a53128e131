"""Pairing the reference's inputs and outputs with the candidate's, for `edgekit validate`:
by name, then by shape (NCHW/NHWC included), then, for same-shaped outputs, by values.
"""

from __future__ import annotations

import numpy as np

from . import parity as parity_mod
from .errors import BadInput
from .specs import TensorSpec
from .validation_reference import Reference, run_batched

VALUE_MATCH_SAMPLES = 4  # samples used to pair same-shaped outputs by their values


def match_inputs(ref_inputs: list[TensorSpec], cand_inputs: list[TensorSpec]) -> dict:
    """Pair the reference's inputs with the candidate's (edgekit.parity.match_specs), then check
    each pair can be fed the same data.

    Args:
        ref_inputs: the reference's input specs (float view).
        cand_inputs: the candidate session's input specs.

    Returns:
        reference input name → candidate TensorSpec.

    Raises:
        BadInput (exit 2): the inputs differ in number, per-sample shape (NCHW ↔ NHWC and a
            reshape of the same size are allowed) or kind of dtype; the message shows both
            signatures.
    """
    sig = ("reference: " + ", ".join(s.describe() for s in ref_inputs) + " · candidate: "
           + ", ".join(s.describe() for s in cand_inputs))
    try:
        in_map = parity_mod.match_specs([s.name for s in ref_inputs], {s.name: s.shape for s in ref_inputs},
                                        cand_inputs, "input")
    except BadInput as exc:
        raise BadInput("The reference and the candidate take different inputs: " + exc.message,
                       sig + ". Compare the candidate with the model it was converted from.") from exc
    for r in ref_inputs:
        c = in_map[r.name]
        if not _shapes_compatible(tuple(r.shape[1:]), tuple(c.shape[1:])):
            raise BadInput(
                f"The reference and the candidate take different inputs: {r.name!r} is "
                f"{dims(r.shape[1:])} per sample in the reference, {c.name!r} is {dims(c.shape[1:])} "
                "in the candidate.",
                sig + ". Compare the candidate with the model it was converted from (or fix --input-shape).",
            )
        rk, ck = np.dtype(r.dtype).kind, np.dtype(c.dtype).kind
        if rk == "f" and ck != "f" and not c.is_quantized:
            raise BadInput(
                f"The reference takes {r.name!r} as {r.dtype}, the candidate takes {c.name!r} as {c.dtype} "
                "without a quantization scale, so real values cannot be mapped onto it.",
                sig + ".",
            )
        if rk != "f" and ck != rk:
            raise BadInput(f"The reference takes {r.name!r} as {r.dtype}, the candidate {c.name!r} as {c.dtype}.",
                           sig + ".")
    return in_map


def dims(shape) -> str:
    """A shape as people write it: (1, 28, None) → '1x28x?'; () → 'scalar'."""
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def _shapes_compatible(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        known_a, known_b = [d for d in a if d is not None], [d for d in b if d is not None]
        return None not in a and None not in b and int(np.prod(a)) == int(np.prod(b)) and bool(known_a) and bool(known_b)
    if all(x is None or y is None or x == y for x, y in zip(a, b)):
        return True
    return len(a) == 3 and (a == (b[2], b[0], b[1]) or a == (b[1], b[2], b[0]))  # NCHW ↔ NHWC


def match_outputs(reference: Reference, session, samples, in_map: dict) -> tuple[dict, dict]:
    """Pair the reference's outputs with the candidate's.

    By name; then by a unique shape; then, for outputs that share a shape, by values: the
    pairing with the least relative RMS error on the first VALUE_MATCH_SAMPLES samples (a
    converter that renames and reorders same-shaped outputs is still matched correctly).

    Args:
        reference: the loaded Reference.
        session: the candidate's runtime session (or an on-target session).
        samples: edgekit.data Samples keyed by the reference's input names.
        in_map: reference input name → candidate TensorSpec (match_inputs).

    Returns:
        ({reference output name: candidate TensorSpec}, {reference output name: "name" |
        "shape" | "values"}).

    Raises:
        BadInput (exit 2): the output counts differ, or an output has no candidate of its shape.
    """
    few = samples.take(VALUE_MATCH_SAMPLES)
    ref = reference.call(few.inputs)
    names = list(ref)
    cands = list(session.outputs)
    if len(names) != len(cands):
        raise BadInput(
            f"The reference has {len(names)} output(s) ({', '.join(names)}), the candidate {len(cands)} "
            f"({', '.join(s.name for s in cands)}).",
            "Compare the candidate with the model it was converted from.",
        )
    out, how = {}, {}
    by_name = {s.name: s for s in cands}
    for n in names:
        if n in by_name:
            out[n], how[n] = by_name[n], "name"
    left = [s for s in cands if s not in out.values()]
    todo = [n for n in names if n not in out]
    if not todo:
        return out, how
    # shape groups
    groups: dict = {}
    for n in todo:
        key = tuple(sorted(ref[n].shape[1:]))
        groups.setdefault(key, ([], []))[0].append(n)
    for s in left:
        key = tuple(sorted(d for d in s.shape[1:]))
        if key in groups:
            groups[key][1].append(s)
    ambiguous = []
    for key, (rn, cs) in groups.items():
        if len(rn) == 1 and len(cs) == 1:
            out[rn[0]], how[rn[0]] = cs[0], "shape"
        elif rn and len(rn) == len(cs):
            ambiguous.append((rn, cs))
        else:
            shapes = ", ".join(f"{n} {dims(ref[n].shape[1:])}" for n in rn)
            raise BadInput(
                f"Cannot match the reference output(s) {shapes} to any candidate output of the same shape "
                f"(candidate: {', '.join(s.describe() for s in cands)}).",
                "The models do not compute the same outputs; compare the candidate with its own source.",
            )
    if ambiguous:
        cand_few = _run_candidate(session, few, in_map)
        for rn, cs in ambiguous:
            pairs = sorted(
                (_rel_err(ref[n], cand_few[c.name]), n, c.name) for n in rn for c in cs
            )
            used_r, used_c = set(), set()
            by = {c.name: c for c in cs}
            for _err, n, cname in pairs:
                if n in used_r or cname in used_c:
                    continue
                out[n], how[n] = by[cname], "values"
                used_r.add(n)
                used_c.add(cname)
    return out, how


def _rel_err(r, c) -> float:
    r = np.asarray(r, np.float64)
    c = parity_mod.adapt_layout(np.asarray(c, np.float64), r.shape)
    if c.shape != r.shape:
        return float("inf")
    return float(np.sqrt(np.mean((r - c) ** 2)) / (np.sqrt(np.mean(r**2)) + 1e-12))


def _run_candidate(session, samples, in_map) -> dict:
    """The candidate's real-valued outputs on `samples`, one sample per call, inputs fed in the
    candidate's names and layout."""
    in_specs = {s.name: s for s in session.inputs}
    feeds = {in_map[k].name: parity_mod.adapt_layout(v, in_specs[in_map[k].name].shape)
             for k, v in samples.inputs.items()}
    return run_batched(session, feeds, 1)

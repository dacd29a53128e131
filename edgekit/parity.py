"""Parity: run a reference and a candidate on the same samples, compare, and give a verdict.

The reference is any callable `feeds(batch) -> {name: batch}` (an original model or another
artifact); the candidate is a runtime session, fed one sample at a time as on a device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import metrics
from .errors import BadInput
from .runtimes import Session, run_float
from .parity_groups import batch_as_declared, join_groups, per_sample_shape, trim_padding
from .specs import TensorSpec

# Thresholds by the candidate's precision, built from each metric's "good" (edgekit.metrics
# REGISTRY, the single source). A metric absent from a preset is reported, not judged.
THRESHOLD_KEYS = ("min_psnr_db", "max_abs", "min_cosine", "min_top1_agreement", "max_accuracy_drop")
PRESETS = metrics.presets(THRESHOLD_KEYS)
MAX_CHANNELS = 1024  # a last axis up to this wide is read as features/channels and judged one by one
MIXED_SCALES = 100.0  # a 2-D output whose channel peaks differ more than this is not class scores

@dataclass
class ParityResult:
    """The verdict of one parity check ($defs/parity of report.schema.json): passed, the preset's
    precision, sample count, whether inputs were random, the thresholds applied, one entry per
    output (metrics, worst channel, verdict), task accuracy with labels, and notes."""

    passed: bool
    precision: str
    samples: int
    random_inputs: bool
    thresholds: dict
    outputs: list[dict] = field(default_factory=list)
    accuracy: dict | None = None
    notes: list[str] = field(default_factory=list)
    batching: dict | None = None  # how samples were grouped: {batch, from, padded}
    error: str | None = None  # the check could not run the artifact (failed_run)

    def to_dict(self) -> dict:
        """The JSON form (`parity` in convert/validate results)."""
        d = {
            "passed": self.passed,
            "precision": self.precision,
            "samples": self.samples,
            "random_inputs": self.random_inputs,
            "thresholds": self.thresholds,
            "outputs": self.outputs,
        }
        if self.accuracy is not None:
            d["accuracy"] = self.accuracy
        if self.notes:
            d["notes"] = self.notes
        if self.batching:
            d["batching"] = self.batching
        if self.error:
            d["error"] = self.error
        return d


def thresholds_for(precision: str, overrides: dict | None = None) -> dict:
    """The verdict thresholds for PRECISION (a key of PRESETS: fp32, fp16, dynamic-int8, int8,
    int16x8; unknown ones get fp32's), with the non-None OVERRIDES (min_psnr_db, max_abs,
    min_cosine, min_top1_agreement, max_accuracy_drop) applied."""
    t = dict(PRESETS.get(precision, PRESETS["fp32"]))
    for k, v in (overrides or {}).items():
        if v is not None:
            t[k] = v
    return t


def adapt_layout(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Feed an NCHW array to an NHWC model (or back) when that is the only difference."""
    if tuple(x.shape[1:]) == tuple(shape[1:]):
        return x
    if x.ndim == 4 and tuple(x.shape[1:]) == (shape[3], shape[1], shape[2]):
        return np.transpose(x, (0, 2, 3, 1))  # NCHW → NHWC
    if x.ndim == 4 and tuple(x.shape[1:]) == (shape[2], shape[3], shape[1]):
        return np.transpose(x, (0, 3, 1, 2))  # NHWC → NCHW
    if x.size == len(x) * int(np.prod(shape[1:])) and x.ndim != len(shape):
        return x.reshape((len(x), *shape[1:]))
    return x


def match_specs(ref_names: list[str], ref_shapes: dict, cand: list[TensorSpec], what: str) -> dict:
    """Reference name → candidate spec: by name, then by a unique shape, then by position."""
    if len(ref_names) != len(cand):
        raise BadInput(
            f"The reference has {len(ref_names)} {what}(s) ({', '.join(ref_names)}), the candidate "
            f"{len(cand)} ({', '.join(s.name for s in cand)}).",
            "Compare models of the same signature.",
        )
    by_name = {s.name: s for s in cand}
    out, left = {}, list(cand)
    for n in ref_names:
        if n in by_name:
            out[n] = by_name[n]
            left.remove(by_name[n])
    for n in ref_names:
        if n in out:
            continue
        shape = tuple(ref_shapes.get(n, ()))[1:]
        same = [s for s in left if _same_elements(tuple(s.shape[1:]), shape)]
        if len(same) == 1 and sum(_same_elements(tuple(ref_shapes[m])[1:], shape) for m in ref_names if m not in out) == 1:
            out[n] = same[0]
            left.remove(same[0])
    for n in ref_names:  # the rest in order
        if n not in out:
            out[n] = left.pop(0)
    return out


def _same_elements(a: tuple, b: tuple) -> bool:
    return a == b or sorted(a) == sorted(b)  # equal, or the same dims in another layout


def check(reference, session: Session, samples, precision: str = "fp32", overrides: dict | None = None,
          progress=None, output_map: dict | None = None) -> ParityResult:
    """`_check` (below), with a reference that fails on edgekit's own random samples said to be
    that (`edgekit.data.random_rejected`), not the user's data."""
    from .data import random_rejected
    from .errors import DataRejected

    try:
        return _check(reference, session, samples, precision, overrides, progress, output_map)
    except DataRejected as exc:
        raise random_rejected(exc, samples) from exc


def _check(reference, session: Session, samples, precision: str = "fp32", overrides: dict | None = None,
           progress=None, output_map: dict | None = None) -> ParityResult:
    """Run both on `samples`, fed as the model declares its batch, and judge by the preset for
    `precision` (with overrides).

    Args:
        reference: callable {input name: array (B, ...)} → {output name: array}; its optional
            attribute `batch` (int) is the batch the reference model declares.
        session: the candidate's runtime session (`edgekit.runtimes.Session`).
        samples: `edgekit.data.Samples`, N samples per input (batch axis first).
        precision, overrides: pick the thresholds (`thresholds_for`).
        progress: optional callable(done, total) per sample.
        output_map: reference output name → candidate TensorSpec, overriding the name/shape/
            position matching when the caller resolved it otherwise (validate matches by values).

    Both sides get the same groups of B samples, B being the batch the artifact's inputs declare
    (batch 1, a fixed N), else the reference's `batch`, else 1; a last group short of B is padded
    with repeated samples whose outputs are left out (`batching` in the result says so). Outputs
    are compared group by group, so an output whose size depends on the data is compared as such.

    Returns a ParityResult. Raises BadInput (exit 2) when the reference and the artifact declare
    different fixed batches, or the models differ in their number of inputs/outputs.
    """
    thresholds = thresholds_for(precision, overrides)
    n = len(samples)
    in_specs = {s.name: s for s in session.inputs}
    in_map = match_specs(list(samples.inputs), {k: v.shape for k, v in samples.inputs.items()}, session.inputs, "input")
    batch, batching = batch_as_declared(reference, [in_map[k] for k in samples.inputs])
    order = np.arange(n)
    if n % batch:
        order = np.concatenate([order, np.resize(np.arange(n), batch - n % batch)])  # pad by repeating
    groups = [order[g : g + batch] for g in range(0, len(order), batch)]
    if len(order) > n:
        batching["padded"] = int(len(order) - n)
        batching["note"] = batching["note"][:-1] + (f"; the last group padded with {len(order) - n} repeated "
                                                    "sample(s), left out of the verdict.")
    batching["groups"] = len(groups)
    ref_groups, cand_groups, out_map = [], [], output_map
    whole, state = None, getattr(reference, "stateful", None)
    if state:  # one stream, in order, from the model's own state (the reference puts it back after)
        batching["stream"] = {"state": list(state), "samples": n}
        batching["note"] += (f" Stateful ({', '.join(state[:5])}): checked on a stream of the {n} samples in order "
                             "from the model's initial state, on both sides.")
    if getattr(reference, "batch", None) is None or state:  # one call, its outputs split by group
        whole = {k: np.asarray(v) for k, v in reference({k: v[order] for k, v in samples.inputs.items()}).items()}
    for gi, idx in enumerate(groups):
        feeds = {k: v[idx] for k, v in samples.inputs.items()}
        if whole is None:
            ref = {k: np.asarray(v) for k, v in reference(feeds).items()}
        else:
            ref = {k: v[gi * batch : (gi + 1) * batch] if v.ndim and len(v) == len(order) else v
                   for k, v in whole.items()}
        if out_map is None:
            out_map = match_specs(list(ref), {k: v.shape for k, v in ref.items()}, session.outputs, "output")
        feed = {in_map[k].name: adapt_layout(v, in_specs[in_map[k].name].shape) for k, v in feeds.items()}
        outs = run_float(session, feed)
        keep = min(batch, n - gi * batch)  # the real samples of this group
        ref_groups.append({k: trim_padding(v, batch, keep) for k, v in ref.items()})
        cand_groups.append({k: trim_padding(adapt_layout(np.asarray(outs[out_map[k].name]), ref[k].shape), batch, keep)
                            for k in ref})
        if progress:
            progress(min((gi + 1) * batch, n), n)
    ref_names = list(ref_groups[0])
    results, passed, notes = [], True, []
    if batching["batch"] > 1 or batching.get("padded") or state:
        notes.append(batching["note"])
    ref_all, cand_all = {}, {}
    for name in ref_names:
        rs, cs = [g[name] for g in ref_groups], [g[name] for g in cand_groups]
        differ = [i for i, (r_, c_) in enumerate(zip(rs, cs)) if r_.shape != c_.shape]
        varying = len({per_sample_shape(r_, batch, min(batch, n - i * batch)) for i, r_ in enumerate(rs)}) > 1
        if differ and not varying:
            raise BadInput(
                f"Output {name!r}: the reference gives shape {rs[0].shape} per group of {batch} sample(s), the "
                f"candidate {out_map[name].name!r} gives {cs[differ[0]].shape}.",
                "The two do not have the same output signature: compare the artifact with the model it was "
                "converted from, with the same --input-shape.",
            )
        if differ:  # an output whose size depends on the data (x[x > 0.5]) and differs on some samples
            first = groups[differ[0]][: min(batch, n - differ[0] * batch)].tolist()
            passed = False
            results.append({"name": name, "candidate_name": out_map[name].name, "passed": False,
                            "data_dependent_shape": True,
                            "failures": [f"its size depends on the data and differs on {len(differ)} of "
                                         f"{len(groups)} group(s) (first on sample(s) {first}: reference "
                                         f"{rs[differ[0]].shape}, candidate {cs[differ[0]].shape})"]})
            continue
        r, c = (join_groups(rs), join_groups(cs)) if not varying else \
            (np.concatenate([x.ravel() for x in rs]), np.concatenate([x.ravel() for x in cs]))
        ref_all[name], cand_all[name] = r, c
        entry, said = judge_output(r, c, thresholds, name)
        if varying:
            entry["data_dependent_shape"] = True
        passed &= entry["passed"]
        notes += said
        results.append({"name": name, "candidate_name": out_map[name].name, **entry})
    accuracy = None
    first = ref_names[0] if ref_names else None
    if samples.labels is not None and first in ref_all and len(ref_all[first]) == n \
            and metrics.is_classifier_output(ref_all[first]):
        classes = ref_all[first].shape[-1]
        if len(samples.labels) and int(np.max(samples.labels)) >= classes:
            from .errors import DataRejected

            raise DataRejected(f"The labels go up to {int(np.max(samples.labels))}, but output {first!r} scores "
                               f"{classes} classes (0..{classes - 1}): the accuracy of both models would be 0.",
                               "Give class indices in the order of the model's output (labels 0..C-1).")
        ra = metrics.accuracy(ref_all[first], samples.labels)
        ca = metrics.accuracy(cand_all[first], samples.labels)
        accuracy = {"output": first, "reference": ra, "candidate": ca, "delta": ca - ra}
        limit = thresholds.get("max_accuracy_drop")
        if limit is not None and ra - ca > limit + 1e-12:
            passed = False
            accuracy["failure"] = f"accuracy dropped {100 * (ra - ca):.2f} points > {100 * limit:.2f}"
    if samples.is_random:
        notes.append("Random inputs: this proves the plumbing, not the accuracy. Pass real samples with --data.")
    result = ParityResult(passed, precision, n, samples.is_random, thresholds, results, accuracy, notes)
    result.batching = {k: v for k, v in batching.items() if k != "note"}
    return result


def failed_run(exc: Exception, precision: str, overrides: dict | None, samples) -> ParityResult:
    """The verdict when the check itself failed on a built artifact (the runtime raised on the
    samples, or the outputs do not match the reference's signature): not passed, with the cause
    in `error` and the notes, so the caller keeps the files (exit 1) instead of discarding them."""
    said = getattr(exc, "message", None) or f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    hint = getattr(exc, "hint", "")
    return ParityResult(False, precision, max(1, len(samples)), samples.is_random, thresholds_for(precision, overrides),
                        [], None, [f"The artifact failed while being checked: {said}" + (f" ({hint})" if hint else "")],
                        error=said)


def judge_output(ref, cand, thresholds: dict, name: str = "output") -> tuple[dict, list[str]]:
    """Metrics and verdict of one output: what `check` puts in `outputs[i]`, and its notes.

    ref, cand: arrays of one shape, batch (samples) axis first, any numeric dtype; thresholds:
    as `thresholds_for` gives. Returns ({<metric>: value (edgekit.metrics REGISTRY), "passed",
    "failures": [str], and when they apply "worst_channel", "candidate_nonfinite",
    "reference_nonfinite"}, [notes]). Never raises on NaN/Inf. The rules, in order:

    1. Samples on which the reference itself is NaN/Inf are reported first (indices, in the
       notes and in "reference_nonfinite") and judged apart: left out of the metrics and the
       verdict, with a record of whether the candidate is non-finite at the same places. With
       no finite sample left, the output fails ("nothing to judge").
    2. NaN/Inf in the candidate where the reference is finite fails, saying "N of M values are
       NaN/Inf in the candidate"; the output's psnr_db/snr_db are then −200 dB (the floor,
       standing for −inf) and its cosine 0; max/mean abs and rmse describe the finite values.
    3. Whole-output metrics are judged by the thresholds (min_psnr_db, max_abs, min_cosine,
       min_top1_agreement).
    4. Per channel (see `judged_per_channel`): every index of the last axis gets its own metrics
       and the worst one, "worst_channel", must also meet min_psnr_db, so values of a small scale
       packed beside large ones (scores beside pixel boxes) cannot be flattened unseen. A channel
       constant in the reference has no range of its own: it is judged by its largest error
       against the whole output's peak, 20·log10(max|ref| / max_abs) ≥ min_psnr_db.
    """
    r, c = np.asarray(ref), np.asarray(cand)
    if r.ndim == 0:
        r, c = r.reshape(1), c.reshape(1)
    fails, notes, extra = [], [], {}
    apart = np.flatnonzero(~np.isfinite(r.reshape(len(r), -1)).all(axis=1)) if r.size else np.zeros(0, int)
    if apart.size:
        rb, cb = r[apart], c[apart]
        same = bool(np.array_equal(np.isfinite(rb), np.isfinite(cb)))
        shown = ", ".join(map(str, apart[:20].tolist())) + (", …" if apart.size > 20 else "")
        extra["reference_nonfinite"] = {"samples": apart.tolist(), "values": int((~np.isfinite(rb)).sum()),
                                        "candidate_nonfinite_same_places": same}
        notes.append(f"Output {name!r}: the reference itself is NaN/Inf on {apart.size} of {len(r)} sample(s) "
                     f"(index {shown}); they are left out of the verdict and reported apart (the candidate is "
                     f"{'' if same else 'not '}NaN/Inf at the same places).")
    keep = np.setdiff1d(np.arange(len(r)), apart)
    rj, cj = r[keep], c[keep]
    if apart.size and not keep.size:
        fails.append("the reference is NaN/Inf on every sample: nothing to judge")
    bad = ~np.isfinite(cj)
    n_bad = int(bad.sum())
    if n_bad:
        n_nan = int(np.isnan(cj).sum())
        cj = np.where(bad, rj, cj)
        extra["candidate_nonfinite"] = {"values": n_bad, "of": int(cj.size), "nan": n_nan, "inf": n_bad - n_nan}
        fails.append(f"{n_bad} of {cj.size} values are NaN/Inf in the candidate ({n_nan} NaN, {n_bad - n_nan} Inf) "
                     "where the reference is finite")
    m = metrics.compare(rj, cj)
    if n_bad:
        m.update(psnr_db=-metrics.PERFECT_DB, snr_db=-metrics.PERFECT_DB, cosine=0.0)
    fails += _judge(m, thresholds)
    if rj.size and judged_per_channel(rj):
        extra["worst_channel"] = worst = _worst_channel(rj, cj, thresholds.get("min_psnr_db"))
        if not worst["passed"]:
            fails.append(_channel_failure(worst, m["psnr_db"], thresholds["min_psnr_db"]))
    return {**m, **extra, "passed": not fails, "failures": fails}, notes


def judged_per_channel(ref) -> bool:
    """Whether `ref`'s last axis is read as channels/features and judged one by one.

    Yes when the output has a batch axis and a last axis 2..MAX_CHANNELS (1024) wide — detection
    heads (N, anchors, 4 + classes), sequences (N, T, features), NHWC maps, packed (N, F) rows —
    except: values all within [0, 1] (probabilities, normalized boxes: one scale already, and a
    class that never fires would be judged on noise); and 2-D (N, C) class scores, where top-1
    is the verdict: a 2-D output counts as class scores unless its channels' peaks max|ref|
    differ by more than MIXED_SCALES (100×), as boxes in pixels beside scores in 0..1 do.
    """
    r = np.asarray(ref)
    if r.ndim < 2 or not 2 <= r.shape[-1] <= MAX_CHANNELS or not r.size:
        return False
    if np.all((r >= 0) & (r <= 1)):
        return False
    if metrics.is_classifier_output(r):
        peaks = np.max(np.abs(r), axis=0)
        peaks = peaks[peaks > 0]
        return peaks.size > 1 and float(peaks.max()) > MIXED_SCALES * float(peaks.min())
    return True


def _worst_channel(r: np.ndarray, c: np.ndarray, min_db) -> dict:
    """The channel of the last axis with the lowest judged dB (see judge_output, rule 4)."""
    peak = float(np.max(np.abs(r)))
    rows = []
    for ch in metrics.per_channel(r, c):
        constant = ch["ref_min"] == ch["ref_max"]
        if not constant:
            db = ch["psnr_db"]
        elif ch["max_abs"] == 0:
            db = metrics.PERFECT_DB
        else:
            db = -metrics.PERFECT_DB if peak == 0 else min(metrics.PERFECT_DB, 20.0 * np.log10(peak / ch["max_abs"]))
        rows.append((float(max(-metrics.PERFECT_DB, db)), constant, ch))
    db, constant, ch = min(rows, key=lambda x: x[0])
    return {"index": ch["index"], "channels": int(r.shape[-1]), "psnr_db": ch["psnr_db"], "cosine": ch["cosine"],
            "max_abs": ch["max_abs"], "rmse": ch["rmse"], "reference_range": [ch["ref_min"], ch["ref_max"]],
            "constant_in_reference": constant, "judged_db": db, "passed": min_db is None or db >= min_db}


def _channel_failure(w: dict, whole_db: float, min_db: float) -> str:
    where = f"channel {w['index']} of {w['channels']} (last axis)"
    if w["constant_in_reference"]:
        return (f"{where} is constant ({w['reference_range'][0]:g}) in the reference; the candidate is off by up to "
                f"{w['max_abs']:.3g}, {w['judged_db']:.1f} dB below the output's peak < {min_db:g}")
    lo, hi = w["reference_range"]
    return (f"{where}: PSNR {w['psnr_db']:.1f} dB < {min_db:g} (its values span {lo:.3g}..{hi:.3g}; the whole "
            f"output's {whole_db:.1f} dB hides it: small-scale values packed beside large ones were flattened)")


def _judge(m: dict, t: dict) -> list[str]:
    """Failure messages of whole-output metrics `m` against thresholds `t` (empty = passed)."""
    fails = []
    if t.get("min_psnr_db") is not None and m["psnr_db"] < t["min_psnr_db"]:
        fails.append(f"PSNR {m['psnr_db']:.1f} dB < {t['min_psnr_db']:g}")
    if t.get("max_abs") is not None and m["max_abs"] > t["max_abs"]:
        fails.append(f"max abs {m['max_abs']:.3g} > {t['max_abs']:g}")
    if t.get("min_cosine") is not None and m["cosine"] < t["min_cosine"]:
        fails.append(f"cosine {m['cosine']:.5f} < {t['min_cosine']:g}")
    if t.get("min_top1_agreement") is not None and "top1_agreement" in m and m["top1_agreement"] < t["min_top1_agreement"]:
        fails.append(f"top-1 agreement {m['top1_agreement']:.3f} < {t['min_top1_agreement']:g}")
    return fails

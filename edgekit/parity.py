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
from .specs import TensorSpec

# Thresholds by the candidate's precision. A metric absent from a preset is reported, not judged.
PRESETS = {
    "fp32": {"min_psnr_db": 60.0, "min_cosine": 0.9999, "min_top1_agreement": 0.99, "max_accuracy_drop": 0.005},
    "fp16": {"min_psnr_db": 40.0, "min_cosine": 0.999, "min_top1_agreement": 0.98, "max_accuracy_drop": 0.01},
    "dynamic-int8": {"min_psnr_db": 25.0, "min_cosine": 0.99, "min_top1_agreement": 0.9, "max_accuracy_drop": 0.02},
    "int8": {"min_psnr_db": 15.0, "min_cosine": 0.95, "min_top1_agreement": 0.85, "max_accuracy_drop": 0.02},
    "int16x8": {"min_psnr_db": 35.0, "min_cosine": 0.999, "min_top1_agreement": 0.98, "max_accuracy_drop": 0.01},
}
THRESHOLD_KEYS = ("min_psnr_db", "max_abs", "min_cosine", "min_top1_agreement", "max_accuracy_drop")


@dataclass
class ParityResult:
    passed: bool
    precision: str
    samples: int
    random_inputs: bool
    thresholds: dict
    outputs: list[dict] = field(default_factory=list)
    accuracy: dict | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
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
        return d


def thresholds_for(precision: str, overrides: dict | None = None) -> dict:
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
    """Run both on `samples` and judge by the preset for `precision` (with overrides).

    `output_map` (reference output name → candidate TensorSpec) overrides the name/shape/position
    matching when the caller resolved it otherwise (edgekit validate matches by values too).
    """
    thresholds = thresholds_for(precision, overrides)
    n = len(samples)
    ref = reference(samples.inputs)
    ref_names = list(ref)
    out_map = output_map or match_specs(ref_names, {k: v.shape for k, v in ref.items()}, session.outputs, "output")
    in_specs = {s.name: s for s in session.inputs}
    in_map = match_specs(list(samples.inputs), {k: v.shape for k, v in samples.inputs.items()}, session.inputs, "input")
    cand_chunks: dict[str, list] = {n_: [] for n_ in ref_names}
    for i in range(n):
        feed = {in_map[k].name: adapt_layout(v[i : i + 1], in_specs[in_map[k].name].shape) for k, v in samples.inputs.items()}
        outs = run_float(session, feed)
        for name in ref_names:
            cand_chunks[name].append(outs[out_map[name].name])
        if progress:
            progress(i + 1, n)
    results, passed = [], True
    for name in ref_names:
        r = np.asarray(ref[name])
        c = adapt_layout(np.concatenate(cand_chunks[name]), r.shape)
        if c.shape != r.shape:
            raise BadInput(
                f"Output {name!r}: the reference gives shape {r.shape[1:]}, the candidate "
                f"{out_map[name].name!r} gives {c.shape[1:]} per sample.",
                "The models do not compute the same thing; check --input-shape and the converted file.",
            )
        m = metrics.compare(r, c)
        fails = _judge(m, thresholds)
        passed &= not fails
        results.append({"name": name, "candidate_name": out_map[name].name, **m, "passed": not fails, "failures": fails})
    accuracy = None
    if samples.labels is not None and len(ref_names) >= 1 and metrics.is_classifier_output(np.asarray(ref[ref_names[0]])):
        name = ref_names[0]
        ra = metrics.accuracy(ref[name], samples.labels)
        ca = metrics.accuracy(np.concatenate(cand_chunks[name]), samples.labels)
        accuracy = {"output": name, "reference": ra, "candidate": ca, "delta": ca - ra}
        limit = thresholds.get("max_accuracy_drop")
        if limit is not None and ra - ca > limit + 1e-12:
            passed = False
            accuracy["failure"] = f"accuracy dropped {100 * (ra - ca):.2f} points > {100 * limit:.2f}"
    notes = []
    if samples.is_random:
        notes.append("Random inputs: this proves the plumbing, not the accuracy. Pass real samples with --data.")
    return ParityResult(passed, precision, n, samples.is_random, thresholds, results, accuracy, notes)


def _judge(m: dict, t: dict) -> list[str]:
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

"""Parity metrics, defined once (after Qualcomm AI Hub's `compare.py`).

Every metric is one `Metric` in `REGISTRY`: its name, its formula (the only definition), a
one-line meaning, what "good" is per precision and where the formula comes from. Whole-output
parity (`compare`), per-channel parity (`per_channel`), per-layer and streaming parity
(`Running`) all compute through these same objects. The element-wise formulas read `Stats`,
sums that can be taken at once or accumulated over chunks, so streaming cannot drift from the
whole-array definition. The thresholds of edgekit.parity.PRESETS are built from `good`.

Formulas never raise on NaN/Inf and never report a good value for them: an error that is not
finite gives PSNR/SNR at the −200 dB floor and cosine 0.

    metrics.psnr_db(ref, cand)        # each metric is callable on two same-shape arrays
    metrics.REGISTRY["psnr_db"].good  # {"fp32": 60.0, ...}: the preset's min_psnr_db
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

PERFECT_DB = 200.0  # reported instead of ±inf dB (JSON has no inf): +200 identical, −200 hopeless
PRECISIONS = ("fp32", "fp16", "dynamic-int8", "int8", "int16x8")  # the presets' names


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


@dataclass
class Stats:
    """Sufficient statistics of (ref, cand) for every element-wise metric.

    Build with `Stats.of(ref, cand)` or accumulate chunk by chunk with `add`; both give the
    same numbers, so whole-array and streaming parity share one formula per metric.
    Fields: n (elements), sum_abs Σ|r−c|, sum_sq_err Σ(r−c)², sum_sq_ref Σr², sum_sq_cand Σc²,
    dot Σr·c, max_abs max|r−c|, peak max|r|, ref_min/ref_max (range of the reference).
    """

    n: int = 0
    sum_abs: float = 0.0
    sum_sq_err: float = 0.0
    sum_sq_ref: float = 0.0
    sum_sq_cand: float = 0.0
    dot: float = 0.0
    max_abs: float = 0.0
    peak: float = 0.0
    ref_min: float = math.inf
    ref_max: float = -math.inf

    @classmethod
    def of(cls, ref, cand) -> "Stats":
        """Stats of two arrays of the same number of elements (any shape, any numeric dtype)."""
        s = cls()
        s.add(ref, cand)
        return s

    def add(self, ref, cand) -> None:
        """Accumulate one chunk: `ref` and `cand` with the same number of elements (flattened)."""
        r, c = _f64(ref).ravel(), _f64(cand).ravel()
        if not r.size:
            return
        with np.errstate(all="ignore"):  # Inf − Inf is NaN, said by the formulas, not a warning
            d = r - c
            self.n += r.size
            self.sum_sq_err += float(np.dot(d, d))
            self.sum_sq_ref += float(np.dot(r, r))
            self.sum_sq_cand += float(np.dot(c, c))
            self.dot += float(np.dot(r, c))
            np.abs(d, out=d)  # in place: one pass fewer over large intermediate tensors
            self.sum_abs += float(np.sum(d))
            lo, hi = float(np.min(r)), float(np.max(r))  # np.max/np.min keep a NaN, max() would drop it
            self.max_abs = float(np.max([self.max_abs, np.max(d)]))
            self.peak = float(np.max([self.peak, hi, -lo]))
            self.ref_min, self.ref_max = float(np.min([self.ref_min, lo])), float(np.max([self.ref_max, hi]))

    @classmethod
    def per_channel(cls, ref, cand) -> list["Stats"]:
        """One Stats per index of the last axis of `ref`/`cand` (same shape, ndim ≥ 1)."""
        r, c = _f64(ref), _f64(cand)
        ch = r.shape[-1] if r.ndim else 1
        r2, c2 = r.reshape(-1, ch), c.reshape(-1, ch)
        return [cls.of(r2[:, k], c2[:, k]) for k in range(ch)]


# -- the formulas (each reads Stats; docstrings give the source) -------------------------------

def _max_abs(s: Stats) -> float:
    """max |ref − cand|, in the output's units."""
    return s.max_abs


def _mean_abs(s: Stats) -> float:
    """Σ|ref − cand| / n (mean absolute error)."""
    return s.sum_abs / s.n if s.n else 0.0


def _rmse(s: Stats) -> float:
    """√(Σ(ref − cand)² / n) (root-mean-square error)."""
    return math.sqrt(s.sum_sq_err / s.n) if s.n else 0.0


def _max_rel(s: Stats) -> float:
    """max|ref − cand| / max|ref|; inf when the reference is all zero and the candidate is not."""
    if s.peak > 0:
        return s.max_abs / s.peak
    return 0.0 if s.max_abs == 0 else math.inf


def _cosine(s: Stats) -> float:
    """Σr·c / (‖r‖·‖c‖) over the flattened arrays; 1 when both are zero, 0 when one is, or the
    error is not finite."""
    na, nb = math.sqrt(s.sum_sq_ref), math.sqrt(s.sum_sq_cand)
    if not (math.isfinite(s.dot) and math.isfinite(na) and math.isfinite(nb)):
        return 0.0
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(min(1.0, max(-1.0, s.dot / (na * nb))))


def _psnr_db(s: Stats) -> float:
    """20·log10(max|ref| / RMSE), peak signal-to-noise ratio with the reference's peak as the
    signal (as Qualcomm AI Hub's compare.py); +200 when identical, −200 when the reference is
    zero but the candidate is not or the error is not finite."""
    err = _rmse(s)
    if not math.isfinite(err):
        return -PERFECT_DB
    if err == 0:
        return PERFECT_DB
    if s.peak == 0:
        return -PERFECT_DB
    return min(PERFECT_DB, 20.0 * math.log10(s.peak / err))


def _snr_db(s: Stats) -> float:
    """10·log10(Σref² / Σ(ref − cand)²), signal power over error power."""
    if not math.isfinite(s.sum_sq_err):
        return -PERFECT_DB
    if s.sum_sq_err == 0:
        return PERFECT_DB
    if s.sum_sq_ref == 0:
        return -PERFECT_DB
    return min(PERFECT_DB, 10.0 * math.log10(s.sum_sq_ref / s.sum_sq_err))


def _top1(ref, cand) -> float:
    """mean over samples of [argmax(ref) == argmax(cand)] along the last axis."""
    r, c = _f64(ref), _f64(cand)
    return float(np.mean(np.argmax(r, -1) == np.argmax(c, -1)))


def _top5(ref, cand) -> float:
    """mean over samples of [argmax(ref) ∈ top-5(cand)] along the last axis."""
    r, c = _f64(ref), _f64(cand)
    k = min(5, c.shape[-1])
    top = np.argsort(-c, axis=-1)[..., :k]
    return float(np.mean(np.any(top == np.argmax(r, -1)[..., None], axis=-1)))


def _accuracy(scores, labels) -> float:
    """mean over samples of [argmax(scores) == label]."""
    labels = np.asarray(labels).reshape(-1)
    return float(np.mean(np.argmax(_f64(scores), -1).reshape(-1) == labels))


# -- the registry ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    """One parity metric.

    name: key in every result dict (JSON). formula: the one definition — reads `Stats` when
    kind is "elementwise", (ref, cand) arrays (N, ..., C) when "classes", (scores, labels) when
    "labels". meaning: one line, shown in help and reports. good: precision → threshold value
    (edgekit.parity.PRESETS is built from it); threshold: the preset key it fills ("min_…" =
    at least, "max_…" = at most), None when only reported. source: where the formula is from.

    Calling the metric, `m(ref, cand)`, computes it on two arrays (numpy-convertible, same shape).
    """

    name: str
    formula: Callable
    meaning: str
    source: str
    good: dict = field(default_factory=dict)
    threshold: str | None = None
    kind: str = "elementwise"

    def __call__(self, ref, cand) -> float:
        if self.kind == "elementwise":
            return self.formula(Stats.of(ref, cand))
        return self.formula(ref, cand)

    def what_good_is(self, precision: str) -> str:
        """'≥ 25 dB'-style text of the preset's limit for `precision`, or '' when not judged."""
        if precision not in self.good:
            return ""
        return ("≥ " if self.threshold.startswith("min_") else "≤ ") + f"{self.good[precision]:g}"


_P = PRECISIONS
REGISTRY: dict[str, Metric] = {m.name: m for m in (
    Metric("max_abs", _max_abs, "largest absolute difference; fp32 conversions stay below ~1e-4",
           "L∞ norm of the difference", threshold="max_abs"),
    Metric("mean_abs", _mean_abs, "average absolute difference", "mean absolute error"),
    Metric("max_rel", _max_rel, "largest difference relative to max|ref|; 0.01 = 1% of the output's range",
           "L∞ error over the reference's peak"),
    Metric("rmse", _rmse, "root-mean-square difference", "root-mean-square error"),
    Metric("cosine", _cosine, "cosine similarity of the flattened outputs; 1 = same direction, int8 keeps > 0.99",
           "cosine similarity (Qualcomm AI Hub compare.py)", dict(zip(_P, (0.9999, 0.999, 0.99, 0.95, 0.999))),
           "min_cosine"),
    Metric("psnr_db", _psnr_db, "20·log10(max|ref| / RMSE); fp32 > 60 dB, fp16 > 40 dB, good int8 > 25 dB",
           "PSNR with the reference's peak as signal (Qualcomm AI Hub compare.py)",
           dict(zip(_P, (60.0, 40.0, 25.0, 15.0, 35.0))), "min_psnr_db"),
    Metric("snr_db", _snr_db, "10·log10(Σref² / Σ(ref−cand)²): signal power over error power",
           "SNR, as the ExecuTorch devtools' numeric gap"),
    Metric("top1_agreement", _top1, "share of samples whose arg-max class is the same; 1.0 = every prediction kept",
           "top-1 agreement (Qualcomm AI Hub compare.py)", dict(zip(_P, (0.99, 0.98, 0.9, 0.85, 0.98))),
           "min_top1_agreement", "classes"),
    Metric("top5_agreement", _top5, "share of samples whose reference top-1 class is in the candidate's top 5",
           "top-5 agreement (Qualcomm AI Hub compare.py)", kind="classes"),
    Metric("accuracy", _accuracy, "share of samples whose arg-max equals the label; judged as the drop from the reference's",
           "classification accuracy", dict(zip(_P, (0.005, 0.01, 0.02, 0.02, 0.01))), "max_accuracy_drop", "labels"),
)}
ELEMENTWISE = tuple(m for m in REGISTRY.values() if m.kind == "elementwise")
MEANINGS = {name: m.meaning for name, m in REGISTRY.items()}  # shown by help and in reports

# The public functions of old, same names and signatures: each is its registry entry.
max_abs, mean_abs, max_rel, rmse = (REGISTRY[k] for k in ("max_abs", "mean_abs", "max_rel", "rmse"))
cosine, psnr_db, snr_db = REGISTRY["cosine"], REGISTRY["psnr_db"], REGISTRY["snr_db"]
top1_agreement, top5_agreement, accuracy = (REGISTRY[k] for k in ("top1_agreement", "top5_agreement", "accuracy"))


def presets(keys: tuple = ("min_psnr_db", "max_abs", "min_cosine", "min_top1_agreement", "max_accuracy_drop")) -> dict:
    """{precision: {threshold key: limit}} from every metric's `good`, keys in the order given."""
    by_key = {m.threshold: m for m in REGISTRY.values() if m.threshold}
    return {p: {k: by_key[k].good[p] for k in keys if k in by_key and p in by_key[k].good} for p in PRECISIONS}


def is_classifier_output(ref: np.ndarray) -> bool:
    """(N, C) with a few or more classes: treat the last axis as class scores."""
    return ref.ndim == 2 and ref.shape[1] >= 2


def from_stats(s: Stats) -> dict:
    """Every element-wise metric of `s`, {name: value}, in registry order."""
    return {m.name: m.formula(s) for m in ELEMENTWISE}


def compare(ref, cand) -> dict:
    """Every metric that applies to this pair of arrays (same shape, batch axis first):
    the element-wise ones, plus top-1/top-5 agreement when `ref` is (N, C) class scores."""
    out = from_stats(Stats.of(ref, cand))
    if is_classifier_output(np.asarray(ref)):
        out.update({m.name: m(ref, cand) for m in REGISTRY.values() if m.kind == "classes"})
    return out


def per_channel(ref, cand) -> list[dict]:
    """The element-wise metrics of each index of the last axis, plus the reference's range
    there: [{index, <metric>: value, ..., ref_min, ref_max}], one per channel."""
    return [{"index": k, **from_stats(s), "ref_min": s.ref_min, "ref_max": s.ref_max}
            for k, s in enumerate(Stats.per_channel(ref, cand))]


class Running(Stats):
    """The metrics of `compare` (without top-k) accumulated over chunks of (ref, cand), so that
    large intermediate tensors (per-layer parity) need not all be held at once: `add(ref, cand)`
    per chunk, then `result()` → {name: value}, the same registry formulas as `compare`."""

    def result(self) -> dict:
        """{metric name: value} of everything added so far (all zeros/perfect when nothing was)."""
        return from_stats(self)

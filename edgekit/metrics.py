"""Parity metrics, defined once. Each compares a reference array with a candidate of the same
shape; the one-line meaning says what a good value looks like."""

from __future__ import annotations

import math

import numpy as np

# name → meaning (shown by `edgekit validate --help` and in reports)
MEANINGS = {
    "max_abs": "largest absolute difference; fp32 conversions stay below ~1e-4",
    "mean_abs": "average absolute difference",
    "max_rel": "largest difference relative to max|ref|; 0.01 = 1% of the output's range",
    "rmse": "root-mean-square difference",
    "cosine": "cosine similarity of the flattened outputs; 1 = same direction, int8 keeps > 0.99",
    "psnr_db": "20·log10(max|ref| / RMSE); fp32 > 60 dB, fp16 > 40 dB, good int8 > 25 dB",
    "snr_db": "10·log10(Σref² / Σ(ref−cand)²): signal power over error power",
    "top1_agreement": "share of samples whose arg-max class is the same; 1.0 = every prediction kept",
    "top5_agreement": "share of samples whose reference top-1 class is in the candidate's top 5",
    "accuracy": "share of samples whose arg-max equals the label",
}

PERFECT_DB = 200.0  # reported instead of +inf when the outputs are identical (JSON has no inf)


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def max_abs(ref, cand) -> float:
    return float(np.max(np.abs(_f64(ref) - _f64(cand)))) if np.size(ref) else 0.0


def mean_abs(ref, cand) -> float:
    return float(np.mean(np.abs(_f64(ref) - _f64(cand)))) if np.size(ref) else 0.0


def rmse(ref, cand) -> float:
    return float(np.sqrt(np.mean((_f64(ref) - _f64(cand)) ** 2))) if np.size(ref) else 0.0


def max_rel(ref, cand) -> float:
    peak = float(np.max(np.abs(_f64(ref)))) if np.size(ref) else 0.0
    return max_abs(ref, cand) / peak if peak > 0 else (0.0 if max_abs(ref, cand) == 0 else math.inf)


def cosine(ref, cand) -> float:
    a, b = _f64(ref).ravel(), _f64(cand).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def psnr_db(ref, cand) -> float:
    err = rmse(ref, cand)
    peak = float(np.max(np.abs(_f64(ref)))) if np.size(ref) else 0.0
    if err == 0:
        return PERFECT_DB
    if peak == 0:
        return -PERFECT_DB
    return min(PERFECT_DB, 20.0 * math.log10(peak / err))


def snr_db(ref, cand) -> float:
    r = _f64(ref)
    noise = float(np.sum((r - _f64(cand)) ** 2))
    signal = float(np.sum(r**2))
    if noise == 0:
        return PERFECT_DB
    if signal == 0:
        return -PERFECT_DB
    return min(PERFECT_DB, 10.0 * math.log10(signal / noise))


def is_classifier_output(ref: np.ndarray) -> bool:
    """(N, C) with a few or more classes: treat the last axis as class scores."""
    return ref.ndim == 2 and ref.shape[1] >= 2


def top1_agreement(ref, cand) -> float:
    r, c = _f64(ref), _f64(cand)
    return float(np.mean(np.argmax(r, -1) == np.argmax(c, -1)))


def top5_agreement(ref, cand) -> float:
    r, c = _f64(ref), _f64(cand)
    k = min(5, c.shape[-1])
    top = np.argsort(-c, axis=-1)[..., :k]
    return float(np.mean(np.any(top == np.argmax(r, -1)[..., None], axis=-1)))


def accuracy(scores, labels) -> float:
    labels = np.asarray(labels).reshape(-1)
    return float(np.mean(np.argmax(_f64(scores), -1).reshape(-1) == labels))


def compare(ref, cand) -> dict:
    """Every metric that applies to this pair of arrays (batch axis first)."""
    out = {
        "max_abs": max_abs(ref, cand),
        "mean_abs": mean_abs(ref, cand),
        "max_rel": max_rel(ref, cand),
        "rmse": rmse(ref, cand),
        "cosine": cosine(ref, cand),
        "psnr_db": psnr_db(ref, cand),
        "snr_db": snr_db(ref, cand),
    }
    if is_classifier_output(np.asarray(ref)):
        out["top1_agreement"] = top1_agreement(ref, cand)
        out["top5_agreement"] = top5_agreement(ref, cand)
    return out


class Running:
    """The metrics of `compare` (without top-k) accumulated over chunks of (ref, cand), so that
    large intermediate tensors (per-layer parity) need not all be held at once. Same
    definitions as the functions above, computed from running sums."""

    def __init__(self):
        self.n = 0
        self.sum_abs = self.sum_sq_err = self.sum_sq_ref = self.sum_sq_cand = self.dot = 0.0
        self.max_abs = self.peak = 0.0

    def add(self, ref, cand) -> None:
        r, c = _f64(ref).ravel(), _f64(cand).ravel()
        if not r.size:
            return
        d = r - c
        self.n += r.size
        self.sum_sq_err += float(np.dot(d, d))
        self.sum_sq_ref += float(np.dot(r, r))
        self.sum_sq_cand += float(np.dot(c, c))
        self.dot += float(np.dot(r, c))
        np.abs(d, out=d)  # in place: one pass fewer over large intermediate tensors
        self.sum_abs += float(np.sum(d))
        self.max_abs = max(self.max_abs, float(np.max(d)))
        self.peak = max(self.peak, float(np.max(r)), -float(np.min(r)))

    def result(self) -> dict:
        n = max(self.n, 1)
        err = math.sqrt(self.sum_sq_err / n)
        na, nb = math.sqrt(self.sum_sq_ref), math.sqrt(self.sum_sq_cand)
        if na == 0 and nb == 0:
            cos = 1.0
        elif na == 0 or nb == 0:
            cos = 0.0
        else:
            cos = float(np.clip(self.dot / (na * nb), -1.0, 1.0))
        if err == 0:
            psnr = PERFECT_DB
        elif self.peak == 0:
            psnr = -PERFECT_DB
        else:
            psnr = min(PERFECT_DB, 20.0 * math.log10(self.peak / err))
        if self.sum_sq_err == 0:
            snr = PERFECT_DB
        elif self.sum_sq_ref == 0:
            snr = -PERFECT_DB
        else:
            snr = min(PERFECT_DB, 10.0 * math.log10(self.sum_sq_ref / self.sum_sq_err))
        if self.peak > 0:
            rel = self.max_abs / self.peak
        else:
            rel = 0.0 if self.max_abs == 0 else math.inf
        return {"max_abs": self.max_abs, "mean_abs": self.sum_abs / n, "max_rel": rel, "rmse": err,
                "cosine": cos, "psnr_db": psnr, "snr_db": snr}

"""Accuracy-aware selective int8: keep the fewest, most harmful layers in float until a bar holds.

The backend-independent half: the bar (`Bar`), the disjoint data splits (`split`), the scores
(`score`) and the search itself (`run`). A backend supplies an *engine* (search_pt2e.py for
ExecuTorch, search_tflite.py for Keras → TFLite) with:

- `layers`: the quantizable layer names, in graph order;
- `evaluate(float_layers) -> list[np.ndarray]`: the quantized model's outputs on the search
  split with FLOAT_LAYERS left in float (each array (N, ...), in the reference's output order);
- `sensitivity(reference, labels) -> {layer: dB}` (optional): a cheaper per-layer ranking
  (e.g. on fewer samples); without it each layer is measured by `evaluate(layers - {layer})`;
- `evaluate_exact(float_layers)` (optional): what the artifact would compute, used for the
  candidates of the greedy steps (the table) when `evaluate` is a cheaper simulation.

The search: score full int8 on the search split; rank layers by their sensitivity, the output
PSNR (dB) lost when that layer alone is int8 and every other weighted layer float; then keep the
top 1, 2, 4, ... layers float until the bar holds and bisect back to the fewest that meet it
(O(log n) evaluations, assuming more float layers never hurt). When that needs more than
REFINE_SHARE of the layers float (or never meets the bar), the rest are ranked once more on top
of the best failing prefix (`_rerank`) and the search repeats. Then, for the smallest artifact,
each of the PRUNE_TRIES largest float layers (by `engine.params`, those holding ≥ 1 % of the
parameters) is put back to int8 when the bar still holds without it. Every evaluation is a row
of the table the result carries.

Why one layer int8 among float ones, not one layer float among int8 ones: the second masks a
layer behind the others' error. On EfficientNet-Lite0 (64 calibration photos, 100 search photos)
quantizing the weights of `_blocks.0._depthwise_conv` alone (288 parameters) costs the logits
from 200 to 22.7 dB (all weights int8: 19.5 dB), yet keeping that layer alone float in full int8
gained 0.4 dB, below most others; ranked that way the search reached its bar only with all 50
layers float. The same two-sided analysis is AIMET's per-layer quantizer analysis (quantize one
layer, or disable one) and NNCF's accuracy-aware ranking. Ties go to the layer with fewer
parameters (`engine.params`, when the engine has it), the cheaper one to keep float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgekit.errors import BadInput
from edgekit.metrics import is_classifier_output

BARS = {  # option → (parity threshold key, unit, how the option's value maps to the threshold)
    "max_accuracy_drop": ("max_accuracy_drop", "points", lambda v: v / 100.0),
    "min_top1_agreement": ("min_top1_agreement", "", lambda v: v),
    "min_psnr": ("min_psnr_db", "dB", lambda v: v),
}
MIN_SPLIT = 8  # fewest samples a calibration, search or held-out split may have
PRUNE_TRIES = 3  # largest float layers the search tries to put back to int8 once the bar holds
PRUNE_MIN_SHARE = 0.01  # ... when each holds at least this share of the model's parameters
REFINE_SHARE = 1 / 3  # rank again (_rerank) when the first ranking needs more than this share float


@dataclass(frozen=True)
class Bar:
    """The accuracy bar of a search.

    Args:
        option: "max_accuracy_drop" (value in points, labels needed), "min_top1_agreement"
            (0..1, share of samples whose top-1 class is kept) or "min_psnr" (dB).
        value: the user's number, in the option's unit.
    """

    option: str
    value: float

    @property
    def threshold_key(self) -> str:
        """The edgekit.parity threshold the final verdict uses (min_psnr → min_psnr_db ...)."""
        return BARS[self.option][0]

    @property
    def threshold(self) -> float:
        """The bar in parity's units (accuracy drop as a fraction: 1 point → 0.01)."""
        return BARS[self.option][2](self.value)

    def holds(self, scores: dict) -> bool:
        """True when SCORES (from `score`) meet the bar; False when the score is missing."""
        key = {"max_accuracy_drop": "accuracy_drop", "min_top1_agreement": "top1_agreement",
               "min_psnr": "psnr_db"}[self.option]
        got = scores.get(key)
        if got is None or (isinstance(got, float) and math.isnan(got)):
            return False
        return got <= self.threshold if self.option == "max_accuracy_drop" else got >= self.threshold

    def __str__(self) -> str:
        unit = BARS[self.option][1]
        return f"{self.option.replace('_', '-')} {self.value:g}{(' ' + unit) if unit else ''}"


def bar_from(max_accuracy_drop=None, min_top1_agreement=None, min_psnr=None, recipe: str = "int8") -> Bar | None:
    """The Bar of convert's options (None when none is set).

    Raises BadInput (exit 2) when more than one is set, a value is out of range (top-1 in
    (0, 1], accuracy drop ≥ 0 points), or the recipe is not int8."""
    given = {k: v for k, v in (("max_accuracy_drop", max_accuracy_drop), ("min_top1_agreement", min_top1_agreement),
                               ("min_psnr", min_psnr)) if v is not None}
    if not given:
        return None
    if len(given) > 1:
        raise BadInput(f"Give one accuracy bar, not {len(given)} ({', '.join('--' + k.replace('_', '-') for k in given)}).",
                       "Keep the one that matters for the task.")
    if recipe != "int8":
        raise BadInput(f"--{next(iter(given)).replace('_', '-')} chooses which layers stay float in an int8 build; "
                       f"--quantize is {recipe}.", "Add --quantize int8.")
    (option, value), = given.items()
    if option == "min_top1_agreement" and not 0 < value <= 1:
        raise BadInput(f"--min-top1-agreement {value:g} is a share of samples in (0, 1].", "e.g. --min-top1-agreement 0.97")
    if option == "max_accuracy_drop" and value < 0:
        raise BadInput(f"--max-accuracy-drop {value:g} is in points (≥ 0).", "e.g. --max-accuracy-drop 1")
    return Bar(option, float(value))


def _slice(samples, a: int, b: int):
    from edgekit.data import Samples

    labels = None if samples.labels is None else samples.labels[a:b]
    return Samples({k: v[a:b] for k, v in samples.inputs.items()}, labels, samples.is_random, samples.source)


def split(calib, data, bar: Bar):
    """Disjoint calibration / search / held-out splits of the user's data.

    Args:
        calib: the calibration `Samples` (--calibration).
        data: the `Samples` of --data when it is another file than --calibration, else None.
        bar: the Bar (accuracy needs labels in the search and held-out splits).

    With separate --data: calibration is all of CALIB, search the first half of DATA, held-out
    the second half. Without: CALIB in thirds, in file order. Returns (calib, search, holdout,
    sizes {"calibration", "search", "holdout"}). Raises BadInput (exit 2) when a split would
    hold fewer than MIN_SPLIT samples, or when the bar needs labels the data lacks."""
    if data is None:
        n = len(calib)
        a, b = n // 3, 2 * n // 3
        parts = (_slice(calib, 0, a), _slice(calib, a, b), _slice(calib, b, n))
        where = "--calibration (split in thirds: calibration, search, held-out)"
    else:
        h = len(data) // 2
        parts = (calib, _slice(data, 0, h), _slice(data, h, len(data)))
        where = "--data (split in halves: search, held-out) and --calibration"
    sizes = dict(zip(("calibration", "search", "holdout"), map(len, parts)))
    if min(sizes.values()) < MIN_SPLIT:
        raise BadInput(f"The accuracy-aware search needs disjoint calibration, search and held-out samples (at least "
                       f"{MIN_SPLIT} each); {where} gives {sizes}.",
                       "Pass more samples, e.g. --calibration calib.npz (≥ 100) and --data test.npz (≥ 100, with labels).")
    if bar.option == "max_accuracy_drop" and (parts[1].labels is None or parts[2].labels is None):
        raise BadInput("--max-accuracy-drop needs task labels in the data (a 'labels' array in the .npz).",
                       "Add labels, or use --min-top1-agreement / --min-psnr, which compare with the float model.")
    return (*parts, sizes)


def score(ref: list, cand: list, labels=None) -> dict:
    """Scores of the candidate's outputs against the float reference's on the same samples.

    Args:
        ref, cand: lists of arrays (N, ...) in the same output order.
        labels: (N,) class labels or None.

    Returns {"psnr_db": min over outputs of 20·log10(max|ref| / RMSE) (inf when equal), "mse",
    and when the first output is (N, C) class scores (`metrics.is_classifier_output`)
    "top1_agreement" and, with labels, "accuracy_drop": reference accuracy − candidate accuracy
    as a fraction}. Definitions as edgekit/metrics.py's."""
    psnrs, mses = [], []
    for r, c in zip(ref, cand):
        r64, c64 = np.asarray(r, np.float64), np.asarray(c, np.float64).reshape(np.shape(r))
        mse = float(np.mean((r64 - c64) ** 2))
        peak = float(np.max(np.abs(r64))) if r64.size else 0.0
        psnrs.append(float("inf") if mse == 0 else 20 * math.log10(max(peak, 1e-30) / math.sqrt(mse)))
        mses.append(mse)
    out = {"psnr_db": min(psnrs), "mse": sum(mses)}
    if not is_classifier_output(np.asarray(ref[0])):  # a map or a sequence: arg-max agreement means nothing
        return out
    r0, c0 = np.asarray(ref[0]), np.asarray(cand[0]).reshape(np.shape(ref[0]))
    out["top1_agreement"] = float(np.mean(r0.argmax(1) == c0.argmax(1)))
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        out["accuracy_drop"] = float(np.mean(r0.argmax(1) == lab) - np.mean(c0.argmax(1) == lab))
    return out


def run(engine, reference: list, bar: Bar, labels=None, log=lambda msg: None) -> dict:
    """Search the fewest float layers that make ENGINE's quantized model meet BAR on the search
    split (see the module docstring).

    Args:
        engine: the backend's engine (`layers`, `evaluate`, optional `sensitivity`).
        reference: the float model's outputs on the search split (list of (N, ...) arrays).
        bar: the Bar.
        labels: the search split's labels (for max_accuracy_drop), or None.

    Returns {"float_layers": [{"name", "sensitivity_db"}], "met": bool, "bar": str,
    "sensitivity": {layer: dB lost when that layer alone is int8}, "tried": [rows: {"float_layers", "layers", scores...,
    "meets_bar"}], "evaluations": int}; when no set met the bar, float_layers is the best one
    tried (highest bar score)."""
    tried: list[dict] = []

    exact = getattr(engine, "evaluate_exact", engine.evaluate)

    def trial(names: tuple) -> dict:
        s = score(reference, exact(set(names)), labels)
        row = {"float_layers": len(names), "layers": list(names), **_rounded(s), "meets_bar": bar.holds(s)}
        tried.append(row)
        log(f"  {len(names)} layer(s) float: PSNR {s['psnr_db']:.1f} dB"
            + (f", top-1 {s['top1_agreement']:.3f}" if "top1_agreement" in s else "")
            + (f", accuracy drop {100 * s['accuracy_drop']:.2f} pt" if "accuracy_drop" in s else "")
            + (" — meets the bar" if row["meets_bar"] else ""))
        return row

    if bar.option != "min_psnr" and not is_classifier_output(np.asarray(reference[0])):
        raise BadInput(f"--{bar.option.replace('_', '-')} compares class scores, an (N, C) first output; this model's "
                       f"is shaped {tuple(np.shape(reference[0]))[1:]} per sample.",
                       "Use --min-psnr DB, which compares any output with the float model's.")
    base = trial(())
    sens: dict = {}
    if not base["meets_bar"] and engine.layers:
        if hasattr(engine, "sensitivity"):
            sens = engine.sensitivity(reference, labels)
        else:
            every = set(engine.layers)
            float_psnr = _psnr_or_big(score(reference, engine.evaluate(every), labels)["psnr_db"])
            for name in engine.layers:
                s = score(reference, engine.evaluate(every - {name}), labels)
                sens[name] = round(float_psnr - _psnr_or_big(s["psnr_db"]), 3)
    params = getattr(engine, "params", {}) or {}
    order = sorted(engine.layers, key=lambda n: (-sens.get(n, 0.0), params.get(n, 0)))

    def fewest(order: list, start: int = 0) -> tuple | None:
        """The shortest prefix of ORDER (longer than START) that meets the bar, or None:
        doubling, then bisection (O(log n) trials)."""
        lo, hi, k = start, None, start + 1  # lo: largest count known to fail; hi: smallest known to pass
        while k <= len(order):
            if trial(tuple(order[:k]))["meets_bar"]:
                hi = k
                break
            lo = k
            if k == len(order):
                break
            k = min(2 * k, len(order))
        while hi is not None and hi - lo > 1:
            mid = (lo + hi) // 2
            if trial(tuple(order[:mid]))["meets_bar"]:
                hi = mid
            else:
                lo = mid
        return None if hi is None else tuple(order[:hi])

    found = () if base["meets_bar"] else fewest(order)
    if not base["meets_bar"] and (found is None or len(found) > REFINE_SHARE * len(order)):
        order, start = _rerank(engine, reference, labels, bar, order, tried, log)
        again = fewest(order, start)
        if again is not None and (found is None or len(again) < len(found)):
            found = again
    if found and params:  # the smallest artifact: drop the largest float layers the bar does not need
        total = sum(params.values()) or 1
        for name in sorted(found, key=lambda n: -params.get(n, 0))[:PRUNE_TRIES]:
            if params.get(name, 0) < PRUNE_MIN_SHARE * total:
                break
            rest = tuple(n for n in found if n != name)
            if trial(rest)["meets_bar"]:
                found = rest
    met = found is not None
    if not met:  # the best one tried, by the bar's own score
        best = max(tried, key=lambda r: _bar_score(bar, r))
        found = tuple(best["layers"])
    return {"bar": str(bar), "met": met,
            "float_layers": [{"name": n, "sensitivity_db": sens.get(n)} for n in found],
            "sensitivity": {n: sens[n] for n in order if n in sens},
            "tried": tried, "evaluations": len(tried)}


def _rerank(engine, reference, labels, bar, order: list, tried: list, log) -> tuple[list, int]:
    """Rank again when the first ranking needed too many float layers: the one-layer-int8
    sensitivities assume that errors add, and an op whose error grows through the int8 ops after
    it looks harmless alone. On PP-OCRv4's detector (.tflite) one conv ranked 196th of 239 (23.6 dB
    alone, others up to 45 dB) held every prefix at ~27 dB until it was float (33.4 dB).

    From the prefix of ORDER with the best bar score that failed (ties: the shorter), each other
    layer is scored kept float on top of it (`engine.evaluate`, the cheap path), and the rest of
    ORDER is re-sorted by that score, best first: one greedy step of NNCF-style re-ranking, one
    evaluation per remaining layer. On the detector this took 196 float layers down to 126
    (re-ranking on top of the plateau's start, 16 layers, gave 128 for twice the evaluations).
    Returns (the new order, the prefix length it starts from)."""
    failed = [r for r in tried if not r["meets_bar"] and r["layers"] == order[:r["float_layers"]]]
    base = max(failed, key=lambda r: (_bar_score(bar, r), -r["float_layers"]))
    prefix = order[:base["float_layers"]]
    log(f"  ranking again on top of {len(prefix)} float layer(s): {len(order) - len(prefix)} evaluations")
    gain = {n: _bar_score(bar, _rounded(score(reference, engine.evaluate(set(prefix) | {n}), labels)))
            for n in order[len(prefix):]}
    rest = sorted(order[len(prefix):], key=lambda n: -gain[n])  # stable: ties keep the first ranking
    return prefix + rest, len(prefix)


def _psnr_or_big(v) -> float:
    return 200.0 if v is None or v == float("inf") else float(v)


def _bar_score(bar: Bar, row: dict) -> float:
    if bar.option == "max_accuracy_drop":
        return -row.get("accuracy_drop", 1.0)
    return row.get("top1_agreement", 0.0) if bar.option == "min_top1_agreement" else _psnr_or_big(row["psnr_db"])


def _rounded(s: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else (None if isinstance(v, float) else v))
            for k, v in s.items()}


def short_name(name: str) -> str:
    """A layer name for the terminal. litert-torch names a .tflite tensor by every module scope
    fused into its op, ";"-separated, each a "/"-path of "package.Class__attribute" parts
    ("…EfficientNet/…MBConvBlock_0/…Conv2dStaticSamePadding__depthwise_conv;;…;1"): the scope of
    the conv/linear, as its attributes ("MBConvBlock_0/depthwise_conv"). Other names unchanged;
    `--json` and the manifest keep the full name."""
    if len(name) <= 60 or "/" not in name:
        return name
    scopes = [p for p in name.split(";") if "/" in p]
    pick = next((p for p in scopes if any(k in p.rsplit("/", 1)[-1].lower() for k in ("conv", "linear", "dense"))),
                scopes[0] if scopes else name)
    parts = [seg.rsplit("__", 1)[-1] if "__" in seg else seg.rsplit(".", 1)[-1] for seg in pick.split("/")]
    return "/".join(parts[1:] or parts)


def table_text(info: dict) -> str:
    """The search's `tried` rows as lines for the terminal (one per evaluation)."""
    lines = []
    for r in info["tried"]:
        acc = f", drop {100 * r['accuracy_drop']:.2f} pt" if r.get("accuracy_drop") is not None else ""
        psnr = "inf" if r["psnr_db"] is None else f"{r['psnr_db']:.1f}"
        top1 = f", top-1 {r['top1_agreement']:.3f}" if r.get("top1_agreement") is not None else ""
        lines.append(f"{r['float_layers']:>3} float: PSNR {psnr} dB{top1}{acc}"
                     f"{' ✓' if r['meets_bar'] else ''}  {', '.join(map(short_name, r['layers'][:6]))}{' …' if len(r['layers']) > 6 else ''}")
    return "\n".join(lines)


def notes(quant: dict) -> list[str]:
    """Terminal/manifest lines saying which layers stayed float and why, and what they cost;
    [] when QUANT (an artifact's `quantization`) has no search."""
    info = quant.get("search")
    if info is None:
        return []
    fl = quant.get("float_layers") or []
    sp = info.get("splits") or {}
    out = [f"Accuracy-aware int8 ({info['bar']}): {len(fl)} of {info.get('layers', '?')} layer(s) kept float"
           + (": " + ", ".join(f"{short_name(f['name'])} (int8 alone costs {f['sensitivity_db']:.1f} dB, {f.get('params', 0)} params)"
                              if f.get("sensitivity_db") is not None else f["name"] for f in fl) if fl else "")
           + f"; {info['evaluations']} candidates scored on the search split ({sp.get('search')} samples), "
           f"calibrated on {sp.get('calibration')}, verdict on {sp.get('holdout')} held-out samples."]
    cost = info.get("cost") or {}
    if fl and cost:
        out.append(f"The float layers hold {cost['float_params']} of {cost['params']} parameters: about "
                   f"{cost['extra_bytes_vs_full_int8_estimate'] / 1e3:.1f} kB more than full int8.")
    if not info.get("met"):
        out.append("No configuration met the bar on the search split; what was tried:\n" + table_text(info))
    return out

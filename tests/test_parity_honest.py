"""Parity that cannot be fooled (issue 11): small-scale values packed beside large ones, NaN/Inf
in the candidate, NaN/Inf in the reference. And metrics defined once (issue 10)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit import metrics, parity
from edgekit.data import Samples
from edgekit.specs import TensorSpec

INT8 = parity.thresholds_for("int8")


def _packed(n=64, seed=0):
    """Detector-like rows: 4 box coordinates in pixels (0..640) beside 3 class scores in 0..1."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(0, 640, (n, 20, 4)), rng.uniform(0, 1, (n, 20, 3))], -1).astype(np.float32)


def _int8_output(ref):
    """What full int8 does to such an output: one scale (range/255) for the whole tensor."""
    scale = float(ref.max() - ref.min()) / 255
    return (np.round((ref - ref.min()) / scale) * scale + ref.min()).astype(np.float32)


# -- packed scales ---------------------------------------------------------------------------

def test_packed_scales_flattened_scores_fail_though_whole_tensor_psnr_passes():
    ref = _packed()
    cand = _int8_output(ref)
    whole = metrics.compare(ref, cand)
    assert whole["psnr_db"] > 40 and whole["cosine"] > 0.999  # what passed before: the whole tensor
    assert parity._judge(whole, INT8) == []
    entry, _ = parity.judge_output(ref, cand, INT8)
    assert not entry["passed"]
    w = entry["worst_channel"]
    assert w["index"] >= 4 and w["channels"] == 7 and w["psnr_db"] < 15 and not w["passed"]
    assert any("channel" in f and "PSNR" in f for f in entry["failures"])


def test_healthy_int16_like_output_passes_per_channel():
    ref = _packed()
    scale = float(ref.max() - ref.min()) / 65535  # 16-bit steps keep the scores
    cand = np.round(ref / scale) * scale
    entry, _ = parity.judge_output(ref, cand, INT8)
    assert entry["passed"] and entry["worst_channel"]["passed"]


def test_constant_channel_judged_against_the_output_peak():
    ref = _packed()
    ref[..., 6] = 0.0  # a channel the samples never exercise
    near = ref.copy()
    near[..., 6] = 0.5  # 0.5 off on a 640 output: 62 dB below its peak, fine for int8
    entry, _ = parity.judge_output(ref, near, {"min_psnr_db": 15.0})
    assert entry["passed"]
    far = ref.copy()
    far[..., 6] = 300.0  # off by half the output's range: a broken channel
    entry, _ = parity.judge_output(ref, far, {"min_psnr_db": 15.0})
    w = entry["worst_channel"]
    assert not entry["passed"] and w["index"] == 6 and w["constant_in_reference"]
    assert w["judged_db"] == pytest.approx(20 * math.log10(640 / 300), abs=0.1)


def test_class_scores_and_probabilities_are_not_judged_per_channel():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 5, (32, 10))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert not parity.judged_per_channel(logits)  # top-1 is their verdict
    assert not parity.judged_per_channel(probs)
    assert parity.judged_per_channel(_packed()[:, 0])  # 2-D but boxes in pixels beside scores
    assert not parity.judged_per_channel(np.zeros((4, 2000)))  # too wide to be features


def test_packed_scales_end_to_end_int8_tflite(digits, tmp_path):
    """A real Keras model whose output packs pixel boxes beside 0..1 scores, converted by edgekit
    to full int8: the scores collapse, whole-tensor PSNR still passes, the verdict must not."""
    import keras

    import edgekit

    keras.utils.set_random_seed(0)
    x = keras.Input((64,), name="features")
    h = keras.layers.Dense(32, activation="relu")(x)
    boxes = keras.layers.Rescaling(640.0)(keras.layers.Dense(4, activation="sigmoid")(h))
    scores = keras.layers.Dense(3, activation="sigmoid")(h)
    model = keras.Model(x, keras.layers.Concatenate(name="detections")([boxes, scores]))
    model.save(tmp_path / "packed.keras")
    feats = digits["x_train"].reshape(-1, 64)
    np.savez(tmp_path / "calib.npz", features=feats[:200])
    np.savez(tmp_path / "test.npz", features=digits["x_test"].reshape(-1, 64)[:64])
    out = tmp_path / "packed_int8.tflite"
    edgekit.convert(str(tmp_path / "packed.keras"), quantize="int8", calibration=str(tmp_path / "calib.npz"),
                    output=out, validate=False)
    res = edgekit.validate(str(tmp_path / "packed.keras"), str(out), data=str(tmp_path / "test.npz"))
    o = res["parity"]["outputs"][0]
    assert res["parity"]["precision"] == "int8"
    assert o["psnr_db"] >= INT8["min_psnr_db"] and parity._judge(o, INT8) == []  # passed before
    assert not res["passed"] and not o["passed"]
    assert o["worst_channel"]["index"] >= 4 and not o["worst_channel"]["passed"]


# -- non-finite values -----------------------------------------------------------------------

def test_nan_candidate_fails_and_says_so():
    ref = np.random.default_rng(2).normal(size=(8, 16)).astype(np.float32)
    cand = np.full_like(ref, np.nan)  # an fp16 graph that overflowed past 65504
    assert metrics.psnr_db(ref, cand) == -metrics.PERFECT_DB  # no more "200 dB"
    entry, _ = parity.judge_output(ref, cand, parity.thresholds_for("fp16"))
    assert not entry["passed"] and entry["psnr_db"] == -metrics.PERFECT_DB
    assert entry["failures"][0].startswith("128 of 128 values are NaN/Inf in the candidate")
    assert entry["candidate_nonfinite"] == {"values": 128, "of": 128, "nan": 128, "inf": 0}


def test_inf_candidate_no_traceback():
    ref = _packed(8)
    cand = ref.copy()
    cand[2, 3, 1] = np.inf
    cand[4, 0, 5] = -np.inf
    for name in metrics.ELEMENTWISE:  # every formula takes it
        assert not math.isnan(name(ref, cand)) or name.name in ("max_abs", "mean_abs", "rmse", "max_rel")
    run = metrics.Running()
    run.add(ref, cand)
    assert run.result()["psnr_db"] == -metrics.PERFECT_DB
    entry, _ = parity.judge_output(ref, cand, INT8)
    assert not entry["passed"] and "2 of 1120 values are NaN/Inf in the candidate" in entry["failures"][0]
    assert all(math.isfinite(entry[k]) for k in ("max_abs", "mean_abs", "rmse", "psnr_db", "cosine"))


def test_reference_nonfinite_samples_reported_and_judged_apart():
    ref = np.random.default_rng(3).normal(size=(10, 6)).astype(np.float32)
    ref[3, 2] = np.nan
    ref[7, 0] = np.inf
    cand = np.where(np.isfinite(ref), ref + 1e-6, ref)
    entry, notes = parity.judge_output(ref, cand, parity.thresholds_for("fp32"), "y")
    assert entry["reference_nonfinite"] == {"samples": [3, 7], "values": 2, "candidate_nonfinite_same_places": True}
    assert entry["passed"] and entry["psnr_db"] > 60  # the finite samples are judged, and pass
    assert "index 3, 7" in notes[0] and "'y'" in notes[0]


class _FakeSession:
    """A candidate that returns the reference's values, NaN on sample 1."""

    runtime, native_log = "fake", ""

    def __init__(self):
        self.inputs = [TensorSpec("x", (1, 4), "float32")]
        self.outputs = [TensorSpec("y", (1, 4), "float32")]

    def run(self, feeds):
        x = feeds["x"]
        return {"y": np.full_like(x, np.nan) if x[0, 0] == 4 else x * 2}


def test_check_reports_reference_nonfinite_before_judging_and_fails_nan():
    xs = np.arange(16, dtype=np.float32).reshape(4, 4)

    def reference(inputs):
        y = inputs["x"] * 2
        y[3, 0] = np.inf
        return {"y": y}

    result = parity.check(reference, _FakeSession(), Samples({"x": xs}), "fp32").to_dict()
    o = result["outputs"][0]
    assert not result["passed"] and o["reference_nonfinite"]["samples"] == [3]
    assert "values are NaN/Inf in the candidate" in o["failures"][0]
    assert "NaN/Inf on 1 of 4 sample(s) (index 3)" in result["notes"][0]


# -- metrics defined once --------------------------------------------------------------------

def test_registry_is_the_single_source():
    for name, m in metrics.REGISTRY.items():
        assert m.name == name and m.meaning and m.source and m.formula.__doc__
    assert metrics.MEANINGS == {k: m.meaning for k, m in metrics.REGISTRY.items()}
    for precision, t in parity.PRESETS.items():
        assert precision in metrics.PRECISIONS
        assert t["min_psnr_db"] == metrics.psnr_db.good[precision]
        assert t["min_cosine"] == metrics.cosine.good[precision]
    assert metrics.psnr_db.what_good_is("int8") == "≥ 15"


def test_streaming_whole_and_per_channel_agree():
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(12, 5, 3))
    cand = ref + rng.normal(scale=0.01, size=ref.shape)
    run = metrics.Running()
    for i in range(0, 12, 5):
        run.add(ref[i : i + 5], cand[i : i + 5])
    whole = metrics.compare(ref, cand)
    for k, v in run.result().items():
        assert v == pytest.approx(whole[k], rel=1e-9)
    chans = metrics.per_channel(ref, cand)
    for ch in chans:
        k = ch["index"]
        assert ch["psnr_db"] == pytest.approx(metrics.psnr_db(ref[..., k], cand[..., k]))

"""Offline Edge TPU prediction (`edgekit inspect --edgetpu`) on real .tflite files converted by
TensorFlow here, and `edgekit convert --to edgetpu` (the real edgetpu_compiler when on PATH)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.edgetpu_compat import CUT_REASON, SUPPORTED, analyze, compare_with_compiler
from edgekit.tool_output import parse_edgetpu_compiler
from tests.conftest import FIXTURES, run_cli


def _keras(kind: str, batch: int | None = 1):
    import keras

    keras.utils.set_random_seed(0)
    x = inp = keras.Input((16, 16, 3), batch_size=batch, name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    if kind == "leaky":
        x = keras.layers.LeakyReLU(0.1)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(10)(x)
    return keras.Model(inp, keras.layers.Softmax()(x))


def _int8(model, io: str, batch: int = 1) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.random((batch, 16, 16, 3), np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io != "float32":
        conv.inference_input_type = conv.inference_output_type = getattr(tf, io)
    return conv.convert()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("edgetpu-models")
    out = {}
    for name, kind, io, batch in [("plain", "plain", "int8", 1), ("leaky", "leaky", "int8", 1),
                                  ("float_io", "plain", "float32", 1), ("uint8_io", "plain", "uint8", 1),
                                  ("batch4", "plain", "int8", 4)]:
        p = d / f"{name}.tflite"
        p.write_bytes(_int8(_keras(kind, batch), io, batch))
        out[name] = p
    import tensorflow as tf

    fp = d / "float.tflite"
    fp.write_bytes(tf.lite.TFLiteConverter.from_keras_model(_keras("plain", None)).convert())
    out["float_dynamic"] = fp
    return out


def test_fully_int8_model_is_predicted_whole_on_the_tpu(models):
    r = analyze(models["plain"])
    assert r["compatible"] and r["predicted_tpu_ops"] == r["total_ops"] == 7 and r["cut"] is None
    assert {o["op"] for o in r["ops"]} <= set(SUPPORTED)
    assert r["model_issues"] == [] and r["parameters_fit_on_chip"]


def test_unsupported_op_cuts_the_graph_and_everything_after_runs_on_cpu(models):
    r = analyze(models["leaky"])
    assert r["cut"]["op"] == "LEAKY_RELU" and r["cut"]["index"] == 1
    assert r["unsupported_op_types"] == ["LEAKY_RELU"]
    placement = [(o["op"], o["placement"]) for o in r["ops"]]
    assert placement[0] == ("CONV_2D", "edgetpu")
    assert all(p == "cpu" for _, p in placement[1:])
    assert all(o["reasons"] == [CUT_REASON] for o in r["ops"][2:])
    assert r["predicted_tpu_ops"] == 1 and r["predicted_tpu_share"] == pytest.approx(1 / 8)


def test_float_io_quantize_in_front_does_not_cut_but_is_reported(models):
    r = analyze(models["float_io"])
    assert r["ops"][0]["op"] == "QUANTIZE" and r["ops"][0]["placement"] == "cpu"
    assert r["ops"][1]["placement"] == "edgetpu"  # the Edge TPU part starts after the leading QUANTIZE
    assert r["ops"][-1]["op"] == "DEQUANTIZE" and r["ops"][-1]["placement"] == "cpu"
    assert any("not 8-bit integer" in i for i in r["model_issues"])
    assert not r["compatible"] and r["predicted_tpu_ops"] == r["total_ops"] - 2
    assert analyze(models["uint8_io"])["predicted_tpu_ops"] >= r["predicted_tpu_ops"]


def test_batch_above_one_breaks_the_three_innermost_dimensions_rule(models):
    r = analyze(models["batch4"])
    assert any("3 innermost" in i for i in r["model_issues"])
    four_d = [o for o in r["ops"] if o["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "MEAN")]
    assert four_d and all(o["placement"] == "cpu" and "rank" in o["reasons"][0] for o in four_d)


def test_float_model_with_dynamic_batch(models):
    r = analyze(models["float_dynamic"])
    issues = " ".join(r["model_issues"])
    assert "dynamic shape" in issues and "not 8-bit integer" in issues and r["predicted_tpu_ops"] == 0


def test_cli_inspect_table_json_and_verdict(models, tmp_path):
    r = run_cli("inspect", models["leaky"], "--edgetpu", "--json")
    assert r.exit_code == 0, r
    assert r.json()["cut"]["op"] == "LEAKY_RELU" and "cut the graph at op 1" in r.stderr
    assert run_cli("inspect", models["leaky"], "--edgetpu", "--require-full").exit_code == 1
    assert run_cli("inspect", models["plain"], "--edgetpu", "--require-full").exit_code == 0
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    bad = run_cli("inspect", junk, "--edgetpu")
    assert bad.exit_code == 2 and "not a TFLite flatbuffer" in bad.stderr


def test_compare_with_a_recorded_compiler_report(models):
    """The comparison logic, on the real compiler report format (the models behind the recorded
    reports are not available: benchmarks/bench_edgetpu.py reports the agreement honestly)."""
    report = parse_edgetpu_compiler((FIXTURES / "tool-outputs" / "edgetpu_compiler_partial.txt").read_text())
    c = compare_with_compiler(analyze(models["leaky"]), report)
    assert c["compiler_unsupported"] == ["CUSTOM"] and c["predicted_unsupported"] == ["LEAKY_RELU"]
    assert not c["same_unsupported_ops"] and not c["same_cut_op"]


def test_convert_to_edgetpu_keeps_int8_and_predicts(keras_digits, digits_files, tmp_path):
    out = tmp_path / "digits_int8.tflite"
    r = run_cli("convert", keras_digits["keras"], "--to", "edgetpu", "--quantize", "int8", "--io-dtype", "int8",
                "--calibration", digits_files / "calib.npz", "--data", digits_files / "test.npz",
                "--samples", "16", "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    manifest = json.loads((tmp_path / "digits_int8.tflite.json").read_text())
    info = manifest["edgetpu"]
    assert res["edgetpu"]["prediction"]["predicted_tpu_ops"] == info["prediction"]["predicted_tpu_ops"]
    assert info["prediction"]["total_ops"] > 0 and info["prediction"]["model"] == str(out)
    assert out.is_file() and res["parity"]["passed"]
    if shutil.which("edgetpu_compiler") is None:
        assert info["compiler"] is None
        assert any("edgetpu_compiler is not on PATH" in w for w in res["warnings"])
        assert not (tmp_path / "digits_int8_edgetpu.tflite").exists()
    else:  # pragma: no cover - only where Coral's compiler is installed
        assert (tmp_path / "digits_int8_edgetpu.tflite").is_file() and info["compiler"]["total_ops"] > 0


def test_convert_to_edgetpu_needs_int8():
    r = run_cli("convert", "nothing.keras", "--to", "edgetpu")
    assert r.exit_code == 2


@pytest.mark.skipif(shutil.which("edgetpu_compiler") is None,
                    reason="edgetpu_compiler is not installed (x86-64 Debian apt from Coral; not in Debian or PyPI); "
                           "its report parser is tested on recorded real output in tests/test_tool_output_parsers.py")
def test_real_compiler_agrees_with_prediction(models, tmp_path):  # pragma: no cover
    from edgekit.converters.edgetpu import compile_model

    for name in ("plain", "leaky"):
        rep = compile_model(shutil.which("edgetpu_compiler"), models[name], tmp_path / f"{name}_edgetpu.tflite")
        c = compare_with_compiler(analyze(models[name]), rep)
        assert c["same_unsupported_ops"] and c["same_cut_op"], c

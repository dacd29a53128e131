"""Keras / SavedModel → TFLite through the CLI, on a CNN trained on real digits."""

import json
from pathlib import Path

import numpy as np
import pytest

from ai_edge_litert.interpreter import Interpreter

MODELS = str(Path(__file__).parents[1] / "models_keras.py")


def tensor_dtypes(path):
    interp = Interpreter(model_path=str(path))
    ops = interp._get_ops_details()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    produced = {o for op in ops for o in op["outputs"]}
    inputs = {d["index"] for d in interp.get_input_details()}
    consts = {i for op in ops for i in op["inputs"] if i >= 0 and i not in produced and i not in inputs}
    weights = {np.dtype(tensors[i]["dtype"]).name for i in consts}
    acts = {np.dtype(tensors[i]["dtype"]).name for i in produced}
    return weights, acts, interp


def test_int8_keeps_accuracy_within_one_point(cli, keras_digits, digits_files, tmp_path):
    out = tmp_path / "digits_int8.tflite"
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "--calibration", digits_files / "calib.npz",
            "--data", digits_files / "test.npz", "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    acc = res["parity"]["accuracy"]
    assert acc["reference"] == pytest.approx(keras_digits["accuracy"], abs=1e-6)
    assert abs(acc["delta"]) <= 0.01, acc
    assert res["parity"]["passed"] and res["parity"]["samples"] == 397
    assert res["size_bytes"] == out.stat().st_size
    # the manifest beside the file says the same, with the int8 facts a device team needs
    manifest = json.loads(out.with_name(out.name + ".json").read_text())
    assert manifest["format"] == "tflite" and manifest["recipe"] == "int8"
    assert manifest["quantization"]["effective"] is True
    assert manifest["quantization"]["weights_by_dtype"]["int8"] >= 4
    assert manifest["source"]["sha256"] and manifest["tools"]["tensorflow"]
    assert manifest["parity"]["passed"] is True


def test_int8_io_records_scale_and_zero_point(cli, keras_digits, digits_files, tmp_path):
    out = tmp_path / "digits_int8io.tflite"
    r = cli("convert", keras_digits["h5"], "--quantize", "int8", "--calibration", digits_files / "calib.npz",
            "--io-dtype", "int8", "--data", digits_files / "test.npz", "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    (inp,), (outp,) = res["inputs"], res["outputs"]
    assert inp["name"] == "image" and inp["dtype"] == "int8" and inp["scale"] > 0 and "zero_point" in inp
    assert outp["name"] == "probs" and outp["dtype"] == "int8"
    interp = Interpreter(model_path=str(out))
    scale, zp = interp.get_input_details()[0]["quantization"]
    assert (inp["scale"], inp["zero_point"]) == pytest.approx((scale, zp))
    assert abs(res["parity"]["accuracy"]["delta"]) <= 0.01


def test_fp32_parity_is_exact_enough(cli, keras_digits, digits_files, tmp_path):
    out = tmp_path / "digits.tflite"
    r = cli("convert", keras_digits["h5"], "--data", digits_files / "test.npz", "-o", out, "--json")
    assert r.exit_code == 0, r
    (o,) = r.json()["parity"]["outputs"]
    assert o["name"] == "probs" and o["max_abs"] < 1e-4 and o["top1_agreement"] == 1.0


@pytest.mark.parametrize(
    "quantize, calib, weights, activations",
    [
        ("none", False, {"float32"}, {"float32"}),
        ("fp16", False, {"float16"}, {"float32"}),
        ("dynamic-int8", False, {"int8"}, {"float32"}),
        ("int8", True, {"int8", "int32"}, {"int8"}),
        ("int16x8", True, {"int8"}, {"int16"}),
    ],
)
def test_each_recipe_has_the_dtypes_it_claims(cli, keras_digits, digits_files, tmp_path, quantize, calib, weights, activations):
    out = tmp_path / f"m_{quantize}.tflite"
    args = ["convert", keras_digits["keras"], "--quantize", quantize, "-o", out, "--no-validate"]
    if calib:
        args += ["--calibration", digits_files / "calib.npz"]
    r = cli(*args)
    assert r.exit_code == 0, r
    w, a, _ = tensor_dtypes(out)
    assert weights <= w, (quantize, w)
    assert activations <= a, (quantize, a)
    if quantize == "none":
        assert w <= {"float32", "int32"}
    if quantize == "int8":
        assert "float32" not in w  # builtin int8 ops only


def test_dynamic_range_no_op_is_reported_not_claimed(cli, tmp_path):
    out = tmp_path / "tiny.tflite"
    r = cli("convert", f"{MODELS}:tiny_dense", "--quantize", "dynamic-int8", "-o", out, "--json",
            "--allow-float-fallback")  # a no-effect recipe is exit 1 without it (test_int8_fallback.py)
    assert r.exit_code == 0, r
    res = r.json()
    assert res["quantization"]["effective"] is False
    assert any("had no effect" in w and "1024" in w for w in res["warnings"])
    assert "had no effect" in r.stderr
    w, _, _ = tensor_dtypes(out)
    assert "int8" not in w


def test_random_inputs_are_flagged(cli, keras_digits, tmp_path):
    r = cli("convert", keras_digits["keras"], "-o", tmp_path / "m.tflite", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["parity"]["random_inputs"] is True
    assert any("prove the plumbing" in w for w in res["warnings"])


def test_json_stdout_is_only_json(keras_digits, tmp_path):
    """A real process: the converter's own prints must not reach stdout."""
    import subprocess

    from tests.conftest import edgekit_cmd

    p = subprocess.run([*edgekit_cmd(), "convert", str(keras_digits["keras"]), "-o", str(tmp_path / "m.tflite"),
                        "--json", "--no-validate"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["format"] == "tflite"


def test_savedmodel_folder(cli, keras_digits, digits_files, tmp_path):
    saved = tmp_path / "saved"
    keras_digits["model"].export(str(saved), verbose=False)
    r = cli("convert", saved, "--data", digits_files / "test.npz", "-o", tmp_path / "sm.tflite", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["source"]["framework"] == "tf-savedmodel"
    assert res["parity"]["passed"] and res["parity"]["outputs"][0]["max_abs"] < 1e-4
    # model.export writes `serve` beside `serving_default`, one function under two names: no
    # note telling the user to convert 'serve' too (found running the README's commands)
    assert not any("also has" in w for w in res["warnings"]), res["warnings"]


def test_python_factory_with_two_inputs_and_outputs(cli, tmp_path):
    r = cli("convert", f"{MODELS}:two_inputs", "-o", tmp_path / "two.tflite", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert sorted(i["name"] for i in res["inputs"]) == ["left", "right"]
    assert sorted(o["name"] for o in res["outputs"]) == ["box", "score"]
    assert res["parity"]["passed"] and len(res["parity"]["outputs"]) == 2


def test_input_shape_fixes_a_dynamic_axis(cli, tmp_path):
    r = cli("convert", f"{MODELS}:variable_length", "--input-shape", "frames=1x50x8", "-o", tmp_path / "v.tflite", "--json")
    assert r.exit_code == 0, r
    assert r.json()["inputs"][0]["shape"] == [1, 50, 8]


def test_default_output_name_in_current_folder(cli, keras_digits, digits_files, tmp_path):
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "--calibration", digits_files / "calib.npz",
            "--no-validate", cwd=tmp_path)
    assert r.exit_code == 0, r
    assert (tmp_path / "digits_int8.tflite").is_file() and (tmp_path / "digits_int8.tflite.json").is_file()


def test_unsupported_op_is_named_with_the_flag(cli, tmp_path):
    r = cli("convert", f"{MODELS}:with_determinant", "-o", tmp_path / "det.tflite")
    assert r.exit_code == 2, r
    assert "MatrixDeterminant" in r.stderr and "--allow-tf-ops" in r.stderr
    assert "cannot run Flex ops" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_allow_tf_ops_writes_a_flex_model_and_says_it_cannot_be_checked(cli, tmp_path):
    out = tmp_path / "det.tflite"
    r = cli("convert", f"{MODELS}:with_determinant", "--allow-tf-ops", "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["flex_ops"] == ["FlexMatrixDeterminant"] and res["parity"] is None
    assert any("Flex" in w and "ai-edge-litert cannot run" in w for w in res["warnings"])
    assert out.is_file()


def test_op_neither_builtin_nor_flex(cli, tmp_path):
    r = cli("convert", f"{MODELS}:with_svd", "--allow-tf-ops", "-o", tmp_path / "svd.tflite")
    assert r.exit_code == 2, r
    assert "Svd" in r.stderr and "neither" in r.stderr

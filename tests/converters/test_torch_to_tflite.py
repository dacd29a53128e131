"""PyTorch → .tflite with litert-torch: float parity, full-int8 PT2E accuracy, NHWC I/O, fp16."""

import json

import pytest


def test_fp32_tflite_keeps_input_names_and_parity(cli, torch_digits, tmp_path):
    out = tmp_path / "digits.tflite"
    r = cli("convert", *torch_digits["args"], "--to", "tflite", "--data", torch_digits["test"], "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["inputs"][0]["name"] == "image" and res["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert res["parity"]["passed"] and res["parity"]["outputs"][0]["psnr_db"] > 60
    assert json.loads(out.with_name(out.name + ".json").read_text())["format"] == "tflite"


def test_int8_tflite_is_full_integer_and_keeps_accuracy(cli, torch_digits, tmp_path):
    r = cli("convert", *torch_digits["args"], "--to", "tflite", "--quantize", "int8", "--calibration",
            torch_digits["calib"], "--data", torch_digits["test"], "-o", tmp_path / "digits_int8.tflite", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["io_dtype"] == "int8" and res["inputs"][0]["dtype"] == "int8" and res["inputs"][0]["scale"] > 0
    assert "float32" not in res["quantization"]["weights_by_dtype"] or \
        res["quantization"]["weights_by_dtype"].get("int8", 0) > 0
    assert res["quantization"]["effective"] and "PT2E" in res["quantization"]["method"]
    assert res["parity"]["accuracy"]["candidate"] >= torch_digits["accuracy"] - 0.01, res["parity"]["accuracy"]
    assert any("int8 I/O" in w for w in res["warnings"])


def test_channels_last_io_gives_nhwc_inputs(cli, torch_digits, tmp_path):
    r = cli("convert", *torch_digits["args"], "--to", "tflite", "--channels-last-io", "--data",
            torch_digits["test"], "--samples", "64", "-o", tmp_path / "nhwc.tflite", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["inputs"][0]["shape"] == [1, 8, 8, 1] and res["inputs"][0]["layout"] == "NHWC"
    assert res["parity"]["passed"]  # NCHW samples fed transposed: same numbers


def test_fp16_tflite_stores_half_weights(cli, torch_digits, tmp_path):
    r = cli("convert", *torch_digits["args"], "--to", "tflite", "--quantize", "fp16", "--data",
            torch_digits["test"], "--samples", "64", "-o", tmp_path / "f16.tflite", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["quantization"]["weights_by_dtype"].get("float16", 0) > 0 and res["parity"]["passed"]


@pytest.mark.parametrize("extra", [["--io-dtype", "uint8", "--quantize", "int8", "--calibration", "random"],
                                   ["--io-dtype", "int8"]])
def test_unavailable_io_dtype_is_bad_input(cli, torch_digits, tmp_path, extra):
    r = cli("convert", *torch_digits["args"], "--to", "tflite", *extra, "-o", tmp_path / "x.tflite")
    assert r.exit_code == 2, r
    assert "io-dtype" in r.stderr or "uint8" in r.stderr
    assert list(tmp_path.iterdir()) == []

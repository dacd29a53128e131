"""Keras → ExecuTorch .pte through ONNX (tf2onnx, onnx2torch, torch.export + XNNPACK), checked
against the Keras model: the digits CNN in fp32 and int8 (PT2E), tempocnn's fcn (PyPI weights,
ELUs, a variable time axis fixed by --input-shape) in fp32 on mel spectrogram-like input."""

from __future__ import annotations

import importlib.util

import pytest

from tests.converters.test_pretrained_keras import mel_like, tempocnn_models  # noqa: F401 (fixtures)

if importlib.util.find_spec("onnx2torch") is None:  # found, not imported: it imports torchvision
    pytest.skip("onnx2torch is not installed (scripts/setup.sh installs it with --no-deps)", allow_module_level=True)


@pytest.mark.parametrize("recipe", ["none", "int8"])
def test_keras_digits_to_pte(cli, keras_digits, digits_files, tmp_path, recipe):
    r = cli("convert", keras_digits["keras"], "--to", "executorch", "--quantize", recipe, "--calibration",
            digits_files / "calib.npz", "--data", digits_files / "test.npz", "-o", tmp_path / f"d_{recipe}.pte",
            "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["format"] == "executorch" and res["converted_via"] == "tf2onnx+onnx2torch"
    assert res["inputs"][0]["name"] == "image" and res["inputs"][0]["shape"] == [1, 8, 8, 1]  # Keras' NHWC kept
    assert res["delegation"]["delegated_ops"] == res["delegation"]["total_ops"]
    if recipe == "none":
        assert res["parity"]["outputs"][0]["psnr_db"] > 100
    else:
        assert res["quantization"]["fallback"]["status"] == "full" and res["parity"]["passed"]
        assert res["parity"]["accuracy"]["delta"] > -0.02


@pytest.mark.slow
def test_tempocnn_fcn_to_pte(cli, tempocnn_models, mel_like, tmp_path):  # noqa: F811
    r = cli("convert", tempocnn_models / "fcn.h5", "--input-shape", "input_8=1x40x256x1", "--to", "executorch",
            "--data", mel_like, "-o", tmp_path / "fcn.pte", "--json")
    assert r.exit_code == 0, r
    assert all(o["psnr_db"] >= 60 for o in r.json()["parity"]["outputs"]), r.json()["parity"]["outputs"]

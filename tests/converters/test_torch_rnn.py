"""A speech-style recurrent model (batch 1) through all three PyTorch targets."""

import pytest


@pytest.mark.parametrize("to,suffix", [("executorch", ".pte"), ("tflite", ".tflite"), ("torchscript", ".ptl")])
def test_lstm_through_every_target(cli, nets, tmp_path, to, suffix):
    r = cli("convert", nets("lstm"), "--to", to, "-o", tmp_path / f"lstm{suffix}", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["inputs"][0]["shape"] == [1, 6, 8]
    assert res["parity"]["passed"] and res["parity"]["outputs"][0]["psnr_db"] > 60


def test_gru_int8_tflite_falls_back_or_quantizes(cli, nets, tmp_path):
    r = cli("convert", nets("gru"), "--to", "tflite", "--quantize", "int8", "--calibration", "random",
            "--no-validate", "-o", tmp_path / "gru_int8.tflite", "--json")
    assert r.exit_code == 0, r
    q = r.json()["quantization"]
    assert q["effective"] and q["weights_by_dtype"].get("int8", 0) > 0

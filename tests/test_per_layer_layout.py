"""`validate --per-layer` matches NCHW (PyTorch) with NHWC (TFLite) tensors by their values when
the shapes alone cannot tell: with C == H == W an 8-channel 8×8 tensor has the same shape in both
layouts, and comparing it untransposed reported a healthy layer as the first divergence.

A real net trained here on scikit-learn's digits, converted to int8 .tflite by edgekit.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

NET = '''
import torch
from torch import nn


class Net(nn.Module):
    """8 channels at 8×8 after conv1: (1, 8, 8, 8) in NCHW and NHWC alike."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, image):
        x = self.pool(self.relu2(self.conv2(self.relu(self.conv1(image)))))
        return self.fc(x.flatten(1))
'''


@pytest.fixture(scope="module")
def arts(digits, tmp_path_factory):
    import importlib.util

    import numpy as np
    import torch

    d = tmp_path_factory.mktemp("per-layer-layout")
    (d / "net8.py").write_text(NET)
    spec = importlib.util.spec_from_file_location("net8", d / "net8.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from tests.converters.torch_nets import train_digits_net

        model = train_digits_net(digits, epochs=6, net=mod.Net)
        with torch.no_grad():
            acc = (model(torch.from_numpy(digits["x_test"][:, None])).argmax(1).numpy() == digits["y_test"]).mean()
        assert acc > 0.9  # a trained network, not noise
    finally:
        torch.set_num_threads(threads)
    torch.save(model.state_dict(), d / "w.pt")
    np.savez(d / "test.npz", image=digits["x_test"][:, None], labels=digits["y_test"])
    np.savez(d / "calib.npz", image=digits["x_train"][:300, None])
    args = [f"{d / 'net8.py'}:Net", "--weights", d / "w.pt", "--input-shape", "image=1x1x8x8"]
    return {"dir": d, "args": args, "test": d / "test.npz", "calib": d / "calib.npz"}


def test_channels_equal_to_height_and_width_are_not_a_false_divergence(cli, arts):
    out = arts["dir"] / "net_int8.tflite"
    r = cli("convert", *arts["args"], "--to", "tflite", "--quantize", "int8", "--calibration", arts["calib"],
            "-o", out, "--no-validate")
    assert r.exit_code == 0, r
    r = cli("validate", *arts["args"], out, "--data", arts["test"], "--samples", "48", "--per-layer", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    rows = {row["layer"]: row for row in res["layers"]}
    assert res["first_divergence"] is None, res["layers"]
    ambiguous = [row for row in res["layers"] if row["shape"] == [1, 8, 8, 8]]
    assert ambiguous, res["layers"]  # the C == H == W tensor is compared, not skipped
    others = [row["psnr_db"] for row in res["layers"] if row["shape"] != [1, 8, 8, 8]]
    for row in ambiguous:
        assert row["psnr_db"] > min(others) - 10 and row["cosine"] > 0.99, res["layers"]
        assert row["layout"] == "NHWC→NCHW (by values)", row
    # an unambiguous NHWC tensor is transposed by its shape alone
    assert rows["conv2" if "conv2" in rows else "relu2"]["layout"] == "NHWC→NCHW", res["layers"]


def test_keras_nhwc_tensor_of_equal_dims_stays_as_is(cli, digits, digits_files, tmp_path):
    """Keras is NHWC like the .tflite: an 8×8×8 tensor fits every reading and must be read as is."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1), name="image"),
                              keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
                              keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2"),
                              keras.layers.Flatten(name="flatten"), keras.layers.Dense(10, name="logits")])
    model.save(tmp_path / "m.keras")
    r = cli("convert", tmp_path / "m.keras", "-o", tmp_path / "m.tflite", "--no-validate")
    assert r.exit_code == 0, r
    r = cli("validate", tmp_path / "m.keras", tmp_path / "m.tflite", "--data", digits_files / "test.npz",
            "--samples", "16", "--per-layer", "--json")
    assert r.exit_code == 0, r
    rows = {row["layer"]: row for row in r.json()["layers"]}
    assert rows["conv2"]["layout"] == "as is (by values)" and rows["conv2"]["psnr_db"] > 100, rows

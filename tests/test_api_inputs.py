"""The Python API takes what a notebook has: numpy arrays and dicts of arrays for data and
calibration, an in-memory keras.Model, input shapes as a dict, one string or a list; a wrong type
is a BadInput (exit 2) naming what is accepted, never a TypeError or a shape read character by
character."""

from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.errors import BadInput
from edgekit.specs import parse_input_shapes


def test_convert_an_in_memory_model_with_arrays(keras_digits, digits, tmp_path):
    x = digits["x_test"][..., None]
    result = edgekit.convert(keras_digits["model"], quantize="int8", calibration=digits["x_train"][:200, ..., None],
                             data={"image": x[:64], "labels": digits["y_test"][:64]}, output=tmp_path / "m.tflite")
    assert result["parity"]["passed"] and result.parity["samples"] == 64
    assert result["parity"]["accuracy"]["reference"] > 0.9  # the labels were read from the dict
    check = edgekit.validate(keras_digits["keras"], tmp_path / "m.tflite", data=x[:32])
    assert check["passed"] and check["parity"]["samples"] == 32


@pytest.mark.parametrize("given,expected", [
    ("image=1x8x8x1", {"image": (1, 8, 8, 1)}),
    (["a=1x3", "b=2,4"], {"a": (1, 3), "b": (2, 4)}),
    ({"image": (1, 8, 8, 1)}, {"image": (1, 8, 8, 1)}),
    ({"image": "1x8x8x1"}, {"image": (1, 8, 8, 1)}),
    ({"image": [1, 8, 8, 1]}, {"image": (1, 8, 8, 1)}),
    (None, {}),
])
def test_input_shapes_in_every_form(given, expected):
    assert parse_input_shapes(given) == expected


@pytest.mark.parametrize("given", [42, {"image": (1, 0, 8)}, {"image": 3.5}, [("image", 1)], {"image": (True, 8)}])
def test_bad_input_shapes_are_bad_input(given):
    with pytest.raises(BadInput):
        parse_input_shapes(given)


@pytest.mark.parametrize("data", [[np.zeros((1, 8, 8, 1))], 7, "not/a/file.npz", {"image": "text"}])
def test_wrong_data_types_are_bad_input(keras_digits, tmp_path, data):
    with pytest.raises(BadInput) as e:
        edgekit.convert(keras_digits["model"], data=data, output=tmp_path / "m.tflite")
    assert e.value.exit_code == 2 and not (tmp_path / "m.tflite").exists()


def test_input_shapes_come_from_the_data_when_not_given(tmp_path, cli):
    """A Keras model with a dynamic time axis and a PyTorch module (no declared shapes) take
    their input shapes from --data / --calibration when --input-shape is missing, and say so."""
    (tmp_path / "nets.py").write_text(
        "import keras, torch\n"
        "def seq():\n"
        "    x = keras.Input((None, 6), name='x')\n"
        "    return keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x)))\n"
        "class Tiny(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__(); self.fc = torch.nn.Linear(5, 2)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
        "def tiny():\n"
        "    return Tiny()\n")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "seq.npz", x=rng.standard_normal((8, 12, 6)).astype(np.float32))
    np.save(tmp_path / "tiny.npy", rng.standard_normal((8, 5)).astype(np.float32))
    r = cli("convert", "nets.py:seq", "--data", tmp_path / "seq.npz", "-o", tmp_path / "seq.tflite", "--json",
            cwd=tmp_path)
    assert r.exit_code == 0, r
    assert r.json()["inputs"][0]["shape"] == [1, 12, 6] and any("taken from the data" in w for w in r.json()["warnings"])
    r = cli("convert", "nets.py:tiny", "--to", "executorch", "--data", tmp_path / "tiny.npy", "-o",
            tmp_path / "tiny.pte", "--json", cwd=tmp_path)
    assert r.exit_code == 0, r
    assert r.json()["inputs"][0]["shape"] == [1, 5]
    r = cli("convert", "nets.py:tiny", "--to", "executorch", "-o", tmp_path / "no.pte", cwd=tmp_path)
    assert r.exit_code == 2 and "--input-shape" in r.stderr  # no data: still asks for the shape

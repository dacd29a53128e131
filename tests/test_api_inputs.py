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

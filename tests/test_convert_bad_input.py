"""Bad input: a one-paragraph message, the documented exit code, and no file left behind."""

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import edgekit_cmd

MODELS = str(Path(__file__).parent / "models_keras.py")


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".tflite", ".json") or ".partial" in p.name)


def test_missing_path(cli, tmp_path):
    r = cli("convert", tmp_path / "nope.keras", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr, r


def test_folder_that_is_not_a_savedmodel(cli, tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "readme.txt").write_text("hi")
    r = cli("convert", tmp_path / "stuff", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "not a TensorFlow SavedModel" in r.stderr, r
    assert leftovers(tmp_path) == []


def test_empty_file(cli, tmp_path):
    (tmp_path / "empty.keras").write_bytes(b"")
    r = cli("convert", tmp_path / "empty.keras", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "is empty" in r.stderr, r


def test_truncated_keras_archive(cli, keras_digits, tmp_path):
    data = keras_digits["keras"].read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    r = cli("convert", tmp_path / "cut.keras", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "truncated or corrupt" in r.stderr, r
    assert leftovers(tmp_path) == []


def test_truncated_h5(cli, keras_digits, tmp_path):
    data = keras_digits["h5"].read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    r = cli("convert", tmp_path / "cut.h5", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "Keras cannot load" in r.stderr and "Traceback" not in r.stderr, r


def test_text_file_named_h5(cli, tmp_path):
    (tmp_path / "model.h5").write_text("this is not a model\n")
    r = cli("convert", tmp_path / "model.h5", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "not an HDF5 file" in r.stderr, r


def test_unknown_extension(cli, tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\0" * 10)
    r = cli("convert", tmp_path / "model.bin", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "model format" in r.stderr, r


def test_dynamic_dimension_without_input_shape(cli, tmp_path):
    r = cli("convert", f"{MODELS}:variable_length", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2, r
    assert "'frames'" in r.stderr and "--input-shape frames=1xNx8" in r.stderr
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("shape, words", [("frames=1xAx8", "Cannot parse"), ("nothere=1x5x8", "no input of that name"),
                                          ("frames=1x5", "has 2 dimensions")])
def test_bad_input_shape(cli, tmp_path, shape, words):
    r = cli("convert", f"{MODELS}:variable_length", "--input-shape", shape, "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and words in r.stderr, r


def test_int8_without_calibration(cli, keras_digits, tmp_path):
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2, r
    assert "--calibration DATA" in r.stderr and "--calibration random" in r.stderr


def test_int8_io_needs_int8_recipe(cli, keras_digits, tmp_path):
    r = cli("convert", keras_digits["keras"], "--quantize", "fp16", "--io-dtype", "int8", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "--io-dtype int8 does not fit" in r.stderr, r


def test_calibration_shape_mismatch(cli, keras_digits, tmp_path):
    np.save(tmp_path / "calib.npy", np.zeros((10, 7, 7, 1), np.float32))
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "--calibration", tmp_path / "calib.npy",
            "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "(7, 7, 1)" in r.stderr and "(8, 8, 1)" in r.stderr, r
    assert leftovers(tmp_path) == []


def test_calibration_dtype_mismatch(cli, keras_digits, tmp_path):
    np.save(tmp_path / "calib.npy", np.zeros((10, 8, 8, 1), np.uint8))
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "--calibration", tmp_path / "calib.npy",
            "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "uint8" in r.stderr and "float32" in r.stderr, r


def test_nan_in_calibration(cli, keras_digits, tmp_path):
    x = np.random.default_rng(0).random((20, 8, 8, 1)).astype(np.float32)
    x[3, 2, 2, 0] = np.nan
    np.save(tmp_path / "calib.npy", x)
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "--calibration", tmp_path / "calib.npy",
            "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "NaN" in r.stderr, r
    assert leftovers(tmp_path) == []


def test_calibration_npz_without_the_input(cli, keras_digits, tmp_path):
    np.savez(tmp_path / "c.npz", pixels=np.zeros((4, 8, 8, 1), np.float32), other=np.zeros((4, 3), np.float32))
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "--calibration", tmp_path / "c.npz",
            "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "no array for input 'image'" in r.stderr, r


def test_pickled_npy_is_refused(cli, keras_digits, tmp_path):
    np.save(tmp_path / "calib.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "--calibration", tmp_path / "calib.npy",
            "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "object arrays are refused" in r.stderr, r


def test_read_only_output_folder(cli, keras_digits, readonly_dir):
    r = cli("convert", keras_digits["keras"], "-o", readonly_dir / "m.tflite")
    assert r.exit_code == 2 and "Cannot write to" in r.stderr, r
    assert list(readonly_dir.iterdir()) == []


def test_factory_errors(cli, tmp_path):
    r = cli("convert", f"{MODELS}:needs_argument", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "needs arguments (size)" in r.stderr, r
    r = cli("convert", f"{MODELS}:raises", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "RuntimeError: weights server unreachable" in r.stderr, r
    r = cli("convert", f"{MODELS}:not_a_model", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "not a model edgekit can convert" in r.stderr, r
    r = cli("convert", f"{MODELS}:missing", "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2 and "no attribute 'missing'" in r.stderr, r


@pytest.mark.parametrize("delay", [0.0, 0.25, 0.5])
def test_ctrl_c_mid_conversion_leaves_nothing(keras_digits, digits_files, tmp_path, delay):
    """SIGINT while the converter runs: exit 130, and neither a partial .tflite nor a manifest.
    The delays land it in Python, inside TensorFlow's native code (where pybind11 reshapes
    KeyboardInterrupt into a RuntimeError) and inside calibration (which swallows it)."""
    out = tmp_path / "m.tflite"
    proc = subprocess.Popen(
        [*edgekit_cmd(), "-v", "convert", str(keras_digits["keras"]), "--quantize", "int8",
         "--calibration", str(digits_files / "calib.npz"), "-o", str(out)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    deadline = time.time() + 120
    for line in proc.stderr:  # wait until the conversion itself has started
        if "Converting to" in line or time.time() > deadline:
            break
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    code = proc.wait(timeout=120)
    assert code == 130, rest
    assert "Interrupted" in rest
    assert leftovers(tmp_path) == []

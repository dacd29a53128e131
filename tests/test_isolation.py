"""Native crashes and signals: the converter runs in a child process (edgekit.isolation), so a
SIGSEGV inside TensorFlow, a SIGTERM from CI or a Ctrl-C becomes a clear error with nothing
partial left: no `.partial` file beside the output, no temporary folder, an existing output
untouched. Real processes, real crashes (TensorFlow 2.21's int8 calibration of an LSTM that keeps
its time loop), no mocks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import (BadInput, CheckFailed, DeviceUnavailable, MissingDependency, MissingLibrary,
                            TargetUnreachable, error_for_kind, interrupt_exit_code)
from tests.conftest import edgekit_cmd

RNN = """
import keras
def build():
    x = keras.Input((None, 8), name="x")
    return keras.Model(x, keras.layers.Dense(4)(keras.layers.{layer}(16)(x)))
"""
LOG_OF_INPUT = """
import keras
def build():
    x = keras.Input((16,), name="x")
    return keras.Model(x, keras.layers.Dense(4)(keras.ops.log(x)))
"""


def run(args, tmp_path, **kw) -> subprocess.CompletedProcess:
    """edgekit in a real process, with a TMPDIR of its own so leftovers can be seen."""
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmpdir), EDGEKIT_ISOLATE="1")
    return subprocess.run([*edgekit_cmd(), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600, **kw)


def leftovers(tmp_path, out_dir) -> list[str]:
    return sorted(os.listdir(tmp_path / "tmpdir")) + sorted(p.name for p in out_dir.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("layer,recipe", [("LSTM", "int8"), ("GRU", "int16x8")])
def test_native_converter_crash_is_a_clear_error_and_leaves_nothing(tmp_path, layer, recipe):
    (tmp_path / "rnn.py").write_text(RNN.format(layer=layer))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    existing = out_dir / "rnn.tflite"
    existing.write_bytes(b"the user's previous model")
    p = run(["convert", "rnn.py:build", "--input-shape", "x=1x20x8", "--quantize", recipe, "--calibration", "random",
             "-o", existing], tmp_path)
    assert p.returncode == 1, p.stderr
    first = next(line for line in p.stderr.splitlines() if line.startswith("error:"))  # after the stage lines
    assert first.startswith("error: The native step 'converting to tflite") and "SIGSEGV" in first
    assert "unroll=True" in p.stderr and "Traceback" not in p.stderr
    assert "absl::InitializeLog" not in p.stderr and "oneDNN" not in p.stderr  # TensorFlow's start-up lines stay out
    assert existing.read_bytes() == b"the user's previous model"
    assert not (out_dir / "rnn.tflite.json").exists()
    assert leftovers(tmp_path, out_dir) == []


def test_crash_with_json_gives_an_error_object_not_a_traceback(tmp_path):
    (tmp_path / "rnn.py").write_text(RNN.format(layer="LSTM"))
    p = run(["convert", "rnn.py:build", "--input-shape", "x=1x20x8", "--quantize", "int8", "--calibration", "random",
             "-o", tmp_path / "rnn.tflite", "--json"], tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "rnn.tflite").exists()


def test_unrolled_rnn_converts_in_the_child_and_matches_in_process(tmp_path, cli):
    """The advice works, and a child's result is the in-process result (same JSON)."""
    (tmp_path / "rnn.py").write_text(RNN.format(layer="LSTM").replace("(16)(x)", "(16, unroll=True)(x)")
                                     .replace("(None, 8)", "(20, 8)"))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", x=rng.standard_normal((32, 20, 8)).astype(np.float32))
    args = ["convert", "rnn.py:build", "--quantize", "int8", "--calibration",
            tmp_path / "calib.npz", "--json", "--allow-float-fallback"]  # the unrolled LSTM keeps one SPLIT float
    p = run([*args, "-o", tmp_path / "child.tflite"], tmp_path)
    assert p.returncode == 0, p.stderr
    child = json.loads(p.stdout)
    here = cli(*args, "-o", tmp_path / "here.tflite", cwd=tmp_path).json()
    assert child["parity"]["passed"] and here["parity"]["passed"]
    # the same result document (a fresh random init per call: op counts may differ, not the schema)
    assert child["quantization"].keys() == here["quantization"].keys()
    assert child["quantization"]["recipe"] == here["quantization"]["recipe"] == "int8"
    assert child.keys() == here.keys() and child["inputs"] == here["inputs"]  # (weights: a fresh random init each)
    assert leftovers(tmp_path, tmp_path) == []


def test_calibration_that_makes_the_model_non_finite_is_refused_before_converting(tmp_path):
    """log() of silent (all-zero) clips: int8 cannot express -inf; TensorFlow would crash on it."""
    (tmp_path / "logmodel.py").write_text(LOG_OF_INPUT)
    x = np.abs(np.random.default_rng(0).standard_normal((20, 16))).astype(np.float32) + 0.1
    x[[3, 11]] = 0.0  # two silent clips
    np.savez(tmp_path / "calib.npz", x=x)
    p = run(["convert", "logmodel.py:build", "--quantize", "int8", "--calibration", tmp_path / "calib.npz",
             "-o", tmp_path / "log.tflite"], tmp_path)
    assert p.returncode == 2, p.stderr
    first = next(line for line in p.stderr.splitlines() if line.startswith("error:"))  # after the stage lines
    assert "NaN or Inf on calibration data" in first and "sample(s) 3, 11 (2 of 20)" in first
    assert "Traceback" not in p.stderr and not (tmp_path / "log.tflite").exists()
    assert leftovers(tmp_path, tmp_path) == []


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_signals_stop_a_convert_cleanly(tmp_path, sig, code):
    """SIGTERM (CI, `timeout`), SIGHUP and Ctrl-C while the child converts: exit 128+signal,
    nothing partial beside the output, nothing in TMPDIR, no traceback."""
    (tmp_path / "rnn.py").write_text(RNN.format(layer="LSTM").replace("(16)(x)", "(64, unroll=True)(x)")
                                     .replace("(None, 8)", "(200, 8)"))
    out = tmp_path / "rnn.tflite"
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir), EDGEKIT_ISOLATE="1")
    proc = subprocess.Popen([*edgekit_cmd(), "convert", "rnn.py:build", "--quantize",
                             "int8", "--calibration", "random", "-o", str(out)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob(".rnn.tflite.*.partial.tflite")):
        time.sleep(0.05)  # the child is converting once its temporary output exists
    assert list(tmp_path.glob(".rnn.tflite.*.partial.tflite")), "the conversion never started"
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # a terminal's Ctrl-C reaches the whole foreground group
    else:
        proc.send_signal(sig)  # CI and `timeout` signal edgekit itself
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error:")
    assert not out.exists() and leftovers(tmp_path, tmp_path) == []


def test_error_kinds_cross_process_boundaries_with_their_exit_codes():
    for cls in (BadInput, CheckFailed, MissingDependency, MissingLibrary, TargetUnreachable, DeviceUnavailable):
        e = error_for_kind(cls.kind, "m", "h")
        assert type(e) is cls and e.exit_code == cls.exit_code and (e.message, e.hint) == ("m", "h")
    assert type(error_for_kind("something new", "m")) is CheckFailed
    assert interrupt_exit_code() in (130, 143, 129)


@pytest.mark.parametrize("sig", [None, signal.SIGTERM])
def test_in_process_commands_leave_nothing_in_tmpdir(tmp_path, keras_digits, digits_files, sig):
    """validate runs the frameworks in edgekit's own process: whatever they put in the temp dir
    (autograph's generated files, SavedModel exports) is gone after a normal exit and after SIGTERM."""
    tflite = tmp_path / "d.tflite"
    assert run(["convert", keras_digits["keras"], "-o", tflite, "--no-validate"], tmp_path).returncode == 0
    tmpdir = tmp_path / "tmpdir"
    env = dict(os.environ, TMPDIR=str(tmpdir))
    proc = subprocess.Popen([*edgekit_cmd(), "validate", str(keras_digits["keras"]), str(tflite), "--data",
                             str(digits_files / "test.npz"), "--per-layer"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if sig is not None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(tmpdir.iterdir()):
            time.sleep(0.02)  # edgekit's private temp folder exists: it is at work
        time.sleep(1.0)
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == (0 if sig is None else 128 + sig), err
    assert "Traceback" not in err
    assert list(tmpdir.iterdir()) == []

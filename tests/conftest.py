"""Shared fixtures: real data (scikit-learn's bundled digits), models trained once per session."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def digits():
    """8×8 digit images in [0, 1], split 1400 train / 397 held out, fixed order."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(0).permutation(len(x))
    x, y = x[idx], y[idx]
    return {"x_train": x[:1400], "y_train": y[:1400], "x_test": x[1400:], "y_test": y[1400:]}


@pytest.fixture(scope="session")
def digits_files(digits, tmp_path_factory):
    """NHWC sample files as users hand them to edgekit: test.npz with labels, calib.npz."""
    d = tmp_path_factory.mktemp("digits-data")
    np.savez(d / "test.npz", image=digits["x_test"][..., None], labels=digits["y_test"])
    np.savez(d / "calib.npz", image=digits["x_train"][:300, ..., None])
    np.save(d / "calib.npy", digits["x_train"][:300, ..., None])
    return d


@pytest.fixture(scope="session")
def keras_digits(digits, tmp_path_factory):
    """A small Keras CNN trained on digits (≈ 0.97 held-out accuracy), saved as .keras and .h5."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(64, activation="relu", name="fc1"),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(digits["x_train"][..., None], digits["y_train"], epochs=8, batch_size=32, verbose=0)
    acc = float(model.evaluate(digits["x_test"][..., None], digits["y_test"], verbose=0)[1])
    d = tmp_path_factory.mktemp("keras-digits")
    model.save(d / "digits.keras")
    with contextlib.redirect_stderr(io.StringIO()):
        model.save(d / "digits.h5")
    return {"dir": d, "keras": d / "digits.keras", "h5": d / "digits.h5", "accuracy": acc, "model": model}


class CliResult:
    def __init__(self, code, out, err):
        self.exit_code, self.stdout, self.stderr = code, out, err

    def json(self):
        import json

        return json.loads(self.stdout)

    def __repr__(self):
        return f"<exit {self.exit_code}>\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-3000:]}"


def run_cli(*args, cwd=None) -> CliResult:
    """Run `edgekit ARGS` in this process (frameworks are imported once per test session)."""
    from edgekit.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    old = Path.cwd()
    # In-process runs keep the frameworks this session already imported: converting in a child
    # (edgekit.isolation, the default) would import them again for every test. The child path
    # itself is tested through real processes (tests/test_isolation.py).
    isolate = os.environ.get("EDGEKIT_ISOLATE")
    os.environ.setdefault("EDGEKIT_ISOLATE", "0")
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(old)
        if isolate is None:
            os.environ.pop("EDGEKIT_ISOLATE", None)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


def edgekit_cmd() -> list[str]:
    """The installed console script, for tests that need a real process (signals, timing)."""
    exe = Path(sys.executable).with_name("edgekit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "edgekit"]


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody can create files in, root included (immutable attribute or a ro mount)."""
    d = tmp_path / "readonly"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0:
        yield d
        subprocess.run(["chattr", "-i", str(d)], check=False)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(d)], capture_output=True).returncode == 0:
        yield d
        subprocess.run(["umount", str(d)], check=False)
        return
    pytest.skip("cannot make a read-only folder as root here (no chattr +i, no mount)")

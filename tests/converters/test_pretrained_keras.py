"""Real trained Keras models shipped on PyPI: tempocnn's tempo estimators (Keras 2 .h5 files)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tempocnn_models():
    spec = importlib.util.find_spec("tempocnn")
    if spec is None:
        pytest.fail("tempocnn is a test dependency: pip install --no-deps tempocnn (see README, Tests)")
    return Path(spec.origin).parent / "models"


def mel_filterbank(sr=11025, n_fft=1024, n_mels=40, fmin=20.0, fmax=5000.0):
    """Triangular mel filters (HTK mel scale), as tempocnn's librosa features use."""
    mel = lambda f: 2595 * np.log10(1 + f / 700.0)
    hz = lambda m: 700 * (10 ** (m / 2595.0) - 1)
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, mid, hi = edges[i : i + 3]
        fb[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return fb


def click_track_mel(bpm, rng, sr=11025, n_fft=1024, hop=512, frames=256):
    """A drum-like click track at `bpm` (with noise), as tempocnn's (40, 256, 1) mel input."""
    n = hop * (frames - 1) + n_fft
    t = np.arange(n) / sr
    audio = 0.02 * rng.standard_normal(n)
    for onset in np.arange(rng.uniform(0, 60 / bpm), t[-1], 60.0 / bpm):
        i = int(onset * sr)
        burst = np.exp(-np.arange(600) / 80.0) * rng.standard_normal(600)
        audio[i : i + 600] += burst[: len(audio[i : i + 600])]
    win = np.hanning(n_fft)
    spec = np.abs(np.stack([np.fft.rfft(win * audio[j * hop : j * hop + n_fft]) for j in range(frames)], axis=1))
    m = mel_filterbank() @ spec
    return (m / m.max()).astype(np.float32)[..., None]


@pytest.fixture(scope="session")
def mel_like(tmp_path_factory):
    """Mel spectrograms of click tracks from 70 to 180 BPM, max-normalised as tempocnn does:
    structured, tempo-bearing inputs rather than noise (no audio files ship offline here)."""
    rng = np.random.default_rng(1)
    x = np.stack([click_track_mel(bpm, rng) for bpm in np.linspace(70, 180, 48)])
    d = tmp_path_factory.mktemp("mel")
    np.save(d / "mel.npy", x)
    return d / "mel.npy"


def test_dynamic_time_axis_needs_and_takes_input_shape(cli, tempocnn_models, mel_like, tmp_path):
    model = tempocnn_models / "deeptemp_k8.h5"
    r = cli("convert", model, "-o", tmp_path / "dt.tflite")
    assert r.exit_code == 2, r
    name = r.stderr.split("Input '")[1].split("'")[0]
    assert f"--input-shape {name}=1x40xNx1" in r.stderr
    r = cli("convert", model, "--input-shape", f"{name}=1x40x256x1", "--data", mel_like, "-o", tmp_path / "dt.tflite", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["inputs"][0]["shape"] == [1, 40, 256, 1]
    (o,) = res["parity"]["outputs"]
    assert o["max_abs"] < 1e-4 and o["top1_agreement"] == 1.0


def test_fcn_int8_is_small_and_reports_its_float_ops(cli, tempocnn_models, mel_like, tmp_path):
    fp32, int8 = tmp_path / "fcn.tflite", tmp_path / "fcn_int8.tflite"
    r = cli("convert", tempocnn_models / "fcn.h5", "--data", mel_like, "-o", fp32, "--json")
    assert r.exit_code == 0 and r.json()["parity"]["passed"], r
    r = cli("convert", tempocnn_models / "fcn.h5", "--quantize", "int8", "--calibration", mel_like,
            "-o", int8, "--json", "--no-validate", "--allow-float-fallback")  # hybrid (ELU): accepted knowingly
    assert r.exit_code == 0, r
    res = r.json()
    assert int8.stat().st_size / fp32.stat().st_size <= 0.30
    # 256 tempo classes one BPM apart: judge the task as tempo research does ("accuracy 2": within
    # 4% of the reference tempo, octave errors allowed), not the exact class
    import keras

    from edgekit.runtimes import load, run_float

    x = np.load(mel_like)
    ref = np.argmax(keras.models.load_model(tempocnn_models / "fcn.h5", compile=False).predict(x, verbose=0), 1)
    session = load(int8)
    name = session.inputs[0].name
    got = np.array([np.argmax(next(iter(run_float(session, {name: x[i : i + 1]}).values()))) for i in range(len(x))])
    t_ref, t_got = ref + 30.0, got + 30.0  # class i is i + 30 BPM
    close = lambda a, b: np.abs(a - b) <= 0.04 * b
    agree = close(t_got, t_ref) | close(t_got, 2 * t_ref) | close(t_got, t_ref / 2)
    assert agree.mean() >= 0.9, (t_ref, t_got)
    # fcn uses ELU, which has no int8 kernel: the model comes back hybrid, and edgekit says so
    assert "ELU" in res["quantization"]["float_ops_by_type"]
    assert any("hybrid" in w and "ELU" in w for w in res["warnings"])
    manifest = json.loads(int8.with_name(int8.name + ".json").read_text())
    assert manifest["quantization"]["weights_by_dtype"]["int8"] >= 9

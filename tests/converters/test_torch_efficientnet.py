"""EfficientNet-Lite0 with its ImageNet weights: fp32 parity and int8 top-1 agreement on real photos."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_torch.py"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real-image samples (crops, flips, colour jitter of skimage photographs), NCHW, normalised."""
    pytest.importorskip("efficientnet_lite_pytorch")
    spec = importlib.util.spec_from_file_location("bench_torch", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    d = tmp_path_factory.mktemp("photos")
    np.savez(d / "calib.npz", inputs=bench.real_images(64, seed=1))
    np.savez(d / "check.npz", inputs=bench.real_images(200, seed=3))
    return d


@pytest.mark.parametrize("to,suffix", [("executorch", ".pte"), ("tflite", ".tflite")])
def test_efficientnet_fp32_parity(cli, nets, photos, tmp_path, to, suffix):
    r = cli("convert", nets("efficientnet_lite0"), "--to", to, "--data", photos / "check.npz", "--samples", "24",
            "-o", tmp_path / f"effnet{suffix}", "--json")
    assert r.exit_code == 0, r
    out = r.json()["parity"]["outputs"][0]
    assert out["psnr_db"] > 60 and out["top1_agreement"] == 1.0


@pytest.mark.parametrize("to,suffix", [("executorch", ".pte"), ("tflite", ".tflite")])
def test_efficientnet_int8_top1_agreement_on_real_images(cli, nets, photos, tmp_path, to, suffix):
    """Default int8 on 200 real-image samples (calibration: 64 others). Thresholds and where
    they come from:

    - exit 0: the build passes edgekit's own int8 preset (top-1 agreement ≥ 0.85, PSNR ≥ 15 dB;
      edgekit/parity.py PRESETS). Before issue 11's fix it did not (0.785 / 0.77 here).
    - ≥ 0.90 top-1 agreement on the last 100 samples, benchmarks/bench_int8_accuracy.py's
      held-out split: issue 11's target for default int8.
    - ≥ 0.98 on the confident samples (float top-1 leads by ≥ 0.1 probability, the benchmark's
      CONFIDENT_MARGIN): measured 1.0 on the 133 of 200 here with the fix for both runtimes,
      0.94-0.96 before it (eager PT2E); a flip there is quantization error, not a near-tie.
    - .tflite full-integer: no op left computing in float (the residual ADDs were, before).
    """
    out_path = tmp_path / f"effnet_int8{suffix}"
    r = cli("convert", nets("efficientnet_lite0"), "--to", to, "--quantize", "int8", "--calibration",
            photos / "calib.npz", "--data", photos / "check.npz", "-o", out_path, "--json")
    res = r.json() if r.stdout.strip() else None
    assert res is not None, r
    out = res["parity"]["outputs"][0]
    assert res["parity"]["samples"] == 200
    agree, confident = _agreement(out_path, np.load(photos / "check.npz")["inputs"])
    print(f"{to} int8: top-1 agreement {out['top1_agreement']:.3f} on 200 ({agree[100:].mean():.3f} on the "
          f"benchmark's held-out 100, {agree[confident].mean():.3f} on the {confident.sum()} confident), "
          f"top-5 {out['top5_agreement']:.3f}, PSNR {out['psnr_db']:.1f} dB")
    assert r.exit_code == 0, r
    assert res["quantization"]["fallback"]["status"] == "full"
    assert agree[100:].mean() >= 0.90
    assert agree[confident].mean() >= 0.98
    assert out["top5_agreement"] >= 0.95


def _agreement(artifact, x):
    """(per-sample top-1 agreement of ARTIFACT with the float model on X, mask of the samples
    whose float top-1 softmax probability leads the second by ≥ 0.1)."""
    import torch

    from edgekit.runtimes import load, run_float
    from tests.converters import torch_nets

    model, _ = torch_nets.efficientnet_lite0()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    p = np.sort(torch.softmax(torch.from_numpy(ref), 1).numpy(), 1)
    session = load(str(artifact), threads=1)
    name = session.inputs[0].name
    top1 = np.array([list(run_float(session, {name: x[i : i + 1]}).values())[0].argmax() for i in range(len(x))])
    return top1 == ref.argmax(1), p[:, -1] - p[:, -2] >= 0.1

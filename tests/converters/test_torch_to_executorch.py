"""PyTorch → ExecuTorch .pte through the CLI: delegation report, int8 PT2E accuracy, fp16,
dynamic int8, the load-and-run check (a missing kernel is exit 1 naming the operator), .pt2."""

import json

import pytest


@pytest.fixture(scope="module")
def pte_fp32(torch_digits, tmp_path_factory):
    """The float .pte, built once through the Python API (the CLI is exercised by the other tests)."""
    from edgekit.build import convert

    out = tmp_path_factory.mktemp("pte") / "digits.pte"
    result = convert(torch_digits["spec"], to="executorch", weights=str(torch_digits["weights"]), input_shapes=["image=1x1x8x8"],
                     data=str(torch_digits["test"]), output=out)
    return json.loads(json.dumps(result, default=str)), out


def test_fp32_pte_is_fully_delegated_and_says_so_everywhere(pte_fp32, torch_digits):
    result, out = pte_fp32
    d = result["delegation"]
    assert d["total_ops"] >= 8 and d["delegated_ops"] == d["total_ops"] and d["not_delegated"] == []
    manifest = json.loads(out.with_name(out.name + ".json").read_text())
    assert manifest["delegation"] == d and manifest["format"] == "executorch"
    assert result["inputs"][0]["name"] == "image" and result["inputs"][0]["shape"] == [1, 1, 8, 8]
    p = result["parity"]
    assert p["passed"] and p["outputs"][0]["psnr_db"] > 60
    assert abs(p["accuracy"]["reference"] - torch_digits["accuracy"]) < 1e-9  # the trained weights were loaded
    assert p["accuracy"]["reference"] > 0.9
    # the source is the weights, not the factory's .py file
    weights = torch_digits["weights"]
    assert result["source_size_bytes"] == weights.stat().st_size
    assert manifest["source"]["size_bytes"] == weights.stat().st_size and len(manifest["source"]["weights_sha256"]) == 64


def test_int8_pte_keeps_accuracy_within_one_point(cli, pte_fp32, torch_digits, tmp_path):
    out = tmp_path / "digits_int8.pte"
    r = cli("convert", *torch_digits["args"], "--to", "executorch",
            "--quantize", "int8", "--calibration", torch_digits["calib"], "--data", torch_digits["test"],
            "-o", out, "--json")
    assert r.exit_code == 0, r
    res = r.json()
    acc = res["parity"]["accuracy"]
    assert acc["candidate"] >= torch_digits["accuracy"] - 0.01, acc
    assert res["quantization"]["effective"] and res["quantization"]["pt2e"]["quantize"] > 0
    assert res["delegation"]["not_delegated"] == []
    assert res["size_bytes"] < 0.5 * pte_fp32[0]["size_bytes"]


def test_fp16_and_dynamic_int8_pte_run_and_pass_parity(cli, torch_digits, tmp_path):
    r = cli("convert", *torch_digits["args"], "--to", "executorch",
            "--quantize", "fp16", "--data", torch_digits["test"], "--samples", "64", "-o", tmp_path / "f16.pte",
            "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["inputs"][0]["dtype"] == "float16" and res["parity"]["passed"]
    r = cli("convert", *torch_digits["args"], "--to", "executorch",
            "--quantize", "dynamic-int8", "--data", torch_digits["test"], "--samples", "64",
            "-o", tmp_path / "dyn.pte", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["quantization"]["effective"] and res["quantization"]["pt2e"]["dynamic_qparams"] > 0
    assert res["parity"]["passed"]


def test_missing_kernel_fails_the_build_naming_the_operator(cli, nets, tmp_path):
    r = cli("convert", nets("sorter"), "--to", "executorch", "-o", tmp_path / "sorter.pte")
    assert r.exit_code == 1, r
    assert "aten::sort" in r.stderr
    assert list(tmp_path.iterdir()) == []  # no .pte, no manifest, no partial file


def test_gru_lists_the_ops_left_on_portable_kernels(cli, nets, tmp_path):
    r = cli("convert", nets("gru"), "--to", "executorch", "-o", tmp_path / "gru.pte", "--json")
    assert r.exit_code == 0, r
    d = r.json()["delegation"]
    assert d["delegated_ops"] < d["total_ops"]
    assert any("copy" in op for op in d["not_delegated"]), d
    assert "portable" in r.stderr and d["not_delegated"][0] in r.stderr  # shown in the terminal too
    assert r.json()["parity"]["passed"]


def test_exported_program_pt2_source(cli, torch_digits, tmp_path):
    import torch

    ep = torch.export.export(torch_digits["model"], (torch.zeros(1, 1, 8, 8),))
    torch.export.save(ep, tmp_path / "digits.pt2")
    r = cli("convert", tmp_path / "digits.pt2", "--to", "executorch", "--data", torch_digits["test"],
            "--samples", "64", "-o", tmp_path / "from_pt2.pte", "--json")
    assert r.exit_code == 0, r
    assert r.json()["source"]["framework"] == "torch-exported" and r.json()["parity"]["passed"]

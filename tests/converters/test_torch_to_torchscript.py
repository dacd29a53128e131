"""PyTorch → PyTorch Mobile .ptl, loaded back with the lite interpreter; TorchScript .pt sources."""


def test_ptl_runs_in_the_lite_interpreter_and_says_it_is_deprecated(cli, torch_digits, tmp_path):
    out = tmp_path / "digits.ptl"
    r = cli("convert", *torch_digits["args"], "--to", "torchscript", "--data", torch_digits["test"], "-o", out,
            "--json")
    assert r.exit_code == 0, r
    res = r.json()
    assert res["parity"]["passed"] and res["parity"]["outputs"][0]["psnr_db"] > 60
    assert any("deprecated upstream in favour of ExecuTorch" in w for w in res["warnings"])
    assert any("optimize_for_mobile" in w for w in res["warnings"]) == (res["torchscript"]["optimize_for_mobile"] == "no")
    from edgekit.runtimes import load

    session = load(out)  # self-describing: the specs travel inside the .ptl
    assert [s.name for s in session.inputs] == ["image"] and session.inputs[0].shape == (1, 1, 8, 8)


def test_torchscript_file_source(cli, torch_digits, tmp_path):
    import torch

    torch.jit.save(torch.jit.script(torch_digits["model"]), tmp_path / "digits_script.pt")
    r = cli("convert", tmp_path / "digits_script.pt", "--to", "torchscript", "--input-shape", "image=1x1x8x8",
            "--data", torch_digits["test"], "--samples", "64", "-o", tmp_path / "s.ptl", "--json")
    assert r.exit_code == 0, r
    assert r.json()["source"]["framework"] == "torchscript" and r.json()["parity"]["passed"]


def test_quantize_is_refused_for_ptl(cli, torch_digits, tmp_path):
    r = cli("convert", *torch_digits["args"], "--to", "torchscript", "--quantize", "dynamic-int8",
            "-o", tmp_path / "q.ptl")
    assert r.exit_code == 2, r
    assert "not available" in r.stderr

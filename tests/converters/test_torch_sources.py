"""Bad PyTorch input: each one exit 2 with what was wrong and what to do, and nothing written."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("factory,needle", [
    ("raises", "weights server unreachable"),
    ("not_a_module", "not a model edgekit can convert"),
    ("needs_args", "needs arguments (depth)"),
])
def test_bad_factories(cli, nets, tmp_path, factory, needle):
    r = cli("convert", nets(factory), "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    assert needle in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_class_with_required_arguments(cli, nets, torch_digits, tmp_path):
    r = cli("convert", nets("NeedsArgs"), "--weights", torch_digits["weights"], "--to", "executorch",
            "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    assert "classes" in r.stderr


def test_data_dependent_control_flow_explains_and_suggests_torch_cond(cli, nets, tmp_path):
    r = cli("convert", nets("branchy"), "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    assert "torch.export cannot trace" in r.stderr and "torch.cond" in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_weights_that_do_not_match_the_class_list_the_keys(cli, nets, torch_digits, tmp_path):
    r = cli("convert", nets("OtherNet"), "--weights", torch_digits["weights"], "--input-shape", "image=1x1x8x8",
            "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    assert "missing 2: features.weight, features.bias" in r.stderr
    assert "unexpected" in r.stderr and "conv1.weight" in r.stderr


def test_pickled_checkpoint_is_refused_not_unpickled(cli, torch_digits, tmp_path):
    import argparse

    import torch

    hparams = argparse.Namespace(lr=0.003, epochs=15)  # a common checkpoint extra: a pickled object
    torch.save({"state_dict": torch_digits["model"].state_dict(), "hparams": hparams}, tmp_path / "whole_model.pt")
    r = cli("convert", torch_digits["spec"], "--weights", tmp_path / "whole_model.pt", "--input-shape",
            "image=1x1x8x8", "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    assert "weights_only=True" in r.stderr and "state_dict()" in r.stderr


def test_state_dict_given_as_model_points_to_weights(cli, torch_digits, tmp_path):
    r = cli("convert", torch_digits["weights"], "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    assert "--weights" in r.stderr


@pytest.mark.parametrize("shape", ["image=1xAx8", "image=", "1x1x8x8x"])
def test_shape_that_does_not_parse(cli, torch_digits, tmp_path, shape):
    r = cli("convert", torch_digits["spec"], "--weights", torch_digits["weights"], "--input-shape", shape,
            "--to", "executorch", "-o", tmp_path / "m.pte")
    assert r.exit_code == 2, r
    assert "Cannot parse the shape" in r.stderr


def test_missing_shape_names_the_input(cli, torch_digits, tmp_path):
    r = cli("convert", torch_digits["spec"], "--weights", torch_digits["weights"], "--to", "tflite",
            "-o", tmp_path / "m.tflite")
    assert r.exit_code == 2, r
    assert "--input-shape image=" in r.stderr


@pytest.mark.parametrize("to", ["executorch", "tflite"])
def test_int8_without_calibration(cli, torch_digits, tmp_path, to):
    r = cli("convert", *torch_digits["args"], "--to", to, "--quantize", "int8", "-o", tmp_path / "m.bin")
    assert r.exit_code == 2, r
    assert "needs calibration data" in r.stderr


def test_torch_paths_never_import_torchvision_or_torchaudio(nets, tmp_path):
    code = (
        "import sys\n"
        "from edgekit.build import convert\n"
        f"convert({nets('lstm')!r}, to='torchscript', output={str(tmp_path / 'x.ptl')!r})\n"
        "import edgekit.converters.torch_to_executorch, edgekit.converters.torch_to_tflite\n"
        "import executorch.exir, litert_torch\n"
        "print([m for m in ('torchvision', 'torchaudio') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"

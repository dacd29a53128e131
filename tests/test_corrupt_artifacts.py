"""A corrupt artifact is bad input: exit 2, one paragraph naming the file, what is wrong and the
fix, no traceback, before any runtime opens it (ExecuTorch's native loader aborted the process
on random bytes: exit 134).

Real artifacts made by edgekit (a small Keras net → .tflite; a small torch net → .pte, .ptl; and
torch.onnx.export → .onnx), then random bytes, the first half of each, and another format's file
renamed, through `validate` (as candidate and as reference) and `profile`. The corrupt cases run
as real processes, as the user's shell sees them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.integrity import check_structure
from edgekit.errors import BadInput
from tests.conftest import edgekit_cmd, run_cli

pytestmark = pytest.mark.filterwarnings("ignore")

NETS = '''
def keras_net():
    import keras
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16,), name="x"),
                             keras.layers.Dense(8, activation="relu", name="hidden"),
                             keras.layers.Dense(4, name="out")])


def torch_net():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    return net, (torch.zeros(1, 16),)
'''

FORMATS = ["tflite", "pte", "ptl", "onnx"]
RENAMED_FROM = {"tflite": "pte", "pte": "tflite", "ptl": "tflite", "onnx": "ptl"}
# what the message says is wrong, per format and damage
PROBLEM = {
    "tflite": {"random": "no TFL3 identifier", "truncated": "past the end of the file",
               "renamed": "it looks like a .pte"},
    "pte": {"random": "no ExecuTorch ET12 identifier", "truncated": "the file ends at",
            "renamed": "it looks like a .tflite"},
    "ptl": {"random": "not a zip archive", "truncated": "cut short or damaged", "renamed": "it looks like a .tflite"},
    "onnx": {"random": "does not parse as an ONNX protobuf", "truncated": "does not parse as an ONNX protobuf",
             "renamed": "it looks like a zip archive"},
}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """One valid artifact per format, each written by the tool users would use."""
    import torch

    d = tmp_path_factory.mktemp("good-artifacts")
    (d / "nets.py").write_text(NETS)
    out = {f: d / f"net.{f}" for f in FORMATS}
    r = run_cli("convert", f"{d / 'nets.py'}:keras_net", "-o", out["tflite"], "--samples", "8")
    assert r.exit_code == 0, r
    for fmt, to in (("pte", "executorch"), ("ptl", "torchscript")):
        r = run_cli("convert", f"{d / 'nets.py'}:torch_net", "--to", to, "-o", out[fmt], "--samples", "8")
        assert r.exit_code == 0, r
    net = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    torch.onnx.export(net, (torch.zeros(1, 16),), str(out["onnx"]), input_names=["x"], output_names=["out"],
                      dynamo=True, verbose=False)
    return out


@pytest.fixture(scope="module")
def damaged(good, tmp_path_factory):
    """damaged(fmt, kind) → a file named like a .fmt artifact that is not one."""
    d = tmp_path_factory.mktemp("damaged")

    def make(fmt: str, kind: str) -> Path:
        if kind == "random":
            data = np.random.default_rng(0).bytes(3000)
        elif kind == "truncated":
            whole = good[fmt].read_bytes()
            data = whole[: len(whole) // 2]
        else:
            data = good[RENAMED_FROM[fmt]].read_bytes()
        path = d / f"{kind}.{fmt}"
        path.write_bytes(data)
        return path

    return make


def run_process(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([*edgekit_cmd(), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env=env, stdin=subprocess.DEVNULL)


def assert_bad_input(r: subprocess.CompletedProcess, path: Path, fmt: str, problem: str, role: str = ""):
    err = r.stderr
    assert r.returncode == 2, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {err[-3000:]}"
    assert "Traceback" not in err + r.stdout, err
    assert f"{role}{path} is not a valid .{fmt} file" in err, err
    assert problem in err, err
    assert "Re-export or re-convert it" in err and "copy is complete" in err, err


@pytest.mark.parametrize("kind", ["random", "truncated", "renamed"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_validate_corrupt_candidate(good, damaged, fmt, kind):
    bad = damaged(fmt, kind)
    reference = good["tflite"] if fmt != "tflite" else good["pte"]
    assert_bad_input(run_process("validate", reference, bad), bad, fmt, PROBLEM[fmt][kind], "The candidate ")


@pytest.mark.parametrize("kind", ["random", "truncated", "renamed"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_validate_corrupt_reference(good, damaged, fmt, kind):
    bad = damaged(fmt, kind)
    assert_bad_input(run_process("validate", bad, good["tflite"]), bad, fmt, PROBLEM[fmt][kind], "The reference ")


@pytest.mark.parametrize("kind", ["random", "truncated", "renamed"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_profile_corrupt(damaged, fmt, kind):
    bad = damaged(fmt, kind)
    assert_bad_input(run_process("profile", bad, "--runs", "2", "--warmup", "0"), bad, fmt, PROBLEM[fmt][kind])


def test_reviewer_case_no_abort(good, damaged):
    """The report: `validate MODEL bad.pte` on ~3 KB of random bytes aborted (exit 134)."""
    bad = damaged("pte", "random")
    r = run_process("validate", good["tflite"], bad)
    assert r.returncode == 2 and "terminate called" not in r.stderr, r.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_artifacts_still_pass(good, fmt):
    assert check_structure(good[fmt]) is None
    r = run_cli("validate", good[fmt], good[fmt], "--samples", "4")
    assert r.exit_code == 0, r
    r = run_cli("profile", good[fmt], "--runs", "2", "--warmup", "0", "--json")
    assert r.exit_code == 0, r
    assert r.json()["runs"] == 2


@pytest.mark.parametrize("fmt", ["tflite", "pte"])
def test_every_truncation_is_caught(good, fmt, tmp_path):
    """Cut anywhere, a real flatbuffer artifact fails the check (tables, vectors, buffers and the
    .pte's extended header sizes all point inside the file)."""
    whole = good[fmt].read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    missed = []
    for n in range(len(whole)):
        cut.write_bytes(whole[:n])
        try:
            check_structure(cut)
            missed.append(n)
        except BadInput:
            pass
    assert not missed, f"{len(missed)} of {len(whole)} truncations pass the check, e.g. {missed[:10]}"


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    with pytest.raises(BadInput, match="the file is empty"):
        check_structure(empty)


def test_torchscript_archive_without_bytecode(good, tmp_path):
    """A torch.jit.save archive renamed .ptl: a zip, but not a lite-interpreter module."""
    import torch

    net = torch.jit.script(torch.nn.Linear(16, 4))
    path = tmp_path / "jit.ptl"
    torch.jit.save(net, str(path))
    with pytest.raises(BadInput, match="no bytecode.pkl"):
        check_structure(path)


def test_damage_only_the_runtime_sees_is_still_bad_input(good, tmp_path):
    """Damage inside a whole file (the header and table walk pass) that the runtime's own verifier
    rejects is bad input too: a tensor name's length in a .tflite, 16 bytes of 0xFF in the middle of a
    .pte's program (run as a process: ExecuTorch's loader is native code)."""
    from ai_edge_litert import schema_py_generated as schema

    buf = bytearray(good["tflite"].read_bytes())
    t = schema.Model.GetRootAs(buf, 0).Subgraphs(0).Tensors(0)
    name_at = t._tab.Indirect(t._tab.Pos + t._tab.Offset(10))  # Tensor.name: the string's length prefix
    buf[name_at:name_at + 4] = (0x7FFF0000).to_bytes(4, "little")
    tfl = tmp_path / "name.tflite"
    tfl.write_bytes(bytes(buf))
    check_structure(tfl)  # strings are the runtime's to verify
    r = run_cli("validate", good["tflite"], tfl)
    assert r.exit_code == 2 and "verifier rejects it" in r.stderr and "Traceback" not in r.stderr, r

    whole = good["pte"].read_bytes()
    middle = int.from_bytes(whole[16:24], "little") // 2  # eh00's program size
    pte = tmp_path / "middle.pte"
    pte.write_bytes(whole[:middle] + b"\xff" * 16 + whole[middle + 16:])
    check_structure(pte)
    assert_bad_input(run_process("validate", good["pte"], pte), pte, "pte", "ExecuTorch rejects the program",
                     "")

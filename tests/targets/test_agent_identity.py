"""One runtime layer: the device agent is built from edgekit.runtimes, and the same artifact with
the same feeds gives bit-identical outputs through the host path (runtimes.load → run) and
through the agent (the zipapp, run by the host target as on a board), for every format."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit import profiling, runtimes, targets
from edgekit.agent import bundle, stats
from edgekit.errors import MissingDependency, TargetUnreachable
from tests.conftest import run_cli

FORMATS = ["digits_tflite", "digits_int8_io_tflite", "digits_pte", "digits_ptl", "digits_onnx"]


@pytest.fixture(scope="session")
def digits_int8_io_tflite(keras_digits, digits_files, tmp_path_factory):
    """Full int8 with int8 inputs and outputs: feeds go through the one quantize() both sides use."""
    out = tmp_path_factory.mktemp("digits-int8io") / "digits_int8.tflite"
    r = run_cli("convert", keras_digits["keras"], "-o", out, "--quantize", "int8", "--io-dtype", "int8",
                "--calibration", digits_files / "calib.npz", "--data", digits_files / "test.npz", "--samples", "32")
    assert r.exit_code == 0, r
    return out


@pytest.mark.parametrize("fixture", FORMATS)
def test_host_and_agent_outputs_are_identical(request, fixture, digits):
    artifact = request.getfixturevalue(fixture)
    session = runtimes.load(artifact, threads=1)
    (spec,) = session.inputs
    feeds = [{spec.name: runtimes.quantize(x.reshape(spec.shape), spec)} for x in digits["x_test"][:12]]
    if spec.is_quantized:
        assert feeds[0][spec.name].dtype == np.int8 and len(np.unique(feeds[0][spec.name])) > 2
    host = [session.run(f) for f in feeds]
    agent = targets.get("host").run(artifact, feeds, threads=1)
    assert len(agent) == len(host)
    for h, a in zip(host, agent):
        assert len(a) == len(h) == len(session.outputs)
        for hv, av in zip(h.values(), a.values()):  # by position: a .pte's names live in its manifest
            assert hv.dtype == av.dtype
            np.testing.assert_array_equal(hv.reshape(av.shape), av)
    assert len({int(np.argmax(next(iter(h.values())))) for h in host}) > 3  # real digits, not one constant answer


def test_agent_bundle_is_the_runtime_layer():
    """The zipapp holds edgekit's own runtime modules byte for byte, and nothing host-only."""
    path = bundle.agent_bundle()
    pkg = Path(runtimes.__file__).parent.parent
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        for f in (pkg / "runtimes").glob("*.py"):
            assert z.read(f"edgekit/runtimes/{f.name}") == f.read_bytes()
        for f in (pkg / "agent").glob("*.py"):
            if f.name != "bundle.py":
                assert z.read(f"edgekit/agent/{f.name}") == f.read_bytes()
    assert "__main__.py" in names
    assert not {n for n in names if n.split("/")[-1] in ("cli.py", "build.py", "parity.py", "validation.py")}
    assert not any(n.startswith(("edgekit/converters", "edgekit/targets", "edgekit/sources")) for n in names)
    assert bundle.agent_bundle() == path  # cached by content


def test_agent_bundle_runs_from_the_zip(tmp_path, digits_tflite):
    """As on a board: the zipapp copied anywhere runs, and the edgekit it imports is the one
    inside the zip even where another edgekit is installed."""
    copy = tmp_path / profiling.AGENT_NAME
    copy.write_bytes(bundle.agent_bundle().read_bytes())
    code = ("import runpy, sys; zp, model = sys.argv[1:]; sys.argv = [zp, 'profile', model, '--runs', '5']; "
            "sys.path.insert(0, zp); import edgekit.runtimes as r; "
            "assert r.__file__.startswith(zp), r.__file__; runpy.run_path(zp, run_name='__main__')")
    p = subprocess.run([sys.executable, "-I", "-c", code, str(copy), str(digits_tflite)], capture_output=True,
                       text=True, cwd=tmp_path)
    payload = profiling.parse_agent_output(p.stdout, p.stderr, p.returncode, "host")
    assert p.returncode == 0 and payload["result"]["runs"] == 5 and payload["result"]["latency_ms"]["p50"] > 0


def test_agent_bundle_on_a_python_without_edgekit_or_runtime(tmp_path, digits_tflite, bare_python):
    """A board Python with numpy only: the zipapp imports nothing from outside it but numpy, and
    says which runtime to install there (exit 3, the board's own pip line)."""
    copy = tmp_path / profiling.AGENT_NAME
    copy.write_bytes(bundle.agent_bundle().read_bytes())
    p = subprocess.run([str(bare_python), str(copy), "profile", str(digits_tflite)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    with pytest.raises(TargetUnreachable) as e:
        profiling.parse_agent_output(p.stdout, p.stderr, p.returncode, "board")
    assert "pip install ai-edge-litert" in str(e.value) and "Traceback" not in p.stdout + p.stderr


def test_statistics_one_copy():
    """profiling's statistics are the agent's."""
    assert profiling.latency_stats is stats.latency_stats and profiling.percentile is stats.percentile


def test_missing_runtime_on_the_host_is_exit_3_with_the_edgekit_extra(digits_pte, bare_python):
    """On this machine a missing runtime is edgekit's missing dependency (exit 3, the extra to
    install), not an unreachable board with an unpinned pip line that would pull a CUDA torch."""
    from edgekit import profile

    with pytest.raises(MissingDependency) as e:
        profile(digits_pte, target="host", runs=2, python=str(bare_python))
    assert e.value.exit_code == 3 and "pip install 'edgekit-ml[torch]' --extra-index-url https://download.pytorch.org/whl/cpu" in e.value.hint

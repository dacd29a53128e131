"""Fuzz the byte-level artifact checks (edgekit.integrity.check_structure): a .tflite flatbuffer,
an ExecuTorch .pte, a .ptl zip, an .onnx protobuf — damaged as a broken copy or download damages
them (cut short, bits flipped, offsets and lengths overwritten, ranges lost or repeated), renamed
from another format, or random bytes behind the right magic. Contract: the check passes or raises
BadInput (exit 2) naming the problem; it never raises anything else, and it never hangs.

Seeds (tests/fuzz/seeds, made by `python -m tests.fuzz.make_seeds`): real files edgekit wrote.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import strategies as st

from edgekit.errors import BadInput
from edgekit.integrity import check_structure
from tests.fuzz._fuzz import mutated, outcome, tiers

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")

SEED_DIR = Path(__file__).parent / "seeds"
SEEDS = {ext: (SEED_DIR / f"net.{ext}").read_bytes() for ext in ("tflite", "pte", "ptl", "onnx")}
MAGIC = {"tflite": b"\x1c\x00\x00\x00TFL3", "pte": b"\x18\x00\x00\x00ET12eh00", "ptl": b"PK\x03\x04",
         "onnx": b"\x08\x07\x12"}


def test_seeds_are_whole():
    """The undamaged seeds pass: the fuzz tests damage real, valid artifacts."""
    with tempfile.TemporaryDirectory() as d:
        for ext, data in SEEDS.items():
            p = Path(d) / f"net.{ext}"
            p.write_bytes(data)
            check_structure(p)


def _check(ext: str, data: bytes, name: str = "model"):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{name}.{ext}"
        p.write_bytes(data)
        kind, err = outcome(f"integrity.{ext}", check_structure, p, "The candidate")
        if kind != "ok":
            assert isinstance(err, BadInput) and f"is not a valid .{ext} file" in err.message, err


@st.composite
def zip_rebuilt(draw, seed: bytes) -> bytes:
    """The .ptl's records, some dropped, renamed or damaged, written back as a zip (stored or
    deflated): a well-formed archive whose content is wrong."""
    with zipfile.ZipFile(io.BytesIO(seed)) as z:
        records = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    out = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in records:
            what = draw(st.sampled_from(["keep", "keep", "drop", "rename", "damage"]))
            if what == "drop":
                continue
            if what == "rename":
                name = draw(st.sampled_from(["bytecode.pkl", "data.pkl", "x/../bytecode.pkl", "", "/abs", "a" * 300]))
            if what == "damage" and data:
                data = draw(mutated(data))
            z.writestr(name or "empty", data)
    return out.getvalue()


def artifact_bytes(ext: str):
    """Damaged seeds mostly; also another format's seed, random bytes behind the right magic."""
    seed = SEEDS[ext]
    parts = [
        mutated(seed),
        mutated(seed, max_ops=12),
        st.sampled_from([v for k, v in SEEDS.items() if k != ext]).flatmap(mutated),
        st.binary(max_size=2048).map(lambda b: MAGIC[ext] + b),
        st.integers(0, len(seed)).map(lambda n: seed[:n]),
    ]
    if ext == "ptl":
        parts.append(zip_rebuilt(seed))
    return st.one_of(*parts)


def check_tflite(data):
    _check("tflite", data)


def check_edgetpu(data):
    _check("tflite", data, name="model_edgetpu")


def check_pte(data):
    _check("pte", data)


def check_ptl(data):
    _check("ptl", data)


def check_onnx(data):
    _check("onnx", data)


test_tflite, test_tflite_slow = tiers(check_tflite, slow=1500, case=artifact_bytes("tflite"))
test_edgetpu, test_edgetpu_slow = tiers(check_edgetpu, slow=300, case=artifact_bytes("tflite"))
test_pte, test_pte_slow = tiers(check_pte, slow=1200, case=artifact_bytes("pte"))
test_ptl, test_ptl_slow = tiers(check_ptl, slow=800, case=artifact_bytes("ptl"))
test_onnx, test_onnx_slow = tiers(check_onnx, slow=800, case=artifact_bytes("onnx"))


@pytest.mark.slow
def test_digits_cnn_tflite_slow(keras_digits, tmp_path):
    """The digits CNN of tests/conftest.py converted by `edgekit convert` (a bigger flatbuffer,
    conv and pool operators, more buffers) as one more seed, damaged the same ways."""
    from hypothesis import given, settings

    from tests.conftest import run_cli

    out = tmp_path / "digits.tflite"
    r = run_cli("convert", keras_digits["keras"], "-o", out, "--samples", "8")
    assert r.exit_code == 0, r
    seed = out.read_bytes()
    check_structure(out)

    @settings(settings.get_profile("slow"), max_examples=1000)
    @given(mutated(seed, max_ops=6))
    def damaged_digits(data):
        _check("tflite", data)

    damaged_digits()

"""Fuzz sample loading (edgekit.data.load_samples): .npy files whose header lies (shapes, dtypes,
fortran order, object arrays, lengths), .npz archives with such members, missing or extra keys,
damaged zip records, and folders of damaged images. Contract: samples that fit the model's input
specs, or BadInput (exit 2) — never another exception, never an allocation of what a header
claims but the file does not hold.
"""

from __future__ import annotations

import io
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

from edgekit.data import load_samples
from edgekit.specs import TensorSpec
from tests.fuzz._fuzz import mutated, outcome, tiers

pytestmark = pytest.mark.filterwarnings("ignore")

SPECS = {
    "one-float": [TensorSpec("x", (1, 4), "float32")],
    "one-image": [TensorSpec("image", (1, 2, 2, 1), "uint8")],
    "scalar": [TensorSpec("s", (1,), "float32")],
    "two": [TensorSpec("a", (1, 3), "float32"), TensorSpec("b", (1, 2), "int64")],
}
DESCR = ["<f4", "<f8", ">f4", "<f2", "|u1", "<i8", "|i1", "|b1", "<c8", "|O", "<U3", "|S2", "|V4", "<M8[s]",
         [("a", "<f4"), ("b", "<i4")], [("o", "|O")], "<f16", "xyz", "", 5, None, [], "<f4 ", "f4"]
SHAPES = [(), (4,), (2, 4), (3, 2, 2, 1), (0, 4), (2, 3), (1, 2), (10 ** 12, 4), (2 ** 62,), (-1, 4), (2, -4),
          (4, 1), "2, 4", (2.5, 4), (True, 4), [2, 4], None]


def _header(d: dict, version: tuple) -> bytes:
    """The .npy magic and header dict as numpy writes it, but with whatever values D holds."""
    text = repr(d).encode("latin1") if isinstance(d, dict) else d
    major = version[0]
    hlen_size = 2 if major == 1 else 4
    pad = 64 - (10 + (hlen_size - 2) + len(text) + 1) % 64
    text += b" " * (pad % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + len(text).to_bytes(hlen_size, "little") + text


@st.composite
def npy_bytes(draw) -> bytes:
    """A .npy file: numpy's own bytes for a small array, damaged; or a header with wrong fields
    (descr, fortran_order, shape, missing/extra keys, not a dict) and data of any length."""
    if draw(st.booleans()):
        dtype = draw(st.sampled_from(["float32", "float64", "uint8", "int64", "bool", "float16", "complex64"]))
        shape = draw(st.sampled_from([(4,), (2, 4), (3, 2, 2, 1), (0, 4), (2, 3), (1,), (5, 1), ()]))
        arr = np.arange(int(np.prod(shape)), dtype="float64").reshape(shape).astype(dtype)
        if draw(st.booleans()) and arr.ndim > 1:
            arr = np.asfortranarray(arr)
        if draw(st.booleans()) and arr.dtype.kind == "f" and arr.size:
            arr.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        buf = io.BytesIO()
        np.save(buf, arr)
        data = buf.getvalue()
        return draw(mutated(data)) if draw(st.booleans()) else data
    d = {"descr": draw(st.sampled_from(DESCR)), "fortran_order": draw(st.sampled_from([False, True, 0, "no"])),
         "shape": draw(st.sampled_from(SHAPES))}
    for key in draw(st.lists(st.sampled_from(["descr", "fortran_order", "shape"]), max_size=2)):
        d.pop(key, None)
    if draw(st.booleans()):
        d[draw(st.sampled_from(["extra", 1]))] = 1
    header = d if draw(st.integers(0, 9)) else draw(st.sampled_from(
        [b"[1, 2]", b"{'descr': '<f4', 'shape': (2,4), 'fortran_order': False", b"{" * 500 + b"}" * 500,
         b"__import__('os')", b"{'descr': '<f4', 'fortran_order': False, 'shape': (" + b"9" * 5000 + b",)}"]))
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)]))
    data = draw(st.binary(max_size=256)) if draw(st.booleans()) else bytes(draw(st.integers(0, 200)))
    return _header(header, version) + data


@st.composite
def npz_bytes(draw) -> bytes:
    """A .npz archive of .npy members (named after the inputs, `labels`, or other keys; stored or
    deflated), possibly damaged as bytes afterwards; or a .npy file renamed .npz."""
    if not draw(st.integers(0, 9)):
        return draw(npy_bytes())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as z:
        for name in draw(st.lists(st.sampled_from(["x", "image", "s", "a", "b", "labels", "arr_0", "label", "x.npy/y",
                                                   "-"]), max_size=4, unique=True)):
            if draw(st.booleans()) and name != "labels":  # a well-formed array for one of the specs
                arr = draw(st.sampled_from([np.zeros((2, 4), "float32"), np.zeros((2, 2, 2, 1), "uint8"),
                                            np.zeros((2, 1), "float32"), np.zeros((2, 3), "float32"),
                                            np.zeros((2, 2), "int64"), np.zeros(4, "float64")]))
                buf = io.BytesIO()
                np.save(buf, arr)
                member = buf.getvalue()
            elif draw(st.booleans()):
                labels = draw(st.sampled_from([np.array(3), np.arange(2), np.arange(5), np.array(["a", "b"]),
                                               np.zeros((2, 2))]))
                buf = io.BytesIO()
                np.save(buf, labels)
                member = buf.getvalue() if name == "labels" else draw(npy_bytes())
            else:
                member = draw(npy_bytes())
            z.writestr(name + (".npy" if draw(st.integers(0, 5)) else ""), member)
    data = out.getvalue()
    return draw(mutated(data)) if not draw(st.integers(0, 3)) else data


def _image_seeds() -> dict[str, bytes]:
    from PIL import Image

    out = {}
    im = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    for fmt, ext in (("PNG", ".png"), ("BMP", ".bmp"), ("GIF", ".gif"), ("JPEG", ".jpg"), ("TIFF", ".tif")):
        buf = io.BytesIO()
        im.save(buf, fmt)
        out[ext] = buf.getvalue()
    return out


IMAGES = _image_seeds()


def _load(name: str, data: bytes, spec: str):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kind, got = outcome(f"data.{Path(name).suffix.lstrip('.') or 'images'}", load_samples, p, SPECS[spec],
                                what="parity data")
        if kind == "ok":  # what load_samples returns fits the specs
            for s in SPECS[spec]:
                arr = got.inputs[s.name]
                assert arr.shape[1:] == tuple(s.shape[1:]) and arr.dtype == np.dtype(s.dtype) and len(arr) > 0
            assert got.labels is None or len(got.labels) == len(got)


def check_npy(case):
    data, spec = case
    _load("data.npy", data, spec)


def check_npz(case):
    data, spec = case
    _load("data.npz", data, spec)


def check_images(case):
    """A folder of 1..3 images (damaged copies of real PNG/BMP/GIF/JPEG/TIFF files)."""
    files, spec = case
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "images"
        folder.mkdir()
        for i, (ext, data) in enumerate(files):
            (folder / f"{i}{ext}").write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome("data.images", load_samples, folder, SPECS[spec], what="calibration data")


spec_names = st.sampled_from(sorted(SPECS))
image_files = st.lists(st.sampled_from(sorted(IMAGES)).flatmap(
    lambda ext: st.tuples(st.just(ext), st.one_of(st.just(IMAGES[ext]), mutated(IMAGES[ext])))), min_size=1, max_size=3)

_npy = io.BytesIO()
np.save(_npy, np.zeros((2, 4), np.float32))
_npz = io.BytesIO()
np.savez(_npz, x=np.zeros((2, 4), np.float32))
_npz_labels0d = io.BytesIO()
np.savez(_npz_labels0d, x=np.zeros((2, 4), np.float32), labels=np.array(3))
_crc = bytearray(_npz.getvalue())
_crc[60] ^= 0xFF

test_npy, test_npy_slow = tiers(check_npy, slow=1200, case=st.tuples(npy_bytes(), spec_names), examples=[
    (_npz.getvalue(), "one-float"),  # a .npz renamed .npy (AttributeError: 'NpzFile' object has no attribute 'ndim')
    # a header claiming 14.6 TiB (MemoryError)
    (_header({"descr": "<f4", "fortran_order": False, "shape": (10 ** 12, 4)}, (1, 0)) + bytes(32), "one-float"),
    # a header key that is not a string (TypeError in numpy's sorted(keys))
    (_header({"descr": "<f4", "fortran_order": False, "shape": (), 1: 1}, (1, 0)), "one-float"),
    # a header cut inside its dict (tokenize.TokenError)
    (_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), |", (1, 0)) + bytes(16), "one-float"),
])
test_npz, test_npz_slow = tiers(check_npz, slow=1200, case=st.tuples(npz_bytes(), spec_names), examples=[
    (_npy.getvalue(), "one-float"),  # a .npy renamed .npz (TypeError: no context manager protocol)
    (_npz_labels0d.getvalue(), "one-float"),  # 0-d labels (TypeError: len() of unsized object)
    (bytes(_crc), "one-float"),  # a damaged record (zipfile.BadZipFile: Bad CRC-32)
])
_bomb = bytearray(IMAGES[".png"])
_bomb[16:24] = (1 << 15).to_bytes(4, "big") * 2  # IHDR: 32768 x 32768 pixels
test_images, test_images_slow = tiers(check_images, slow=500, case=st.tuples(image_files, spec_names), examples=[
    ([(".png", bytes(_bomb))], "one-image"),  # PIL.Image.DecompressionBombError
])

"""Weights that reach litert-torch as transposed views (onnx2torch's MatMul constants, a
`weight.t()` kept as a plain tensor) each land in the .tflite as themselves.

litert-torch 0.10 caches lowered constants by the storage address of a temporary contiguous copy;
a freed copy's address is reused by the next, and a later layer silently got an earlier layer's
weights (converters/_litert_consts.py). Before the fix this net converted with max |diff| ~9000
in two builds of three; PP-OCRv4's recognizer at 46-53 dB in most builds."""

from __future__ import annotations

import numpy as np

TRANSPOSED_WEIGHTS = '''import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        # plain tensors (not parameters), each a transposed view of a 256x256 matrix: 256 kB, so
        # each contiguous copy is its own mmap and a freed one's address comes back at once
        self.a, self.b, self.c = (torch.randn(256, 256, generator=g).t() for _ in range(3))

    def forward(self, x):
        return torch.relu(torch.relu(x @ self.a) @ self.b) @ self.c


def net():
    return Net().eval(), (torch.zeros(1, 4, 256),)
'''


def test_transposed_weight_constants_stay_distinct(cli, tmp_path):
    (tmp_path / "mlp.py").write_text(TRANSPOSED_WEIGHTS)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((6, 4, 256)).astype(np.float32))
    for build in ("a", "b"):  # the bad address reuse came and went between builds
        r = cli("convert", f"{tmp_path / 'mlp.py'}:net", "--to", "tflite", "--data", tmp_path / "x.npy",
                "-o", tmp_path / f"{build}.tflite", "--json")
        assert r.exit_code == 0, r
        assert r.json()["parity"]["outputs"][0]["psnr_db"] >= 100, r.json()["parity"]


def test_the_cache_patch_is_undone_after_the_block():
    from litert_torch.backend import inline_consts

    from edgekit.converters._litert_consts import constants_kept_alive

    before = inline_consts._ConstantFingerprint.__dict__["from_tensor"]
    with constants_kept_alive():
        assert inline_consts._ConstantFingerprint.__dict__["from_tensor"] is not before
    assert inline_consts._ConstantFingerprint.__dict__["from_tensor"] is before

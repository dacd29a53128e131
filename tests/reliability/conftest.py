"""Session assets for the reliability table: tiny models, an artifact, data and a run report,
built once (a few seconds) and only read by the cases (their hashes are checked)."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    """{name: path} of the shared inputs: tiny.keras/.h5 (8 → 4 Dense), tiny.tflite (+ manifest),
    tiny.pt2 and emb.pt2 (an Embedding of 10 tokens), custom.keras (an unregistered custom
    layer), x8.npy (good data), ids.npy (token ids beyond 10), report.json (a valid run report)."""
    import keras
    import torch

    from edgekit.build import convert
    from tests.models_keras import tiny_dense

    d = tmp_path_factory.mktemp("reliability-assets")
    keras.utils.set_random_seed(0)
    model = tiny_dense()
    model.save(d / "tiny.keras")
    with contextlib.redirect_stderr(io.StringIO()):
        model.save(d / "tiny.h5")
    convert(str(d / "tiny.keras"), output=str(d / "tiny.tflite"), validate=False, isolate=False)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(x)

    class Emb(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 4)

        def forward(self, ids):
            return self.emb(ids).mean(1)

    torch.export.save(torch.export.export(Net().eval(), (torch.randn(1, 8),)), d / "tiny.pt2")
    torch.export.save(torch.export.export(Emb().eval(), (torch.zeros(1, 5, dtype=torch.long),)), d / "emb.pt2")

    class Doubler(keras.layers.Layer):  # not registered: a .keras cannot bring its code
        def call(self, x):
            return x * 2

    inp = keras.Input((8,), name="x")
    keras.Model(inp, Doubler(name="doubler")(inp)).save(d / "custom.keras")
    np.save(d / "x8.npy", np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32))
    np.save(d / "ids.npy", np.array([[1, 2, 3, 50, 4]], dtype=np.int64))
    (d / "report.json").write_text(json.dumps(valid_report()))
    return {p.name.replace(".", "_"): p for p in d.iterdir()} | {"dir": d}


def valid_report() -> dict:
    """The smallest run report `edgekit report` renders (schema $defs/run)."""
    return {"schema_version": 1, "kind": "run", "pipeline": "edgekit.yaml", "model": "m.keras", "targets": ["host"],
            "passed": True, "interrupted": False,
            "builds": [{"name": "fp32", "options": {"to": "tflite", "quantize": "none"}, "status": "built",
                        "budgets": [], "profiles": [], "passed": True, "convert": None}]}

"""PyTorch fixtures: a small CNN trained once per session on scikit-learn's digits (NCHW)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

NETS = Path(__file__).parent / "torch_nets.py"


@pytest.fixture(scope="session")
def nets():
    """nets("gru") → the `edgekit convert` MODEL argument for a factory or class in torch_nets.py."""
    return lambda name: f"{NETS}:{name}"


@pytest.fixture(scope="session")
def torch_digits(digits, tmp_path_factory):
    """DigitsNet trained on digits (≈ 0.97 held-out accuracy); weights, NCHW data files."""
    import torch

    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_nets", NETS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.train_digits_net(digits, epochs=15)
    with torch.no_grad():
        pred = model(torch.from_numpy(digits["x_test"][:, None])).argmax(1).numpy()
    acc = float((pred == digits["y_test"]).mean())
    d = tmp_path_factory.mktemp("torch-digits")
    torch.save(model.state_dict(), d / "digits_state.pt")
    np.savez(d / "test.npz", image=digits["x_test"][:, None], labels=digits["y_test"])
    np.savez(d / "calib.npz", image=digits["x_train"][:300, None])
    return {"dir": d, "weights": d / "digits_state.pt", "test": d / "test.npz", "calib": d / "calib.npz",
            "accuracy": acc, "model": model, "spec": f"{NETS}:DigitsNet",
            "args": [f"{NETS}:DigitsNet", "--weights", str(d / "digits_state.pt"), "--input-shape", "image=1x1x8x8"]}

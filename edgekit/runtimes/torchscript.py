"""PyTorch Mobile runtime: a `.ptl` file loaded with the lite interpreter
(torch.jit.mobile._load_for_lite_interpreter), as the Android/iOS PyTorch Mobile runtime does.

PyTorch Mobile is deprecated upstream in favour of ExecuTorch; it runs here for apps that still
ship it. The input/output specs travel inside the .ptl (extra/edgekit_io.json, written by the
converter), since the lite interpreter does not expose them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..agent.edgekit_agent import PTL_IO_FILE as IO_FILE  # one reader, shared with the device agent
from ..agent.edgekit_agent import ptl_io
from ..artifacts import read_manifest
from ..errors import BadInput, CheckFailed, require
from ..integrity import corrupt
from ..specs import TensorSpec


class LiteInterpreterSession:
    def __init__(self, path: Path, threads: int | None = None):
        torch = require("torch", "torch", "PyTorch (the lite interpreter)")
        from torch.jit.mobile import _load_for_lite_interpreter

        if threads:
            torch.set_num_threads(int(threads))
        self.path = Path(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = _load_for_lite_interpreter(str(self.path))
        except Exception as exc:
            if "PytorchStreamReader" in str(exc):  # the zip archive itself is damaged
                raise corrupt(self.path, str(exc).strip().splitlines()[0].split(". ")[0]) from exc
            raise CheckFailed(f"The lite interpreter cannot load {self.path.name}: {str(exc).strip().splitlines()[0]}",
                              "Reconvert with edgekit convert --to torchscript.") from exc
        io = ptl_io(self.path) or read_manifest(self.path)
        if not io or "inputs" not in io:
            raise BadInput(f"{self.path.name} does not say what its inputs are (no edgekit metadata or manifest).",
                           "Convert it with edgekit convert --to torchscript, or keep its .json manifest beside it.")
        self.inputs = [TensorSpec.from_dict(d) for d in io["inputs"]]
        self.outputs = [TensorSpec.from_dict(d) for d in io["outputs"]]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        args = []
        for i, s in enumerate(self.inputs):
            x = feeds[s.name] if s.name in feeds else list(feeds.values())[i]
            args.append(torch.from_numpy(np.ascontiguousarray(x, dtype=s.dtype)))
        try:
            with torch.no_grad():
                y = self.module(*args)
        except Exception as exc:
            raise CheckFailed(f"The .ptl model failed to run: {str(exc).strip().splitlines()[0][:400]}",
                              "Check the input shapes; reconvert the model.") from exc
        flat = _flatten(y)
        return {s.name: t.detach().numpy() for s, t in zip(self.outputs, flat)}


def _flatten(y) -> list:
    import torch

    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, dict):
        return list(y.values())
    out = []
    for v in y:
        out.extend(_flatten(v))
    return out

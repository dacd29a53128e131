"""PyTorch Mobile runtime: a `.ptl` file loaded with the lite interpreter
(torch.jit.mobile._load_for_lite_interpreter), as the Android/iOS PyTorch Mobile runtime does.

PyTorch Mobile is deprecated upstream in favour of ExecuTorch; it runs here for apps that still
ship it. The input/output specs travel inside the .ptl (extra/edgekit_io.json, written by the
converter), since the lite interpreter does not expose them."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..artifacts import read_manifest
from ..errors import BadInput, CheckFailed
from ..integrity import corrupt
from ..specs import TensorSpec
from . import BaseSession, import_runtime

IO_FILE = "edgekit_io.json"  # inside the .ptl archive, under extra/


def ptl_io(path) -> dict | None:
    """The I/O specs edgekit's converter keeps inside a .ptl archive (extra/edgekit_io.json):
    {"inputs": [TensorSpec dicts], "outputs": [...]}, or None (the lite interpreter cannot tell)."""
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith(f"extra/{IO_FILE}"):
                    return json.loads(z.read(name))
    except (OSError, zipfile.BadZipFile, ValueError):
        pass
    return None


class LiteInterpreterSession(BaseSession):
    """A `.ptl` file in torch's lite interpreter, as the Android/iOS PyTorch Mobile runtime runs it.

    Args:
        path: the `.ptl` file; its I/O specs come from the record edgekit's converter stores in
            it, else from the manifest beside it.
        threads: torch's intra-op threads (None: torch's default).

    Raises BadInput (exit 2) for a damaged archive or one without I/O specs, MissingDependency
    (exit 3) without torch, CheckFailed (exit 1) when the interpreter refuses the file.
    """

    def __init__(self, path: Path, threads: int | None = None):
        torch = import_runtime(("torch",), "torch", "PyTorch (the lite interpreter)")
        from torch.jit.mobile import _load_for_lite_interpreter

        self.runtime = "torch"
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

    def set_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        """Feeds (numpy, by input name or position) → the torch tensors `forward` takes."""
        import torch

        self._args = [torch.from_numpy(np.ascontiguousarray(self._feed(feeds, i, s), dtype=s.dtype))
                      for i, s in enumerate(self.inputs)]

    def invoke(self) -> None:
        """Call the module once on the inputs set last (no autograd)."""
        import torch

        try:
            with torch.no_grad():
                self._last = _flatten(self.module(*self._args))
        except Exception as exc:
            raise CheckFailed(f"The .ptl model failed to run: {str(exc).strip().splitlines()[0][:400]}",
                              "Check the input shapes; reconvert the model.") from exc

    def get_outputs(self) -> dict[str, np.ndarray]:
        """The last outputs as numpy arrays (copies), by output name."""
        names = [s.name for s in self.outputs] or [f"output_{i}" for i in range(len(self._last))]
        return {n: t.detach().numpy().copy() for n, t in zip(names, self._last)}


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

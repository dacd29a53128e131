"""ExecuTorch runtime: a `.pte` program loaded with `executorch.runtime` (the pip wheel's
portable kernels plus the XNNPACK backend)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..artifacts import read_manifest
from ..integrity import corrupt
from ..errors import CheckFailed, require
from ..native_log import capture_native_stderr
from ..specs import TensorSpec

# c10::ScalarType codes as MethodMeta reports them
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                7: "float64", 11: "bool"}
ERR_OPERATOR_MISSING = "0x14"
ERR_INVALID_PROGRAM = "0x23"  # Error::InvalidProgram: identifier, header sizes or flatbuffer verification


def set_threads(threads: int | None) -> None:
    """Size ExecuTorch's shared threadpool (XNNPACK runs on it)."""
    if not threads:
        return
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() != threads:
        portable_lib._unsafe_reset_threadpool(int(threads))


class ExecuTorchSession:
    """Loads every method of a .pte program; `run` executes `forward` (or the only method)."""

    def __init__(self, path: Path, threads: int | None = None, method: str | None = None):
        rt_mod = require("executorch.runtime", "torch", "ExecuTorch (the .pte runtime)")
        import torch  # noqa: F401  (executorch's runtime hands back torch tensors)

        set_threads(threads)
        self.path = Path(path)
        self.runtime = rt_mod.Runtime.get()
        err = None
        with capture_native_stderr() as log:
            try:
                self.program = self.runtime.load_program(self.path)
            except Exception as exc:
                err = exc
        if err is not None:  # log.text is read once the capture ends
            if ERR_INVALID_PROGRAM in str(err).replace(":", ""):  # its verifier said no: a damaged file
                detail = _native_detail(log.text).removeprefix("Runtime log: ")
                raise corrupt(self.path, f"ExecuTorch rejects the program: {detail or err}") from err
            raise CheckFailed(f"executorch.runtime cannot load {self.path.name}: {err}",
                              _native_detail(log.text) or "The file is not a valid .pte program.") from err
        names = sorted(self.program.method_names)
        self.method_name = method or ("forward" if "forward" in names else names[0])
        self.methods = {}
        for name in names:  # every method: a missing kernel surfaces here, at load time
            self.methods[name] = self._load_method(name)
        self.method = self.methods[self.method_name]
        meta = self.method.metadata
        manifest = read_manifest(self.path) or {}
        in_names = [s["name"] for s in manifest.get("inputs", [])]
        out_names = [s["name"] for s in manifest.get("outputs", [])]
        self.inputs = [self._spec(meta.input_tensor_meta(i), in_names, i, "input") for i in range(meta.num_inputs())]
        self.outputs = [self._spec(meta.output_tensor_meta(i), out_names, i, "output")
                        for i in range(meta.num_outputs())]

    def _load_method(self, name: str):
        with capture_native_stderr() as log:
            try:
                return self.program.load_method(name)
            except RuntimeError as exc:
                err = exc
        missing = missing_operators(log.text)
        if missing or ERR_OPERATOR_MISSING in str(err).replace(":", ""):
            raise CheckFailed(
                f"The .pte method {name!r} cannot load: no kernel for "
                f"{', '.join(missing) if missing else 'an operator (see the native log)'} in this ExecuTorch "
                "runtime.",
                "The operator was neither delegated to XNNPACK nor built into the portable kernels. Replace "
                "it in the model (or build an ExecuTorch runtime with that kernel and ship that).",
            ) from err
        raise CheckFailed(f"The .pte method {name!r} cannot load: {err}", _native_detail(log.text) or
                          "Reconvert the model; if it persists, report the message above.") from err

    @staticmethod
    def _spec(tmeta, names, i, kind) -> TensorSpec:
        return TensorSpec(names[i] if i < len(names) else f"{kind}_{i}", tuple(int(d) for d in tmeta.sizes()),
                          SCALAR_TYPES.get(int(tmeta.dtype()), "float32"))

    def execute(self, args: list, method: str | None = None) -> list:
        with capture_native_stderr() as log:
            try:
                return list(self.methods[method or self.method_name].execute(args))
            except RuntimeError as exc:
                err = exc
        raise CheckFailed(f"The .pte method {method or self.method_name!r} failed to run: {err}",
                          _native_detail(log.text) or "Check the input shapes and dtypes.") from err

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        args = []
        for i, s in enumerate(self.inputs):
            x = feeds[s.name] if s.name in feeds else list(feeds.values())[i]
            args.append(torch.from_numpy(np.ascontiguousarray(x, dtype=s.dtype)))
        outs = self.execute(args)
        return {s.name: o.numpy() for s, o in zip(self.outputs, outs)}

    def check_all_methods(self) -> dict:
        """Execute every method once on zeros of its input specs; {method: [output shapes]}."""
        import torch

        shapes = {}
        for name, m in self.methods.items():
            meta = m.metadata
            args = []
            for i in range(meta.num_inputs()):
                spec = self._spec(meta.input_tensor_meta(i), [], i, "input")
                args.append(torch.zeros(spec.shape, dtype=getattr(torch, spec.dtype)))
            shapes[name] = [tuple(o.shape) for o in self.execute(args, name)]
        return shapes


def missing_operators(native_log: str) -> list[str]:
    """Operator names from ExecuTorch's 'Missing operator' / 'kernel ... not found' log lines."""
    found = re.findall(r"Missing operator: \[\d+\] ([\w:.]+)", native_log)
    found += re.findall(r"kernel '([\w:.]+)' not found", native_log)
    return sorted(set(found))


def _native_detail(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if l.strip() and "cpuinfo" not in l]
    return ("Runtime log: " + " | ".join(lines[-4:])) if lines else ""

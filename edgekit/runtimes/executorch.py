"""ExecuTorch runtime: a `.pte` program loaded with `executorch.runtime` (the pip wheel's
portable and optimized kernels plus the XNNPACK backend)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..artifacts import read_manifest
from ..errors import CheckFailed
from ..integrity import corrupt
from ..native_log import capture_native_stderr
from ..specs import TensorSpec
from . import BaseSession, import_runtime

# c10::ScalarType codes as MethodMeta reports them
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                7: "float64", 11: "bool"}
ERR_OPERATOR_MISSING = "0x14"
ERR_INVALID_PROGRAM = "0x23"  # Error::InvalidProgram: identifier, header sizes or flatbuffer verification


def set_threads(threads: int | None) -> None:
    """Size ExecuTorch's shared threadpool (XNNPACK runs on it)."""
    if not threads:
        return
    try:
        from executorch.extension.pybindings import portable_lib

        if portable_lib._threadpool_get_thread_count() != threads:
            portable_lib._unsafe_reset_threadpool(int(threads))
    except (ImportError, AttributeError):  # an older runtime on a board: its default pool
        pass


class ExecuTorchSession(BaseSession):
    """A `.pte` program with every method loaded; `run` executes `forward` (or the only method).

    Args:
        path: the `.pte` file. Input/output names come from edgekit's manifest beside it when
            there is one (`model.pte.json`), else `input_0`, `output_0` ...
        threads: size of ExecuTorch's shared threadpool (XNNPACK runs on it).
        method: the method `run` executes (default `forward`, else the first by name).
        etdump: record an ETDump (per-operator events) for `write_etdump`; slower.

    Raises BadInput (exit 2) for a damaged program, MissingDependency (exit 3) without
    executorch, CheckFailed (exit 1) when a method cannot load (naming a missing kernel).
    """

    def __init__(self, path: Path, threads: int | None = None, method: str | None = None, etdump: bool = False):
        rt_mod = import_runtime(("executorch.runtime",), "torch", "ExecuTorch (the .pte runtime)")
        import torch  # noqa: F401  (executorch's runtime hands back torch tensors)

        self.runtime = "executorch"
        set_threads(threads)
        self.path = Path(path)
        err = None
        with capture_native_stderr() as log:
            try:
                self.program = rt_mod.Runtime.get().load_program(
                    str(self.path), **({"enable_etdump": True, "debug_buffer_size": 0} if etdump else {}))
            except Exception as exc:
                err = exc
        self.native_log = log.text
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
        """Execute METHOD (default: the session's method) once on ARGS (torch tensors, in the
        method's input order) → its outputs as a list. CheckFailed (exit 1) when it fails, with
        the runtime's native log as the hint."""
        with capture_native_stderr() as log:
            try:
                return list(self.methods[method or self.method_name].execute(args))
            except RuntimeError as exc:
                err = exc
        raise CheckFailed(f"The .pte method {method or self.method_name!r} failed to run: {err}",
                          _native_detail(log.text) or "Check the input shapes and dtypes.") from err

    def set_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        """Feeds (numpy, by input name or position) → the torch tensors the method takes."""
        import torch

        self._args = [torch.from_numpy(np.ascontiguousarray(self._feed(feeds, i, s), dtype=s.dtype))
                      for i, s in enumerate(self.inputs)]

    def invoke(self) -> None:
        """Execute the method once on the inputs set last."""
        self._last = self.execute(self._args)

    def get_outputs(self) -> dict[str, np.ndarray]:
        """The last outputs as numpy arrays (copies), by output name."""
        return {s.name: o.numpy().copy() for s, o in zip(self.outputs, self._last)}

    def write_etdump(self, path: str) -> None:
        """Write the ETDump recorded since loading (needs `etdump=True`) to PATH (+ PATH.debug)."""
        self.program.write_etdump_result_to_file(path, path + ".debug")

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

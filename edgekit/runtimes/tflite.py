"""LiteRT / TFLite runtime: ai-edge-litert's Interpreter (tflite-runtime's successor, same API;
tflite-runtime itself is still taken on a board that only has it)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import CheckFailed, DeviceUnavailable, MissingLibrary
from ..integrity import corrupt
from ..native_log import capture_native_stderr
from ..specs import TensorSpec
from . import BaseSession, import_runtime

INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


class TFLiteSession(BaseSession):
    """A `.tflite` model in LiteRT's Interpreter, with XNNPACK (the default delegate) or an
    external delegate such as the Edge TPU's.

    Args:
        path: the `.tflite` file.
        threads: CPU threads for the interpreter and XNNPACK (None: the runtime's default).
        preserve_all_tensors: keep every intermediate tensor readable after invoke (per-layer
            parity; slower, more memory).
        delegates: delegate objects to apply (already loaded).
        external_delegate: `{"library": "libedgetpu.so.1", "options": {...}}` to load with
            `load_delegate`; then only that delegate runs (XNNPACK is left out so that its
            node count is not mixed in).
        warm_up: invoke once on zeros while loading, so the delegate's log lines are captured
            and a model that cannot run (Flex ops) still opens (`run` reports the failure).
            The device agent turns it off so that its first timed inference is the first one.

    Inputs and outputs keep the names of the model's signature when it has exactly one.
    Raises BadInput (exit 2) for a damaged file, MissingDependency (exit 3) without a TFLite
    runtime, MissingLibrary (exit 3) / DeviceUnavailable (exit 4) for an external delegate that
    cannot load or finds no device, CheckFailed (exit 1) when the interpreter refuses the model.
    """

    def __init__(self, path: Path, threads: int | None = None, preserve_all_tensors: bool = False,
                 delegates=None, external_delegate: dict | None = None, warm_up: bool = True):
        mod = import_runtime(INTERPRETER_MODULES, "tf", "ai-edge-litert (the TFLite runtime)")
        self.runtime = mod.__name__.split(".")[0]
        self.path = Path(path)
        self.external = None
        self.external_library = (external_delegate or {}).get("library")
        delegates = list(delegates or [])
        kw = {}
        with capture_native_stderr() as log:
            if self.external_library:
                self.external = load_external_delegate(mod, self.external_library,
                                                       external_delegate.get("options") or {})
                delegates.append(self.external)
                if hasattr(mod, "OpResolverType"):
                    kw["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            if preserve_all_tensors:
                kw["experimental_preserve_all_tensors"] = True
            self._unrunnable = None
            try:
                self.interpreter = mod.Interpreter(model_path=str(self.path), num_threads=threads,
                                                   experimental_delegates=delegates or None, **kw)
                err = None
            except (ValueError, RuntimeError) as exc:
                err = exc
            if err is None:
                try:
                    self.interpreter.allocate_tensors()
                except (ValueError, RuntimeError) as exc:  # e.g. Flex ops: the specs are still readable
                    self._unrunnable = exc
                self._in, self._out = self._io_details()
                self.inputs = [_tflite_spec(d) for d in self._in]
                self.outputs = [_tflite_spec(d) for d in self._out]
                if warm_up:
                    try:
                        self.run({s.name: np.zeros(s.shape, s.dtype) for s in self.inputs})
                    except CheckFailed:
                        pass  # e.g. Flex ops: the specs are still readable; run() reports the failure
        self.native_log = log.text
        if err is not None:
            msg = f"{err}\n{log.text}".strip()
            if "not a valid Flatbuffer" in msg:  # LiteRT's flatbuffer verifier: a damaged file, not a bad model
                raise corrupt(self.path, "ai-edge-litert's flatbuffer verifier rejects it") from err
            raise CheckFailed(f"{self.runtime} cannot load {self.path.name}: {msg.splitlines()[-1] if msg else err}",
                              _litert_hint(msg)) from err

    def _io_details(self) -> tuple[list[dict], list[dict]]:
        """Input/output tensor details, named by the model's signature when it has exactly one."""
        ins, outs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        sigs = self.interpreter.get_signature_list()
        self.signature = next(iter(sigs)) if len(sigs) == 1 else None
        if self.signature:
            runner = self.interpreter.get_signature_runner(self.signature)
            in_names = {d["index"]: n for n, d in runner.get_input_details().items()}
            out_names = {d["index"]: n for n, d in runner.get_output_details().items()}
            ins = [dict(d, name=in_names.get(d["index"], d["name"])) for d in ins]
            outs = [dict(d, name=out_names.get(d["index"], d["name"])) for d in outs]
        return ins, outs

    def set_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        """Copy one value per input into the interpreter (resizing a dynamic input to its feed)."""
        if self._unrunnable is not None:
            return  # invoke() says why
        resized = False
        for i, (d, s) in enumerate(zip(self._in, self.inputs)):
            x = self._feed(feeds, i, s)
            if tuple(x.shape) != tuple(self.interpreter.get_tensor(d["index"]).shape):
                self.interpreter.resize_tensor_input(d["index"], list(x.shape))
                resized = True
        if resized:
            self.interpreter.allocate_tensors()
        for i, (d, s) in enumerate(zip(self._in, self.inputs)):
            try:
                self.interpreter.set_tensor(d["index"], self._feed(feeds, i, s))
            except ValueError as exc:
                raise CheckFailed(f"The TFLite model cannot take input {s.name!r}: {exc}",
                                  "Check the input's shape and dtype against the model's.") from exc

    def invoke(self) -> None:
        """Run the graph once on the inputs set last."""
        if self._unrunnable is not None:
            raise CheckFailed(f"The TFLite model cannot run: {self._unrunnable}", _litert_hint(str(self._unrunnable)))
        try:
            self.interpreter.invoke()
        except RuntimeError as exc:
            raise CheckFailed(f"The TFLite model failed to run: {exc}", _litert_hint(str(exc))) from exc

    def get_outputs(self) -> dict[str, np.ndarray]:
        """Every output of the last invoke, copied out of the interpreter, by name."""
        return {s.name: np.array(self.interpreter.get_tensor(d["index"])) for d, s in zip(self._out, self.outputs)}

    def delegation(self) -> dict | None:
        """Delegate coverage: nodes inside each DELEGATE partition vs all nodes of the graph.

        Read from the graph (each delegate node replaces the nodes between its inputs and
        outputs), and cross-checked with the runtime's own "Replacing N out of M node(s)" line
        when it printed one. Returns the `delegation` entry of the profile schema, or None when
        the interpreter does not expose its ops."""
        try:
            ops = self.interpreter._get_ops_details()
        except Exception:
            return None
        return graph_delegation(ops, self.native_log,
                                os.path.basename(self.external_library) if self.external else "XNNPACK")


def graph_delegation(ops: list[dict], native_log: str, backend: str) -> dict:
    """Coverage of BACKEND's DELEGATE nodes over OPS (`Interpreter._get_ops_details()` rows)."""
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    nodes = [o for o in ops if o["op_name"] != "DELEGATE"]
    producer = {int(t): o for o in nodes for t in o["outputs"]}
    replaced: set[int] = set()
    for d in delegates:
        stop = {int(t) for t in d["inputs"]}
        todo, seen = [int(t) for t in d["outputs"]], set()
        while todo:
            t = todo.pop()
            if t in seen or t in stop:
                continue
            seen.add(t)
            o = producer.get(t)
            if o is None or o["index"] in replaced:
                continue
            replaced.add(o["index"])
            todo.extend(int(x) for x in o["inputs"] if x >= 0)
    by_op: dict[str, int] = {}
    for o in nodes:
        if o["index"] not in replaced:
            by_op[o["op_name"]] = by_op.get(o["op_name"], 0) + 1
    result = {
        "backend": backend,
        "delegated_ops": len(replaced),
        "total_ops": len(nodes),
        "partitions": len(delegates),
        "not_delegated": sorted(by_op),
        "not_delegated_counts": by_op,
        "xnnpack_active": bool(delegates) or "XNNPACK" in native_log,
    }
    m = re.findall(r"Replacing (\d+) out of (\d+) node\(s\)", native_log)
    if m:
        result["runtime_log"] = {"replaced": sum(int(a) for a, _ in m), "total": int(m[0][1])}
    return result


def load_external_delegate(interp_module, library: str, options: dict):
    """`load_delegate(LIBRARY, OPTIONS)` with its two failures told apart.

    The library missing raises OSError (dlopen; not the ValueError `load_delegate`'s docstring
    promises) → MissingLibrary (exit 3); loaded but no device answering raises ValueError →
    DeviceUnavailable (exit 4). Both checked with ai-edge-litert 2.3.0 (see tests/targets)."""
    try:
        return interp_module.load_delegate(library, options or None)
    except OSError as exc:
        raise MissingLibrary(f"The delegate library {library} cannot be loaded: {exc}",
                             "Coral: install the Edge TPU runtime (apt-get install libedgetpu1-std from Coral's apt "
                             "repository, https://coral.ai/software/#edgetpu-runtime), or point edgekit at the "
                             "library (EDGEKIT_EDGETPU_LIB=/path/libedgetpu.so.1).") from exc
    except ValueError as exc:
        raise DeviceUnavailable(f"The delegate {os.path.basename(library)} found no device: {str(exc).strip()}",
                                "Coral: plug the USB Accelerator in (a USB 3 port), check `lsusb` for 18d1:9302 / "
                                "1a6e:089a and the udev rules, or `ls /dev/apex_0` for PCIe; options: "
                                + repr(options)) from exc


def _tflite_spec(d: dict) -> TensorSpec:
    """An interpreter tensor detail → TensorSpec (scale/zero-point only for quantized integers)."""
    scale, zp = d.get("quantization", (0.0, 0))
    quantized = scale not in (0, 0.0) and np.dtype(d["dtype"]).kind in "iu"
    return TensorSpec(
        name=d["name"],
        shape=tuple(int(x) for x in d["shape"]),
        dtype=np.dtype(d["dtype"]).name,
        scale=float(scale) if quantized else None,
        zero_point=int(zp) if quantized else None,
    )


def _litert_hint(msg: str) -> str:
    if "Select TensorFlow op" in msg or "Flex" in msg:
        return ("The model needs TensorFlow (Flex) ops, which ai-edge-litert does not ship. Convert "
                "without --allow-tf-ops, replacing the unsupported layers.")
    if "custom op" in msg.lower() or "edgetpu" in msg.lower():
        return "The model has a custom op (Edge TPU?); run it where its delegate is installed."
    return "Reconvert the model with edgekit convert; if it persists, report the message above."

"""LiteRT / TFLite runtime: ai-edge-litert's Interpreter (tflite-runtime's successor, same API)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..integrity import corrupt
from ..errors import CheckFailed, require
from ..native_log import capture_native_stderr
from ..specs import TensorSpec




class TFLiteSession:
    """ai-edge-litert's Interpreter (tflite-runtime's successor, same API), via the model's
    signature when it has one so that inputs and outputs keep their names."""

    def __init__(self, path: Path, threads: int | None = None, preserve_all_tensors: bool = False,
                 delegates=None):
        interp_mod = require("ai_edge_litert.interpreter", "tf", "ai-edge-litert (the TFLite runtime)")
        try:
            # The runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate" on fd 2; keep it
            # for errors instead of the terminal.
            with capture_native_stderr() as log:
                self.interpreter = interp_mod.Interpreter(
                    model_path=str(path),
                    num_threads=threads,
                    experimental_preserve_all_tensors=preserve_all_tensors,
                    experimental_delegates=delegates,
                )
                sigs = self.interpreter.get_signature_list()
                if len(sigs) == 1:  # one invoke applies the delegate (and prints its banner) here
                    runner = self.interpreter.get_signature_runner(next(iter(sigs)))
                    try:
                        runner(**{n: np.zeros(d["shape"], d["dtype"]) for n, d in runner.get_input_details().items()})
                    except (ValueError, RuntimeError):
                        pass  # e.g. Flex ops: the specs are still readable; run() reports the failure
                else:
                    self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            msg = f"{exc}\n{log.text}".strip()
            if "not a valid Flatbuffer" in msg:  # LiteRT's flatbuffer verifier: a damaged file, not a bad model
                raise corrupt(path, "ai-edge-litert's flatbuffer verifier rejects it") from exc
            raise CheckFailed(
                f"ai-edge-litert cannot load {path}: {msg.strip().splitlines()[-1] if msg.strip() else msg}",
                _litert_hint(msg),
            ) from exc
        sigs = self.interpreter.get_signature_list()
        self.signature = next(iter(sigs)) if len(sigs) == 1 else None
        if self.signature:
            self.runner = self.interpreter.get_signature_runner(self.signature)
            ins, outs = self.runner.get_input_details(), self.runner.get_output_details()
            self._in_details = [dict(d, name=n) for n, d in ins.items()]
            self._out_details = [dict(d, name=n) for n, d in outs.items()]
        else:
            self.runner = None
            self.interpreter.allocate_tensors()
            self._in_details = self.interpreter.get_input_details()
            self._out_details = self.interpreter.get_output_details()
        self.inputs = [_tflite_spec(d) for d in self._in_details]
        self.outputs = [_tflite_spec(d) for d in self._out_details]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.runner is not None:
            try:
                out = self.runner(**feeds)
            except (ValueError, RuntimeError) as exc:
                raise CheckFailed(f"The TFLite model failed to run: {exc}", _litert_hint(str(exc))) from exc
            return {k: np.array(v) for k, v in out.items()}
        for d in self._in_details:
            self.interpreter.set_tensor(d["index"], feeds[d["name"]])
        try:
            self.interpreter.invoke()
        except RuntimeError as exc:
            raise CheckFailed(f"The TFLite model failed to run: {exc}", _litert_hint(str(exc))) from exc
        return {d["name"]: np.array(self.interpreter.get_tensor(d["index"])) for d in self._out_details}


def _tflite_spec(d: dict) -> TensorSpec:
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



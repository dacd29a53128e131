"""PyTorch (nn.Module, TorchScript .pt) → PyTorch Mobile lite-interpreter `.ptl`.

trace (script when tracing fails) → freeze → _save_for_lite_interpreter → loaded back with the lite
interpreter and run. PyTorch Mobile is deprecated upstream in favour of ExecuTorch (--to
executorch); edgekit keeps this path for apps that still ship the lite interpreter, and says so.
torch.utils.mobile_optimizer.optimize_for_mobile needs a torch built with XNNPACK; the pip CPU
wheels are not, and it asserts: edgekit tries it, and reports plainly when it was skipped.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.errors import UnsupportedModel
from edgekit.quantization import QuantRecipe

from edgekit.sources.state import torch_restore, torch_snapshot

from . import _torch_common as common

FRAMEWORKS = ("torch", "torchscript")
RECIPES = ("none",)
SUFFIX = ".ptl"
DEPRECATED = ("PyTorch Mobile (.ptl, lite interpreter) is deprecated upstream in favour of ExecuTorch; "
              "prefer --to executorch for new apps.")


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """A PyTorch module or TorchScript file → DEST, a lite-interpreter .ptl: traced (scripted
    when tracing fails), frozen, optimize_for_mobile where the torch build allows it, with the
    source's I/O specs stored inside.

    Args:
        source: the loaded `SourceModel` (framework one of FRAMEWORKS).
        recipe: the `QuantRecipe`, one of RECIPES (edgekit.build refuses others before calling).
        dest: the file to write; edgekit.build passes `atomic_output`'s temporary path beside
            the final one.
        options: `converters.ConvertOptions`: io_dtype (float32 only).

    Returns the `Artifact` (schema `$defs/convert`) with `extra.torchscript` {method, frozen,
    optimize_for_mobile} and `extra.notes` (the deprecation, a skipped optimization).
    Raises BadInput (exit 2) for another io_dtype; UnsupportedModel (exit 2) when the model can
    be neither traced nor scripted, or saving fails; CheckFailed (exit 1) when the .ptl does not
    load or run, or gives outputs of other shapes than the source, or NaN/inf.
    """
    from edgekit.converters import refuse_search

    refuse_search(options, "PyTorch → .ptl")
    import torch

    from edgekit.runtimes.torchscript import IO_FILE, LiteInterpreterSession

    common.no_io_dtype(recipe, options, "TorchScript")
    example = tuple(source.extra["example_inputs"])
    notes = [DEPRECATED]
    how = "scripted (given)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if source.framework == "torchscript":
            scripted = source.native
        else:
            state = source.extra.get("stateful")
            snap = torch_snapshot(source.native)  # tracing runs forward(): the state is put back after
            try:
                with torch.no_grad(), warnings.catch_warnings(record=True) as traced_warnings:
                    warnings.simplefilter("always", torch.jit.TracerWarning)
                    # the trace check reruns forward() on state the first run changed: it cannot agree
                    scripted = torch.jit.trace(source.native.eval(), example, check_trace=not state)
                how = "traced"
                torch_restore(snap, also=scripted)  # the .ptl starts from the model's state, not the trace's
            except Exception as trace_exc:
                torch_restore(snap)
                try:
                    scripted = torch.jit.script(source.native.eval())
                    how = "scripted (tracing failed)"
                except Exception as exc:
                    raise UnsupportedModel(
                        f"TorchScript can neither trace nor script the model from {source.origin}: "
                        f"trace: {_line(trace_exc)}; script: {_line(exc)}",
                        "Use --to executorch (torch.export handles more models), or make forward() "
                        "scriptable.") from exc
            else:
                refuse_unsafe_trace(traced_warnings, source.origin)
        try:
            frozen = torch.jit.freeze(scripted.eval()) if hasattr(scripted, "training") else scripted
        except Exception:  # already frozen, or a module freeze cannot handle: keep it unfrozen
            frozen = scripted
        optimized = "no"
        try:
            from torch.utils.mobile_optimizer import optimize_for_mobile

            frozen = optimize_for_mobile(frozen)
            optimized = "yes"
        except Exception as exc:
            notes.append("optimize_for_mobile was skipped: this torch build has no XNNPACK "
                         f"({_line(exc)[:160]}). The .ptl is {how} and frozen, not mobile-optimized.")
        io = {"inputs": [s.to_dict() for s in source.inputs], "outputs": [s.to_dict() for s in source.outputs]}
        try:
            frozen._save_for_lite_interpreter(str(dest), _extra_files={IO_FILE: json.dumps(io)})
        except Exception as exc:
            raise UnsupportedModel(f"Saving for the lite interpreter failed: {_line(exc)}",
                                   "Use --to executorch.") from exc
    session = LiteInterpreterSession(dest)
    common.check_outputs(session, source, ".ptl")
    return Artifact(path=dest, format="torchscript", inputs=session.inputs, outputs=session.outputs,
                    recipe=recipe.name, tools={"torch": torch.__version__},
                    quantization={"recipe": recipe.name, "effective": True},
                    extra={"torchscript": {"method": how, "frozen": frozen is not scripted or how == "scripted (given)",
                                           "optimize_for_mobile": optimized}, "notes": notes})


def refuse_unsafe_trace(caught, origin: str) -> None:
    """UnsupportedModel (exit 2, nothing written) when torch.jit.trace warned (TracerWarning) while
    tracing: the trace froze one path of a branch on data (or a value turned into a Python
    number), so the .ptl would be right on inputs like the example and wrong on others, and a
    parity check on data that takes the same branch cannot see it. Warnings raised inside torch's
    own modules (shape checks of nn.LSTM) are not the model's and are ignored. CAUGHT: the warnings
    recorded during the trace; ORIGIN names the model."""
    import torch

    own = str(Path(torch.__file__).parent)  # torch's own input checks (nn.LSTM's size checks) are not the model's
    tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)
              and not str(w.filename).startswith(own)]
    if not tracer:
        return
    where = {f"{w.filename.rsplit('/', 1)[-1]}:{w.lineno}" for w in tracer}
    said = str(tracer[0].message).strip().splitlines()[0][:300]
    raise UnsupportedModel(
        f"Tracing the model from {origin} is not faithful: torch.jit.trace warned {len(tracer)} time(s) "
        f"({said}; at {', '.join(sorted(where))}). A trace records the one path the example input took, so "
        "the .ptl would compute something else on inputs that take another branch.",
        "Script it instead (return torch.jit.script(model) from the factory, or save it with torch.jit.save("
        "torch.jit.script(model)) and convert that .pt), or use --to executorch after rewriting the branch with "
        "torch.cond/torch.where (torch.export refuses data-dependent branches instead of freezing one).")


def _line(exc) -> str:
    lines = [l.strip() for l in str(exc).strip().splitlines() if l.strip()]
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__

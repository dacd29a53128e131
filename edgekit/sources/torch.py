"""PyTorch sources: nn.Module factories (optionally a class + --weights state_dict), `.pt2`
ExportedPrograms (torch.export.save) and TorchScript `.pt` files.

Every loader gives a SourceModel whose `native` is the module (or ExportedProgram /
ScriptModule) and whose `extra` holds what the converters need: `example_inputs` (a tuple of
tensors, batch 1), `input_names`, `output_names`.
"""

from __future__ import annotations

import inspect
import pickle
import zipfile
from pathlib import Path

import numpy as np

from ..errors import BadInput, ShapeNeeded, require
from ..specs import TensorSpec, resolve_shapes
from . import SourceModel, quiet_logger
from .state import eval_copy, torch_restore, torch_snapshot, torch_stream, torch_written


def _torch():
    return require("torch", "torch", "PyTorch")


def is_torch_object(obj) -> bool:
    """True for an nn.Module, an ExportedProgram, an nn.Module subclass, or a tuple whose first
    item is one of these (a factory's (module, example_inputs)). Needs torch imported."""
    import torch

    if isinstance(obj, tuple) and obj:
        obj = obj[0]
    if inspect.isclass(obj):
        return issubclass(obj, torch.nn.Module)
    return isinstance(obj, (torch.nn.Module, torch.export.ExportedProgram))


def from_object(obj, origin: str, input_shapes: dict, weights: str | None = None) -> SourceModel:
    """A factory's result: an nn.Module, (module, example_inputs), or a class with --weights.

    Args:
        obj: an nn.Module (put in eval mode), an ExportedProgram, (module, example_inputs) with
            a tensor or a tuple of tensors (their shapes are the input shapes), or an nn.Module
            class constructed with no arguments.
        origin: what the user passed, for messages.
        input_shapes: {forward() parameter name or position: dims}; required for each input when
            no example inputs are given (float32 zeros of those shapes then stand in), refused
            together with example inputs.
        weights: a state_dict file, loaded with torch.load(weights_only=True) and
            load_state_dict(strict=True) (a "state_dict"/"model_state_dict"/"model" entry of a
            checkpoint and a DataParallel "module." prefix are accepted).

    Returns a SourceModel (framework "torch", or "torch-exported"): inputs named by forward()'s
    parameters, outputs output_0 ... (or a returned dict's keys), `extra` with example_inputs,
    input_names, output_names, runnable, stateful (buffers forward() writes). Raises BadInput
    (exit 2) for anything else, weights that are not a plain matching state_dict, a missing
    shape, or a model that fails on its example inputs.
    """
    import torch

    example = None
    if isinstance(obj, tuple):
        if len(obj) != 2:
            raise BadInput(
                f"{origin} returned a tuple of {len(obj)} items.",
                "Return the module alone, or a pair (module, example_inputs).",
            )
        obj, example = obj
        example = _as_tensor_tuple(example, origin)
    if inspect.isclass(obj):
        obj = _instantiate(obj, origin)
    if weights is not None:
        _load_weights(obj, weights, origin)
    if isinstance(obj, torch.export.ExportedProgram):
        return _from_exported(obj, origin, input_shapes)
    if not isinstance(obj, torch.nn.Module):
        raise BadInput(f"{origin} gave a {type(obj).__name__}, not a torch.nn.Module.", "Return the module itself.")
    module = eval_copy(obj)  # the user's module keeps its training flag
    names = _forward_names(module, example)
    if example is None:
        example = _examples_from_shapes(names, input_shapes, origin)
    elif input_shapes:
        raise BadInput(
            f"{origin} returns example inputs, and --input-shape was given too.",
            "Drop --input-shape (the example inputs fix the shapes) or return the module alone.",
        )
    return _source("torch", origin, module, module, example, names)


def load_file(path: Path, input_shapes: dict) -> SourceModel:
    """A PyTorch file → SourceModel: `.pt2` (torch.export.save; framework "torch-exported",
    shapes from the program, dynamic ones from INPUT_SHAPES) or a TorchScript `.pt`/`.pth`
    (framework "torchscript"; every input's shape from INPUT_SHAPES, {name or position: dims}).

    Raises BadInput (exit 2) for a `.ptl` (an artifact, not a source), a state_dict or pickled
    checkpoint (weights without code: use a factory with --weights), an unreadable file, a
    missing shape, or a model that fails on its inputs; MissingDependency (exit 3) without
    PyTorch."""
    torch = _torch()
    suffix = path.suffix.lower()
    if suffix == ".ptl":
        raise BadInput(
            f"{path} is a PyTorch Mobile lite-interpreter file (an artifact, not a source model).",
            "Convert the original module (file.py:factory, .pt2) instead; run this file with edgekit's runtimes.",
        )
    if suffix == ".pt2":
        if not zipfile.is_zipfile(path):  # torch.export.load would log its own traceback first
            raise BadInput(f"{path} is not a whole .pt2 archive (a .pt2 is a zip; this one is "
                           f"{'truncated or corrupt' if path.read_bytes()[:2] == b'PK' else 'something else'}).",
                           "A .pt2 must be written by torch.export.save(torch.export.export(model, args), path); "
                           "if it was copied or downloaded, check that the copy is complete.")
        try:
            with quiet_logger("torch.export"):
                ep = torch.export.load(str(path))
        except Exception as exc:
            raise BadInput(
                f"torch.export.load cannot read {path}: {_first_line(exc)}",
                "A .pt2 must be written by torch.export.save(torch.export.export(model, args), path).",
            ) from exc
        return _from_exported(ep, str(path), input_shapes)
    # .pt / .pth: TorchScript, or (commonly) a bare state_dict / checkpoint.
    if _is_torchscript_zip(path):
        try:
            script = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise BadInput(f"torch.jit.load cannot read {path}: {_first_line(exc)}",
                           "Save it again with torch.jit.save(torch.jit.script(model), path).") from exc
        script.eval()
        names = _forward_names(script, None)
        example = _examples_from_shapes(names, input_shapes, str(path))
        return _source("torchscript", str(path), script, script, example, names)
    raise BadInput(
        f"{path} is not a TorchScript file; it looks like a state_dict or a pickled checkpoint, which holds "
        "weights but not the model's code.",
        f"Pass the class that builds the model and these weights: edgekit convert model.py:MyNet --weights {path} "
        "(and --input-shape NAME=DIMS).",
    )


# --- helpers -------------------------------------------------------------------------------


def _source(framework, origin, native, runnable, example, names) -> SourceModel:
    import torch

    specs = [TensorSpec(n, tuple(t.shape), _np_dtype(t.dtype), layout="NCHW" if t.dim() == 4 else None)
             for n, t in zip(names, example)]
    snap = torch_snapshot(runnable)  # forward() may write buffers (state): find them, then put them back
    with torch.no_grad():
        try:
            y = runnable(*example)
        except Exception as exc:
            torch_restore(snap)
            shapes = ", ".join(s.describe() for s in specs)
            raise BadInput(
                f"The model from {origin} fails on inputs {shapes}: {type(exc).__name__}: {_first_line(exc)}",
                "Check --input-shape (PyTorch image models take NCHW: 1x3x224x224).",
            ) from exc
    stateful = torch_written(snap, native)
    out_names, outs = _flatten_outputs(y, origin)
    out_specs = [TensorSpec(n, tuple(t.shape), _np_dtype(t.dtype)) for n, t in zip(out_names, outs)]

    def reference(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Groups of the example's batch size (padded at the end): as the artifact runs them."""
        from . import data_failure, in_groups, join_chunks, keep_rows

        chunks = []
        with torch.no_grad():
            for i, group, keep in in_groups(feeds, b):
                args = [torch.from_numpy(np.ascontiguousarray(group[s.name])).to(t.dtype)
                        for s, t in zip(specs, example)]
                try:
                    y = runnable(*args)
                except Exception as exc:  # IndexError: token ids beyond the embedding
                    raise data_failure(exc, origin, {s.name: group[s.name] for s in specs}, i) from exc
                _, ys = _flatten_outputs(y, origin)
                chunks.append([keep_rows(v.detach().float().numpy() if v.is_floating_point() else v.numpy(), b, keep)
                               for v in ys])
        return {name: join_chunks([c[j] for c in chunks]) for j, name in enumerate(out_names)}

    b = specs[0].shape[0] if specs and specs[0].shape else 1
    reference.batch = b
    if stateful:  # checked as a stream from the model's state, which is put back after
        reference = torch_stream(reference, runnable, stateful)

    return SourceModel(
        framework=framework,
        origin=origin,
        inputs=specs,
        native=native,
        reference=reference,
        outputs=out_specs,
        extra={"example_inputs": tuple(example), "input_names": list(names), "output_names": out_names,
               "runnable": runnable, "stateful": stateful},
    )


def _from_exported(ep, origin: str, input_shapes: dict) -> SourceModel:
    import torch

    user_inputs = [s for s in ep.graph_signature.input_specs if s.kind == torch.export.graph_signature.InputKind.USER_INPUT]
    placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    names, raw, dtypes = [], [], []
    for s in user_inputs:
        node = placeholders.get(s.arg.name)
        val = node.meta.get("val") if node is not None else None
        if val is None or not isinstance(val, torch.Tensor):
            raise BadInput(f"The ExportedProgram {origin} has a non-tensor input {s.arg.name!r}.",
                           "Export a model whose inputs are tensors.")
        shape = tuple(int(d) if isinstance(d, int) or str(d).isdigit() else None for d in val.shape)
        names.append(s.arg.name)
        raw.append(TensorSpec(s.arg.name, shape, _np_dtype(val.dtype)))
        dtypes.append(val.dtype)
    specs = resolve_shapes(raw, input_shapes, what="ExportedProgram")
    example = tuple(torch.zeros(sp.shape, dtype=dt) for sp, dt in zip(specs, dtypes))
    if getattr(ep, "example_inputs", None):
        args, _ = ep.example_inputs
        if len(args) == len(specs) and all(tuple(a.shape) == sp.shape for a, sp in zip(args, specs)):
            example = tuple(args)
    return _source("torch-exported", origin, ep, ep.module(), example, names)


def _instantiate(cls, origin: str):
    try:
        required = [p.name for p in inspect.signature(cls).parameters.values()
                    if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError):
        required = []
    if required:
        raise BadInput(
            f"{origin}: the class {cls.__name__} needs arguments ({', '.join(required)}); edgekit builds it with none.",
            "Give them defaults, or point at a factory function: def build(): return MyNet(...).",
        )
    try:
        return cls()
    except Exception as exc:
        raise BadInput(f"{origin}: {cls.__name__}() raised {type(exc).__name__}: {_first_line(exc)}",
                       "Fix the constructor (add --debug for the traceback).") from exc


def _load_weights(module, weights: str, origin: str) -> None:
    import torch

    from ..limits import existing_regular

    path = existing_regular(weights, "The weights file")  # a FIFO would block torch.load
    if not path.is_file():
        raise BadInput(f"The weights file {path} does not exist.", "Check the --weights path.")
    if not isinstance(module, torch.nn.Module):
        raise BadInput(f"--weights needs an nn.Module; {origin} gave a {type(module).__name__}.",
                       "Point at the nn.Module class the weights belong to.")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        blocked = [l.strip() for l in str(exc).splitlines() if "Unsupported global" in l]
        raise BadInput(
            f"{path} is a pickle that needs arbitrary Python objects to load "
            f"({blocked[0] if blocked else 'not plain tensors'}); edgekit loads weights with "
            "torch.load(weights_only=True) and will not run code from a file.",
            "Re-save only the tensors: torch.save(model.state_dict(), 'weights.pt') (from a trusted "
            "environment that can load the checkpoint), then pass that file.",
        ) from exc
    except Exception as exc:
        raise BadInput(f"torch.load cannot read {path}: {_first_line(exc)}",
                       "Pass a file written by torch.save(model.state_dict(), path).") from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(f"{path} does not hold a state_dict (a mapping of names to tensors).",
                       "Save it with torch.save(model.state_dict(), path).")
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:5])}"
                         + (" ..." if len(unexpected) > 5 else ""))
        if wrong:
            parts.append(f"wrong shape: {', '.join(wrong[:5])}")
        raise BadInput(
            f"The weights {path} do not match {type(module).__name__} ({'; '.join(parts)}).",
            "Pass the class these weights were trained with (same layer names and sizes).",
        )
    module.load_state_dict(state, strict=True)


def _forward_names(module, example) -> list[str]:
    schema = getattr(getattr(module, "forward", None), "schema", None)  # a TorchScript method
    if schema is not None:
        names = [a.name for a in schema.arguments[1:]]
        if names and (example is None or len(names) == len(example)):
            return names
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                and p.default is p.empty]
    n = len(example) if example is not None else (len(required) or len(names) or 1)
    names = (required if len(required) >= n else names)[:n]
    return names + [f"args_{i}" for i in range(len(names), n)]


def _examples_from_shapes(names, input_shapes: dict, origin: str):
    """Float32 zeros of the --input-shape dims of each forward() input NAMES (by name or
    position). Raises BadInput (exit 2) for a shape naming no input of NAMES or numbered past
    them (first, listing the inputs forward() takes), then for an input without a shape."""
    import torch

    for key in input_shapes:  # a mistyped name is the error to show, not the input it left unset
        if isinstance(key, str) and key not in names:
            raise BadInput(f"--input-shape names {key!r}, but forward() of {origin} takes: {', '.join(names)}.",
                           "Use the parameter names of forward(): " +
                           " ".join(f"--input-shape {n}=DIMS" for n in names) + ".")
        if isinstance(key, int) and key >= len(names):
            raise BadInput(f"{len(input_shapes)} --input-shape values given, forward() takes {len(names)} input(s).",
                           f"Its inputs are: {', '.join(names)}.")
    example = []
    for i, name in enumerate(names):
        dims = input_shapes.get(name, input_shapes.get(i))
        if dims is None:
            scripted = Path(origin).suffix.lower() in (".pt", ".pth")
            raise ShapeNeeded(
                f"edgekit needs the shape of input {name!r} of {origin} "
                f"({'a TorchScript file' if scripted else 'a PyTorch module'} does not declare it).",
                f"Give it with --input-shape {name}=1x3x224x224 (NCHW for images; one per input: "
                f"{', '.join(names)})" + ("." if scripted else ", or return (module, example_inputs) from the factory."),
            )
        example.append(torch.zeros(dims, dtype=torch.float32))
    return tuple(example)


def _as_tensor_tuple(example, origin: str):
    import torch

    if isinstance(example, torch.Tensor):
        return (example,)
    if isinstance(example, (list, tuple)) and example and all(isinstance(t, torch.Tensor) for t in example):
        return tuple(example)
    raise BadInput(f"{origin} returned example inputs that are not tensors ({type(example).__name__}).",
                   "Return (module, (tensor, ...)) with one tensor per forward() input.")


def _flatten_outputs(y, origin: str):
    import torch

    if isinstance(y, torch.Tensor):
        return ["output_0"], [y]
    if isinstance(y, dict):
        items = list(y.items())
        if all(isinstance(v, torch.Tensor) for _, v in items):
            return [str(k) for k, _ in items], [v for _, v in items]
    if isinstance(y, (list, tuple)):
        flat = []
        for v in y:
            if isinstance(v, torch.Tensor):
                flat.append(v)
            elif isinstance(v, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in v):
                flat.extend(v)  # e.g. an RNN's (output, (h, c))
            else:
                flat = None
                break
        if flat:
            return [f"output_{i}" for i in range(len(flat))], flat
    raise BadInput(f"The model from {origin} returns a {type(y).__name__}; edgekit needs tensors.",
                   "Return a tensor, a tuple of tensors or a dict of tensors from forward().")


def _np_dtype(dt) -> str:
    import torch

    return {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "float32", torch.float64: "float64",
            torch.int8: "int8", torch.uint8: "uint8", torch.int16: "int16", torch.int32: "int32",
            torch.int64: "int64", torch.bool: "bool"}.get(dt, "float32")


def _is_torchscript_zip(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith(("code/", "constants.pkl")) for n in z.namelist())


def _first_line(exc) -> str:
    lines = [l.strip() for l in str(exc).strip().splitlines() if l.strip()]
    return lines[0][:400] if lines else type(exc).__name__

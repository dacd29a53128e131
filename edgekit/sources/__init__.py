"""Load what the user hands us (a file, a folder, a Python factory) into a SourceModel."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..artifacts import file_sha256, path_size
from ..errors import BadInput, DataRejected, MissingDependency, install_line
from ..specs import TensorSpec


@dataclass
class SourceModel:
    """A loaded source model: what the converters convert and parity compares against.

    Attributes:
        framework: "keras", "tf-savedmodel", "torch", "torch-exported", "torchscript" or "onnx".
        origin: what the user passed (a path, or file.py:function / package.module:function).
        inputs: input specs with static shapes, batch axis first (--input-shape resolved).
        native: the framework object (keras.Model, loaded SavedModel, nn.Module,
            ExportedProgram, ScriptModule).
        reference: the reference function: {input name: array (N, ...)} → {output name:
            array (N, ...)}, computed by the framework in batches.
        outputs: output specs, when the loader knows them (torch loaders).
        sha256: of the model file or folder (a factory: of its .py file or module file).
        size_bytes: of the model file or folder (a factory: of --weights, else None).
        extra: loader-specific: `export_saved_model` and `output_names` (Keras/TF);
            `example_inputs`, `input_names`, `output_names`, `runnable` (torch).
    """

    framework: str  # "keras", "tf-savedmodel", "torch", "torch-exported", "torchscript"
    origin: str  # what the user passed
    inputs: list[TensorSpec]  # static shapes, batch axis first
    native: Any  # keras.Model, tf SavedModel object, nn.Module, ExportedProgram ...
    reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]  # batch in, batch out
    outputs: list[TensorSpec] = field(default_factory=list)
    sha256: str | None = None
    size_bytes: int | None = None
    extra: dict = field(default_factory=dict)  # loader-specific: example inputs, layouts ...

    def provenance(self) -> dict:
        """The `source` entry of the manifest: origin, framework, sha256, size_bytes (and
        weights_sha256 when --weights was given)."""
        return {
            "origin": self.origin,
            "framework": self.framework,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            **({"weights_sha256": self.extra["weights_sha256"]} if "weights_sha256" in self.extra else {}),
        }


@contextlib.contextmanager
def quiet_logger(name: str):
    """Silence logger NAME below ERROR while the block runs (it logs a traceback at WARNING before
    raising the error edgekit explains), unless edgekit runs with --debug."""
    import logging

    from ..commands.output import STATE  # only click at import

    logger = logging.getLogger(name)
    old = logger.level
    if not STATE.debug:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def data_failure(exc: BaseException, origin: str, feeds: dict, start: int) -> DataRejected:
    """The error for a reference model that fails on the user's data (not on its example input).

    A model with integer inputs failing this way is almost always fed token ids outside its
    embedding's range (torch: IndexError; TensorFlow: InvalidArgumentError "indices ... not in
    [0, N)"): the message shows the range of the ids given. Args: EXC the framework's error,
    ORIGIN the model, FEEDS the batch {input name: array} it failed on, START the batch's first
    sample index. Returns DataRejected (a BadInput, exit 2) for the caller to raise."""
    lines = [re.sub(r"\x1b\[[0-9;]*m|\{\{function_node [^}]*\}\}\s*", "", ln).strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln]
    # Keras wraps the reason ("indices[0,3] = 40 is not in [0, 17)") after "Exception encountered when calling X"
    reason = next((ln for ln in lines if not ln.startswith(("Exception encountered", "Arguments received", "•"))),
                  lines[0] if lines else "")
    said = f"{type(exc).__name__}: {reason[:300]}".rstrip(": ")
    ints = {k: v for k, v in feeds.items() if np.asarray(v).dtype.kind in "iu" and np.asarray(v).size}
    if ints:
        ranges = ", ".join(f"{k} in [{int(np.min(v))}, {int(np.max(v))}]" for k, v in ints.items())
        return DataRejected(f"The model from {origin} fails on the data from sample {start} ({said}); the integer "
                        f"inputs given are {ranges}.",
                        "Token ids and class indices must lie within the model's range (0 to its vocabulary "
                        "size - 1): fix the --data/--calibration values.")
    return DataRejected(f"The model from {origin} fails on the data from sample {start} ({said}).",
                    "Check that --data/--calibration holds what the model was trained on (same "
                    "preprocessing, shapes and value ranges).")


def in_groups(feeds: dict, batch: int):
    """Split FEEDS ({input name: array (N, ...)}) into groups of BATCH samples, as a model that
    declares batch BATCH takes them: yields (start, {name: array (BATCH, ...)}, keep), the last
    group padded with repeated samples when N is not a multiple of BATCH; KEEP is how many of the
    group's rows are real (the caller drops the others from outputs that have the batch axis)."""
    n = len(next(iter(feeds.values())))
    batch = max(1, int(batch or 1))
    for start in range(0, n, batch):
        keep = min(batch, n - start)
        idx = np.arange(start, start + keep)
        if keep < batch:
            idx = np.concatenate([idx, np.resize(np.arange(n), batch - keep)])
        yield start, {k: np.asarray(v)[idx] for k, v in feeds.items()}, keep


def join_chunks(parts: list) -> np.ndarray:
    """One output's per-group values joined on the batch axis; a 0-d output (a model returning
    `x.sum()`) has none: one group's value as it is, several stacked (one per group)."""
    if np.ndim(parts[0]):
        return np.concatenate(parts)
    return np.asarray(parts[0]) if len(parts) == 1 else np.stack(parts)


def keep_rows(v, batch: int, keep: int):
    """V without the padded rows that `in_groups` added (only when V has the group's batch axis)."""
    v = np.asarray(v)
    return v[:keep] if keep < batch and v.ndim and v.shape[0] == batch else v


KERAS_SUFFIXES = {".keras", ".h5", ".hdf5"}
TORCH_SUFFIXES = {".pt2", ".pt", ".pth", ".ptl"}


def load_model(spec: str, input_shapes: dict | None = None, weights: str | None = None,
               signature: str | None = None) -> SourceModel:
    """MODEL as `edgekit convert` takes it → SourceModel with resolved static input shapes.

    Args:
        spec: a Keras file (.keras, .h5, .hdf5), a SavedModel folder, a PyTorch file (.pt2 from
            torch.export.save, a TorchScript .pt/.pth), an ONNX .onnx file, or a factory `file.py:function` /
            `package.module:function` called with no arguments (returning a keras.Model, an
            nn.Module, (module, example_inputs), or with WEIGHTS an nn.Module class).
        input_shapes: {input name or position: dims} (`specs.parse_input_shapes` of
            --input-shape) fixing dynamic dimensions; a dynamic batch alone defaults to 1.
        weights: a state_dict file for a torch factory (loaded with weights_only=True).
        signature: the SavedModel signature to load (default serving_default; --signature);
            refused (BadInput) for any other kind of model.

    Raises BadInput (exit 2) for a missing, empty, non-regular (FIFO, device) or unknown file, a factory that cannot be
    imported or called, a model that cannot be loaded or run on its inputs, or a dimension
    left unknown; MissingDependency (exit 3) when TensorFlow / PyTorch is not installed.
    """
    input_shapes = input_shapes or {}
    path = Path(spec)
    factory = _split_factory(spec)
    if signature is not None and not (factory is None and path.is_dir()):
        raise BadInput(f"--signature {signature} applies to a TensorFlow SavedModel folder; {spec} is not one.",
                       "Drop --signature (other models have one signature).")
    if factory is None:
        if not path.exists():
            raise BadInput(
                f"The model {spec} does not exist.",
                "Pass a model file (.keras, .h5, .pt2, .pt), a SavedModel folder, or a factory "
                "as file.py:function or package.module:function.",
            )
        from ..limits import readable_input

        readable_input(path, "The model")  # a FIFO or a device: refused, not read forever
        if path.is_dir():
            from . import keras as keras_src

            return _stamp(keras_src.load_saved_model(path, input_shapes, signature), path)
        if path.stat().st_size == 0:
            raise BadInput(f"The model file {path} is empty.", "Save the model again; the file holds nothing.")
        suffix = path.suffix.lower()
        if suffix in KERAS_SUFFIXES:
            from . import keras as keras_src

            return _stamp(keras_src.load_file(path, input_shapes), path)
        if suffix in TORCH_SUFFIXES:
            from . import torch as torch_src

            return _stamp(torch_src.load_file(path, input_shapes), path)
        if suffix == ".onnx":
            from . import onnx as onnx_src

            return _stamp(onnx_src.load_file(path, input_shapes), path)
        raise BadInput(
            f"edgekit does not know the model format of {path} (by its extension {suffix or '(none)'}).",
            "Supported: Keras .keras/.h5/.hdf5, a SavedModel folder, PyTorch .pt2 (torch.export.save), "
            "TorchScript .pt, ONNX .onnx, or a Python factory file.py:function.",
        )
    obj, origin_file = _call_factory(*factory, weights=weights)
    model = _stamp(from_object(obj, spec, input_shapes, weights=weights), origin_file)
    # The factory's file is code, not the model: its size says nothing about the weights.
    model.size_bytes = path_size(weights) if weights else None
    if weights:
        model.extra["weights_sha256"] = file_sha256(weights)
    return model


def from_object(obj, origin: str, input_shapes: dict, weights: str | None = None) -> SourceModel:
    """A model object the user built in Python (factory result or API call) → SourceModel.

    OBJ: a keras.Model; an nn.Module, ExportedProgram, (module, example_inputs) or an nn.Module
    class with WEIGHTS (see `sources.torch.from_object`). ORIGIN names it in messages;
    INPUT_SHAPES as in `load_model`. Raises BadInput (exit 2) for anything else."""
    module_name = type(obj if not isinstance(obj, tuple) else obj[0]).__module__ or ""
    if module_name.startswith(("keras", "tf_keras", "tensorflow")) or _is_keras_model(obj):
        from . import keras as keras_src

        return keras_src.from_keras_model(obj, origin, input_shapes)
    if "torch" in sys.modules:
        from . import torch as torch_src

        if torch_src.is_torch_object(obj):
            return _one_batch_axis(torch_src.from_object(obj, origin, input_shapes, weights=weights))
    raise BadInput(
        f"{origin} returned a {type(obj).__name__}, which is not a model edgekit can convert.",
        "Return a keras.Model, a torch.nn.Module, or a tuple (module, example_inputs).",
    )


def _is_keras_model(obj) -> bool:
    """Any keras.Model, subclasses defined in the user's own module included (by type, not by
    module name); False when Keras was never imported (then it cannot be one)."""
    keras = sys.modules.get("keras")
    model_cls = getattr(keras, "Model", None) if keras is not None else None
    return isinstance(model_cls, type) and isinstance(obj, model_cls)


def _one_batch_axis(model: SourceModel) -> SourceModel:
    """MODEL, once its inputs agree on their first dimension: edgekit stacks samples on the first
    axis of every input (the batch), so inputs whose first dimensions differ (a sequence-first
    nn.MultiheadAttention: query 6x1x16, key 5x1x16) cannot be fed one sample at a time.
    Raises BadInput (exit 2) naming them, rather than failing later on the data."""
    firsts = {s.name: s.shape[0] for s in model.inputs if len(s.shape) and isinstance(s.shape[0], int)}
    if len(set(firsts.values())) > 1:
        said = ", ".join(s.describe() for s in model.inputs if s.name in firsts)
        raise BadInput(
            f"The inputs of {model.origin} differ in their first dimension ({said}); edgekit takes the first "
            "axis of every input as the batch, on which samples are stacked.",
            "Give every input the batch first with one size (nn.MultiheadAttention(..., batch_first=True), "
            "or a wrapper whose forward transposes), or fix it with --input-shape.")
    return model


def _stamp(model: SourceModel, path) -> SourceModel:
    _one_batch_axis(model)
    if path is not None and Path(path).exists():
        model.sha256 = file_sha256(path)
        model.size_bytes = path_size(path)
    return model


def _split_factory(spec: str):
    """'models/net.py:build' or 'pkg.mod:build' → (target, function); a plain path → None."""
    if ":" not in spec or Path(spec).exists():
        return None
    target, _, func = spec.rpartition(":")
    if not func.isidentifier() or not target:
        return None
    return target, func


# A framework a factory may import → (what it is, the edgekit extra that installs it).
FRAMEWORK_EXTRAS = {"torch": ("PyTorch", "torch"), "executorch": ("ExecuTorch", "torch"),
                    "torchao": ("torchao", "torch"), "tensorflow": ("TensorFlow", "tf"), "keras": ("Keras", "tf"),
                    "onnx": ("ONNX", "onnx"), "onnxruntime": ("ONNX Runtime", "onnx")}


def _missing_framework(exc: BaseException, origin: str) -> MissingDependency | None:
    """MissingDependency (exit 3, with the `pip install 'edgekit[EXTRA]'` line) when EXC, or what
    caused it, is a framework edgekit installs as an extra failing to import while ORIGIN (the
    factory file or module) ran; None for any other error (the factory's own bug)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
        top = (name or "").split(".")[0]
        if top in FRAMEWORK_EXTRAS:
            what, extra = FRAMEWORK_EXTRAS[top]
            return MissingDependency(f"{origin} needs {what}, which is not installed here ({exc}).",
                                     f"Install it with: {install_line(extra)}")
        exc = exc.__cause__ or exc.__context__
    return None


def _call_factory(target: str, func: str, weights=None):
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise BadInput(f"The factory file {path} does not exist.", "Check the path before ':'.")
        mod_name = f"_edgekit_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent.resolve()))  # so the file can import its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise _missing_framework(exc, str(path)) or BadInput(
                f"Importing {path} failed: {type(exc).__name__}: {exc}",
                "Fix the error in that file (run it with python to see the full traceback, or add --debug).",
            ) from exc
        finally:
            sys.path.remove(str(path.parent.resolve()))
        origin_file = path
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise _missing_framework(exc, target) or BadInput(
                f"Cannot import the module {target!r}: {exc}.",
                "Pass file.py:function for a file, or install the package that provides the module.",
            ) from exc
        origin_file = Path(module.__file__) if getattr(module, "__file__", None) else None
    fn = getattr(module, func, None)
    if fn is None:
        raise BadInput(f"{target} has no attribute {func!r}.", f"Define {func}() in {target}, or name another.")
    if not callable(fn):
        raise BadInput(f"{target}:{func} is not callable.", "Point at a function (or class) that builds the model.")
    if inspect.isclass(fn) and weights is not None:
        return fn, origin_file  # a class plus --weights: the torch loader instantiates and loads it
    try:
        required = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
    except (TypeError, ValueError):
        required = []
    if required:
        raise BadInput(
            f"{target}:{func} needs arguments ({', '.join(required)}); edgekit calls it with none.",
            f"Give them defaults, or add a wrapper: def build(): return {func}(...).",
        )
    try:
        return fn(), origin_file
    except Exception as exc:
        raise _missing_framework(exc, f"{target}:{func}()") or BadInput(
            f"{target}:{func}() raised {type(exc).__name__}: {exc}",
            "Fix the factory (add --debug for the traceback).",
        ) from exc

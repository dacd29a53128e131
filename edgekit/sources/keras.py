"""Keras (.keras, legacy .h5) models and TensorFlow SavedModels."""

from __future__ import annotations

import contextlib
import io
import re
import zipfile
from pathlib import Path

import numpy as np

from ..errors import BadInput, require
from ..specs import TensorSpec, resolve_shapes
from . import SourceModel
from .state import keras_stateful_layers, keras_stream

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
BATCH = 64  # kept for callers; references run in groups of the model's declared batch


def _tf():
    return require("tensorflow", "tf", "TensorFlow")


def load_file(path: Path, input_shapes: dict) -> SourceModel:
    """A Keras `.keras` archive or legacy `.h5`/`.hdf5` model → SourceModel (framework "keras").

    Loaded with `keras.models.load_model(compile=False, safe_mode=True)`: a Lambda layer with
    pickled code is refused. INPUT_SHAPES: {name or position: dims} for dynamic dimensions.
    Raises BadInput (exit 2) for a file that is not a zip / HDF5, weights-only or otherwise not
    loadable, or a dimension left unknown; MissingDependency (exit 3) without TensorFlow."""
    _tf()
    import keras

    suffix = path.suffix.lower()
    head = path.read_bytes()[:8]
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise BadInput(
            f"{path} is not a Keras archive (a .keras file is a zip; this one is "
            f"{'truncated or corrupt' if head[:2] == b'PK' else 'something else'}).",
            "Save it again with model.save('model.keras').",
        )
    if suffix in (".h5", ".hdf5") and head != HDF5_MAGIC:
        raise BadInput(
            f"{path} is not an HDF5 file (its first bytes are {head[:8]!r}).",
            "A legacy Keras model is saved with model.save('model.h5'); check that this is that file.",
        )
    try:
        # safe_mode refuses Lambda layers with pickled code: a model file must not run code.
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # keras raises ValueError, OSError, TypeError ... for bad files
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "Save the whole model (model.save), not only its weights, with a Keras 3 / TF 2 version."
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            hint = ("The model contains code (a Lambda layer). edgekit loads with safe_mode=True; rebuild "
                    "it from a factory instead: edgekit convert model.py:build.")
        if "No model config" in str(exc) or "model_config" in str(exc):
            hint = "This .h5 holds weights only; save the full model with model.save('model.h5')."
        custom = re.search(r"[Cc]ould not locate (?:class|function) '?([^'\s.]+)", str(exc))
        if custom:  # keras buries this under "could not be deserialized properly"
            text = f"could not locate class {custom[1]!r} (a custom layer or function that is not registered)"
            hint = (f"A .keras file holds {custom[1]}'s config, not its code. Convert from a factory that imports "
                    f"the class and loads the file: edgekit convert build.py:load, with def load(): "
                    f"from mylayers import {custom[1]}; return keras.models.load_model('{path.name}') "
                    "(the class decorated with @keras.saving.register_keras_serializable()).")
        raise BadInput(f"Keras cannot load {path}: {text}", hint) from exc
    return from_keras_model(model, str(path), input_shapes)


def from_keras_model(model, origin: str, input_shapes: dict) -> SourceModel:
    """A built keras.Model → SourceModel (framework "keras").

    Inputs keep the Keras input names; outputs are named by the layers that produce them
    (`extra["output_names"]`). `reference` runs the model with training=False in groups of the
    batch the model declares (a dynamic batch: the resolved one, 1 by default), padding the
    last; `extra["export_saved_model"](folder)` writes a fixed-shape SavedModel
    for the TFLite converter; `extra["stateful"]` names the layers built with stateful=True (the
    reference then runs each call as one stream and puts their states back). Raises BadInput (exit 2) for an object that is not a keras.Model,
    a model without defined inputs (subclassed, never built), or a dimension left unknown."""
    import keras

    if not isinstance(model, keras.Model):
        raise BadInput(f"{origin} gave a {type(model).__name__}, not a keras.Model.", "Return the model itself.")
    try:
        model_inputs = list(model.inputs)
    except (AttributeError, ValueError):
        model_inputs = []
    if not model_inputs:  # a subclassed model: call it on inputs of known shapes (the user's object untouched)
        model = _functional_twin(model, origin, input_shapes)
        model_inputs = list(model.inputs)
    in_struct = getattr(model, "_inputs_struct", None)
    in_keys = list(in_struct) if isinstance(in_struct, dict) else None  # dict inputs: fed by key
    raw = [_numeric_spec(in_keys[i] if in_keys else _input_name(t, i), tuple(t.shape), str(t.dtype),
                         f"the Keras model from {origin}")
           for i, t in enumerate(in_struct.values() if in_keys else model_inputs)]
    specs = resolve_shapes(raw, input_shapes, what="Keras model")
    out_struct = getattr(model, "_outputs_struct", None)
    out_keys = list(out_struct) if isinstance(out_struct, dict) else None  # dict outputs: named by key
    out_names = out_keys or _output_names(model)
    multi = len(specs) > 1

    def call(xs):
        """The model on one group: XS in spec order → its outputs in out_names order."""
        y = model({s.name: x for s, x in zip(specs, xs)} if in_keys else xs if multi else xs[0], training=False)
        if isinstance(y, dict):
            return [y[k] for k in out_names] if out_keys else list(y.values())
        return list(y) if isinstance(y, (list, tuple)) else [y]

    batch = int(specs[0].shape[0]) if specs and specs[0].shape else 1

    def reference(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Groups of the batch the model declares (a dynamic batch: the resolved one), as the
        artifact is fed (see edgekit.parity.check)."""
        from . import data_failure, in_groups, join_chunks, keep_rows

        chunks = []
        for i, group, keep in in_groups(feeds, batch):
            xs = [group[s.name] for s in specs]
            try:
                ys = call(xs)
            except Exception as exc:  # InvalidArgumentError: token ids beyond the embedding
                raise data_failure(exc, origin, {s.name: x for s, x in zip(specs, xs)}, i) from exc
            chunks.append([keep_rows(np.asarray(v), batch, keep) for v in ys])
        return {name: join_chunks([c[j] for c in chunks]) for j, name in enumerate(out_names)}

    reference.batch = batch
    stateful = keras_stateful_layers(model)
    if stateful:  # checked as a stream from the layers' states, which are put back after
        reference = keras_stream(reference, stateful)

    def export_saved_model(folder: str) -> str:
        """A SavedModel with one fixed-shape 'serving_default' signature whose outputs carry the
        layer names. Keras' ExportArchive tracks Keras 3 variables properly (a bare tf.Module
        does not, and TFLite then calibrates against unresolved READ_VARIABLE ops)."""
        import keras

        tf = _tf()
        archive = keras.export.ExportArchive()
        archive.track(model)

        def serve(*args):
            return dict(zip(out_names, call(list(args))))

        sig = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs]
        try:
            archive.add_endpoint("serving_default", serve, input_signature=sig)
            with contextlib.redirect_stdout(io.StringIO()):  # keep stdout clean for --json
                archive.write_out(folder, verbose=False)
        except ValueError as exc:  # TensorFlow graphs take ASCII scope names only; Keras' eager call does not care
            bad = re.search(r"'([^']*)' is not a valid (?:scope|node) name", str(exc))
            if not bad and "non-unique argument names" in str(exc):  # an input name TF sanitises to '' twice
                bad = next((re.match(r"(.*)", s.name) for s in specs
                            if not re.fullmatch(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*", s.name)), None)
            if not bad:
                raise
            raise BadInput(f"The Keras model from {origin} has a layer or input named {bad.group(1)!r}, which TensorFlow "
                           "cannot trace into a graph (names must match [A-Za-z0-9_.\\/>-]).",
                           "Rename it with ASCII letters, digits, '_', '.', '-' (keras.layers.Dense(3, name='output')) "
                           "and convert again.") from None
        return folder

    return SourceModel(
        framework="keras",
        origin=origin,
        inputs=specs,
        native=model,
        reference=reference,
        extra={"export_saved_model": export_saved_model, "output_names": out_names,
               "stateful": [layer.name for layer in stateful]},
    )


def _functional_twin(model, origin: str, input_shapes: dict):
    """A subclassed keras.Model (no symbolic inputs) → a functional model calling it on
    keras.Input of the shapes given by --input-shape (by call() parameter name or position), else
    of the shape it was built with; the user's model and weights are shared, not changed.
    BadInput (exit 2) when neither says the shapes."""
    import inspect

    import keras

    try:
        params = [p.name for p in inspect.signature(model.call).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    except (TypeError, ValueError):
        params = []
    params = params or ["input_0"]
    built = list((getattr(model, "_build_shapes_dict", None) or {}).values())
    shapes = []
    for i, name in enumerate(params):
        dims = input_shapes.get(name, input_shapes.get(i)) if input_shapes else None
        if dims is None and i < len(built) and isinstance(built[i], (tuple, list)):
            dims = tuple(built[i])
        if dims is None:
            raise BadInput(
                f"The Keras model from {origin} is a subclassed model that was never built, so its input "
                f"{name!r} has no known shape.",
                f"Give it with --input-shape {name}=1x... , or call the model once on an input (or build it) "
                "in the factory before returning it.",
            )
        shapes.append(tuple(dims))
    inputs = [keras.Input(batch_shape=shape, name=name) for name, shape in zip(params, shapes)]
    out = model(*inputs)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], out, name=f"{model.name}_functional")


def _numeric_spec(name: str, shape: tuple, dtype: str, origin: str) -> TensorSpec:
    """The spec of a Keras input, or BadInput (exit 2) for a dtype numpy has no number for (a
    `string` input feeding StringLookup/TextVectorization): TFLite builtin ops take numbers."""
    try:
        return TensorSpec(name, shape, np.dtype(dtype).name)
    except TypeError:
        raise BadInput(f"Input {name!r} of {origin} takes {dtype} tensors; an on-device model "
                       "takes numbers (TFLite's builtin ops have no string type).",
                       "Do the string processing (StringLookup, TextVectorization) in the app, outside the model, "
                       "and convert the model from the integer ids it produces.") from None


def _input_name(t, i: int) -> str:
    name = getattr(t, "name", None) or f"input_{i}"
    return name.split(":")[0]


def _output_names(model) -> list[str]:
    """The names of the layers that produce the outputs (what a user sees in model.summary())."""
    outs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    names = []
    for i, o in enumerate(outs):
        history = getattr(o, "_keras_history", None)
        name = getattr(getattr(history, "operation", None), "name", None) or f"output_{i}"
        names.append(name if name not in names else f"{name}_{i}")
    return names


def load_saved_model(path: Path, input_shapes: dict, signature: str | None = None) -> SourceModel:
    """A TensorFlow SavedModel folder → SourceModel (framework "tf-savedmodel") through one
    signature, SIGNATURE (default `serving_default`): inputs and outputs in the signature's sorted
    key order, `reference` calling it in groups of the declared (or resolved) batch;
    `export_saved_model` writes a SavedModel holding that signature alone, so the converted file
    holds what parity checks. `extra["signature"]` is the one chosen, `extra["other_signatures"]`
    the ones left out that compute something else (the converter names them in a note; another
    name of the same function, as Keras' export writes `serve` beside `serving_default`, is not).

    Raises BadInput (exit 2) for a folder without saved_model.pb(txt), one TensorFlow cannot
    load, one without the signature asked for (the message lists those it has), or a dimension
    left unknown; MissingDependency (exit 3) without TensorFlow."""
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise BadInput(
            f"The folder {path} is not a TensorFlow SavedModel (no saved_model.pb inside).",
            "Pass the SavedModel folder itself, a .keras/.h5 file, or a factory file.py:function.",
        )
    tf = _tf()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise BadInput(f"TensorFlow cannot load the SavedModel {path}: {str(exc).splitlines()[0]}",
                       "Export it again with tf.saved_model.save or model.export.") from exc
    sigs = getattr(loaded, "signatures", {})
    chosen = signature or "serving_default"
    if chosen not in sigs:
        raise BadInput(
            f"The SavedModel {path} has no {chosen!r} signature (it has: {', '.join(sigs) or 'none'}).",
            (f"Choose one with --signature {next(iter(sigs))}, or export" if sigs else "Export") +
            " it with a serving signature (keras: model.export(path); tf: tf.saved_model.save(obj, path, "
            "signatures=...)).",
        )
    sig = sigs[chosen]
    others = sorted(k for k in sigs if k != chosen)
    # Keras' model.export writes `serve` and `serving_default`, two names of one function: the
    # note names only signatures that compute something else
    distinct = [k for k in others if not _same_function(sigs[k], sig)]
    in_struct = sig.structured_input_signature[1]
    raw = [_numeric_spec(name, tuple(ts.shape.as_list()), "string" if ts.dtype == tf.string else
                         np.dtype(ts.dtype.as_numpy_dtype).name, f"the SavedModel {path}")
           for name, ts in sorted(in_struct.items())]
    specs = resolve_shapes(raw, input_shapes, what="SavedModel")
    out_names = sorted(sig.structured_outputs)

    batch = int(specs[0].shape[0]) if specs and specs[0].shape else 1

    def reference(feeds):
        from . import in_groups, keep_rows

        chunks = []
        for _, group, keep in in_groups(feeds, batch):
            y = sig(**{s.name: tf.constant(group[s.name]) for s in specs})
            chunks.append({k: keep_rows(np.asarray(v), batch, keep) for k, v in y.items()})
        return {k: np.concatenate([c[k] for c in chunks]) for k in out_names}

    reference.batch = batch

    static = all(d is not None for _, ts in in_struct.items() for d in ts.shape.as_list())

    def export_saved_model(folder: str) -> str:
        if static and not others:
            return str(path)  # already what TFLite wants: one fixed-shape signature

        @tf.function
        def serve(**kw):
            return sig(**kw)

        fixed = serve.get_concrete_function(**{s.name: tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs})
        tf.saved_model.save(loaded, folder, signatures={chosen: fixed})  # the chosen signature alone
        return folder

    return SourceModel(
        framework="tf-savedmodel",
        origin=str(path),
        inputs=specs,
        native=loaded,
        reference=reference,
        extra={"export_saved_model": export_saved_model, "output_names": out_names, "signature": chosen,
               "other_signatures": distinct},
    )


def _same_function(a, b) -> bool:
    """Whether signatures A and B of one SavedModel take and give the same tensors by calling the
    same traced functions (two names of one endpoint)."""
    def called(sig):
        return sorted(n.attr["f"].func.name for n in sig.graph.as_graph_def().node if "f" in n.attr)

    try:
        calls = called(a)
        return bool(calls) and calls == called(b) and a.structured_input_signature == b.structured_input_signature \
            and a.structured_outputs == b.structured_outputs
    except Exception:  # a signature TensorFlow cannot describe: count it as distinct (named in the note)
        return False

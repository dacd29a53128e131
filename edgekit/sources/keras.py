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

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
BATCH = 64  # reference outputs are computed in batches of this many samples


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
    (`extra["output_names"]`). `reference` runs the model with training=False in batches of
    BATCH (64) samples; `extra["export_saved_model"](folder)` writes a fixed-shape SavedModel
    for the TFLite converter. Raises BadInput (exit 2) for an object that is not a keras.Model,
    a model without defined inputs (subclassed, never built), or a dimension left unknown."""
    import keras

    if not isinstance(model, keras.Model):
        raise BadInput(f"{origin} gave a {type(model).__name__}, not a keras.Model.", "Return the model itself.")
    try:
        model_inputs = list(model.inputs)
    except (AttributeError, ValueError):
        model_inputs = []
    if not model_inputs:
        raise BadInput(
            f"The Keras model from {origin} has no defined inputs (a subclassed model that was never built).",
            "Build it on an input first, e.g. wrap it: keras.Sequential([keras.Input((8, 8, 1)), model]).",
        )
    raw = [
        TensorSpec(_input_name(t, i), tuple(t.shape), np.dtype(str(t.dtype)).name)
        for i, t in enumerate(model_inputs)
    ]
    specs = resolve_shapes(raw, input_shapes, what="Keras model")
    out_names = _output_names(model)
    multi = len(specs) > 1

    def reference(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(next(iter(feeds.values())))
        chunks = []
        for i in range(0, n, BATCH):
            xs = [feeds[s.name][i : i + BATCH] for s in specs]
            try:
                y = model(xs if multi else xs[0], training=False)
            except Exception as exc:  # InvalidArgumentError: token ids beyond the embedding
                from . import data_failure

                raise data_failure(exc, origin, {s.name: x for s, x in zip(specs, xs)}, i) from exc
            ys = y if isinstance(y, (list, tuple)) else list(y.values()) if isinstance(y, dict) else [y]
            chunks.append([np.asarray(v) for v in ys])
        return {name: np.concatenate([c[j] for c in chunks]) for j, name in enumerate(out_names)}

    def export_saved_model(folder: str) -> str:
        """A SavedModel with one fixed-shape 'serving_default' signature whose outputs carry the
        layer names. Keras' ExportArchive tracks Keras 3 variables properly (a bare tf.Module
        does not, and TFLite then calibrates against unresolved READ_VARIABLE ops)."""
        import keras

        tf = _tf()
        archive = keras.export.ExportArchive()
        archive.track(model)

        def serve(*args):
            y = model(list(args) if multi else args[0], training=False)
            ys = y if isinstance(y, (list, tuple)) else list(y.values()) if isinstance(y, dict) else [y]
            return dict(zip(out_names, ys))

        sig = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs]
        archive.add_endpoint("serving_default", serve, input_signature=sig)
        with contextlib.redirect_stdout(io.StringIO()):  # keep stdout clean for --json
            archive.write_out(folder, verbose=False)
        return folder

    return SourceModel(
        framework="keras",
        origin=origin,
        inputs=specs,
        native=model,
        reference=reference,
        extra={"export_saved_model": export_saved_model, "output_names": out_names},
    )


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


def load_saved_model(path: Path, input_shapes: dict) -> SourceModel:
    """A TensorFlow SavedModel folder → SourceModel (framework "tf-savedmodel") through its
    `serving_default` signature: inputs and outputs in the signature's sorted key order,
    `reference` calling it in batches of BATCH (64) samples.

    Raises BadInput (exit 2) for a folder without saved_model.pb(txt), one TensorFlow cannot
    load, one without a `serving_default` signature, or a dimension left unknown;
    MissingDependency (exit 3) without TensorFlow."""
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
    if "serving_default" not in sigs:
        raise BadInput(
            f"The SavedModel {path} has no 'serving_default' signature (it has: {', '.join(sigs) or 'none'}).",
            "Export it with a serving signature (keras: model.export(path); tf: tf.saved_model.save(obj, path, signatures=...)).",
        )
    sig = sigs["serving_default"]
    in_struct = sig.structured_input_signature[1]
    raw = [TensorSpec(name, tuple(ts.shape.as_list()), np.dtype(ts.dtype.as_numpy_dtype).name)
           for name, ts in sorted(in_struct.items())]
    specs = resolve_shapes(raw, input_shapes, what="SavedModel")
    out_names = sorted(sig.structured_outputs)

    def reference(feeds):
        n = len(next(iter(feeds.values())))
        chunks = []
        for i in range(0, n, BATCH):
            y = sig(**{s.name: tf.constant(feeds[s.name][i : i + BATCH]) for s in specs})
            chunks.append({k: np.asarray(v) for k, v in y.items()})
        return {k: np.concatenate([c[k] for c in chunks]) for k in out_names}

    static = all(d is not None for _, ts in in_struct.items() for d in ts.shape.as_list())

    def export_saved_model(folder: str) -> str:
        if static:
            return str(path)  # already what TFLite wants

        @tf.function
        def serve(**kw):
            return sig(**kw)

        fixed = serve.get_concrete_function(**{s.name: tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs})
        tf.saved_model.save(loaded, folder, signatures={"serving_default": fixed})
        return folder

    return SourceModel(
        framework="tf-savedmodel",
        origin=str(path),
        inputs=specs,
        native=loaded,
        reference=reference,
        extra={"export_saved_model": export_saved_model, "output_names": out_names},
    )

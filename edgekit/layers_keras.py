"""Per-layer parity, a .tflite candidate against the Keras model it was converted from.

The TFLite converter names tensors by the Keras layer scopes (`model_1/conv2_1/...`, TF adding
`_1` to make scopes unique); a layer's value in the candidate is the last tensor, in execution
order, whose name carries its scope. The reference's intermediate values come from one Keras
model that outputs every compared layer, run in chunks that fit MEMORY_BUDGET.
"""

from __future__ import annotations

import re

import numpy as np

from .layers_layout import Matched
from .layers_tflite import NOT_IN_TFLITE, TFLiteProbe, not_observable

MEMORY_BUDGET = 256 << 20  # bytes of reference intermediates held at once (edgekit's choice)
MAX_CHUNK = 64  # samples per call of the tap model at most


def keras_attribution(model, probe: TFLiteProbe):
    """Which candidate tensor holds each Keras layer's output.

    Args:
        model: the keras.Model reference.
        probe: the candidate's TFLiteProbe.

    Returns:
        (layers, best): the model's layers without InputLayers, and {layer name: (tensor index,
        op type)}: the last tensor in execution order whose name carries the layer's scope (a
        graph output by its signature name; a fused op holds the later layer's output).
    """
    import keras

    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    order = {l.name: i for i, l in enumerate(layers)}
    model_scope = model.name

    def layer_of(component: str):
        stripped = re.sub(r"_\d+$", "", component)  # TF uniquifies scopes: conv1 → conv1_1
        if stripped in order and stripped != model_scope:
            return stripped
        if component in order:
            return component
        return None

    owner = {}
    for op_type, t in probe.ops:
        found = set()
        if t in probe.output_names and probe.output_names[t] in order:
            found.add(probe.output_names[t])
        else:
            for part in probe.name(t).split(";"):
                for comp in part.split("/")[:-1]:
                    name = layer_of(comp)
                    if name:
                        found.add(name)
                        break
        if found:
            owner[t] = (max(found, key=order.get), op_type)  # fused ops hold the later layer's output
    best = {}
    for op_type, t in probe.ops:  # execution order: the last tensor a layer owns is its output
        if t in owner:
            best[owner[t][0]] = (t, owner[t][1])
    return layers, best


def _comparable(model, probe: TFLiteProbe):
    """([(layer, its symbolic output, tensor, op type)] in execution order, not_observable)."""
    layers, best = keras_attribution(model, probe)
    missing, chosen = [], []
    for layer in layers:
        typ = type(layer).__name__
        if layer.name not in best:
            missing.append(not_observable(layer.name, typ, NOT_IN_TFLITE))
            continue
        try:
            out = layer.output
        except (AttributeError, ValueError):
            out = None
        if out is None or isinstance(out, (list, tuple, dict)):
            missing.append(not_observable(layer.name, typ, "the layer has several outputs"))
            continue
        t, op_type = best[layer.name]
        if int(np.prod([d for d in out.shape[1:]])) != int(np.prod(probe.shape(t)[1:])):
            missing.append(not_observable(layer.name, typ, f"shape {tuple(out.shape[1:])} ≠ tensor {probe.shape(t)[1:]}"))
            continue
        chosen.append((layer, out, t, op_type))
    return probe.in_execution_order(chosen, lambda c: c[2]), missing


def vs_keras(source, probe: TFLiteProbe, samples, in_map: dict, progress=None):
    """Compare each Keras layer's output with the candidate tensor that holds it.

    Args:
        source: the reference SourceModel (framework "keras"; `native` is the keras.Model).
        probe: the candidate's TFLiteProbe.
        samples, in_map, progress: as for edgekit.layers_tflite.vs_tflite.

    Returns:
        (rows, not_observable), as vs_tflite.
    """
    import keras

    model = source.native
    chosen, missing = _comparable(model, probe)
    if not chosen:
        return [], missing
    tap = keras.Model(model.inputs, [c[1] for c in chosen])
    n = len(samples)
    per_sample = sum(int(np.prod(probe.shape(c[2]))) * 4 for c in chosen)  # float32 bytes
    chunk = max(1, min(MAX_CHUNK, MEMORY_BUDGET // max(per_sample, 1)))
    acc = [Matched() for _ in chosen]
    for start in range(0, n, chunk):
        xs = [samples.inputs[s.name][start : start + chunk] for s in source.inputs]
        ys = tap(xs, training=False)  # tap's inputs are model.inputs, a list
        ys = [np.asarray(y) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]
        for j in range(len(xs[0])):
            i = start + j
            probe.run_sample(samples, i, in_map)
            for k, (_, _, t, _) in enumerate(chosen):
                acc[k].add(ys[k][j : j + 1], probe.get(t))
            if progress:
                progress(i + 1, n)
    rows = [probe.row(t, layer.name, f"{type(layer).__name__} → {op_type}", acc[k])
            for k, (layer, _, t, op_type) in enumerate(chosen)]
    return rows, missing

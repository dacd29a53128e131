"""State a model keeps between calls (a streaming cache, a running mean, a stateful RNN): how
edgekit finds it, and how it checks such a model without changing it.

A stateful model is checked on a stream: the samples in order, from the state the user handed
over, on both sides (edgekit.parity.check calls a reference marked `stateful` once with the
whole stream). The reference saves the model's state before the stream and puts it back after,
so the user's model is left as it was; converters restore it after anything that runs it.
"""

from __future__ import annotations

import functools


# -- PyTorch: buffers mutated by forward() ---------------------------------------------------

def torch_snapshot(module) -> list[tuple]:
    """Every buffer of MODULE (an nn.Module or ScriptModule) as (name, owner module, attribute,
    tensor object, its values cloned, its in-place version counter)."""
    out = []
    for name, owner in module.named_modules():
        for attr, buf in list(owner.named_buffers(recurse=False)):  # ScriptModules too
            if buf is not None:
                out.append((f"{name}.{attr}" if name else attr, owner, attr, buf, buf.detach().clone(), buf._version))
    return out


def torch_mutated(snapshot: list[tuple]) -> list[str]:
    """Names of the buffers of a SNAPSHOT that were written since (in place, replaced, or with
    other values): the model's state."""
    import torch

    changed = []
    for name, owner, attr, buf, saved, version in snapshot:
        now = getattr(owner, attr, None)
        if now is not buf or buf._version != version or not torch.equal(torch.as_tensor(now).detach(), saved):
            changed.append(name)
    return changed


def torch_written(snapshot: list[tuple], native) -> list[str]:
    """The buffers a probe run wrote (`torch_mutated`) plus those an ExportedProgram NATIVE
    declares mutated, sorted; the SNAPSHOT is then put back (`torch_restore`)."""
    declared = getattr(getattr(native, "graph_signature", None), "buffers_to_mutate", None) or {}
    names = sorted(set(torch_mutated(snapshot)) | set(declared.values()))
    torch_restore(snapshot)
    return names


def torch_restore(snapshot: list[tuple], also=None) -> None:
    """Put every buffer of SNAPSHOT back: the same tensor objects, with their saved values; with
    ALSO (a traced or copied module holding buffers of the same names), load those values there."""
    import torch

    with torch.no_grad():
        for _, owner, attr, buf, saved, _ in snapshot:
            if getattr(owner, attr, None) is not buf:
                setattr(owner, attr, buf)  # a buffer forward() replaced: the original object back
            buf.copy_(saved)
        if also is not None:
            values = {name: saved for name, _, _, _, saved, _ in snapshot}
            for name, buf in also.named_buffers():
                if name in values and tuple(buf.shape) == tuple(values[name].shape):
                    buf.copy_(values[name])


def torch_stream(reference, runnable, buffers: list[str]):
    """REFERENCE (feeds → outputs, run group by group in order) as a stream from the module's
    current state, which is put back afterwards: the user's RUNNABLE is unchanged by a check.
    The result carries `stateful` (BUFFERS, the mutated buffer names) and REFERENCE's `batch`."""

    @functools.wraps(reference)
    def stream(feeds):
        snap = torch_snapshot(runnable)
        try:
            return reference(feeds)
        finally:
            torch_restore(snap)

    stream.batch = getattr(reference, "batch", None)
    stream.stateful = list(buffers)
    return stream


def eval_copy(module):
    """MODULE in eval mode without changing the user's object: itself when it already is, else a
    deep copy put in eval mode (module.eval() would flip the user's training flag)."""
    import copy

    return copy.deepcopy(module).eval() if getattr(module, "training", False) else module


# -- Keras: stateful layers ------------------------------------------------------------------

def keras_stateful_layers(model) -> list:
    """The layers of MODEL (nested ones included) built with stateful=True (RNNs keeping their
    state across calls)."""
    flatten = getattr(model, "_flatten_layers", None)
    layers = list(flatten(include_self=False)) if flatten else list(getattr(model, "layers", []))
    return [layer for layer in layers if getattr(layer, "stateful", False)]


def keras_stream(reference, layers: list):
    """REFERENCE as a stream from the stateful LAYERS' current states, put back afterwards (the
    user's model is unchanged by a check). Marks it `stateful` (the layer names)."""
    import numpy as np

    def variables():
        return [v for layer in layers for v in (getattr(layer, "states", None) or []) if hasattr(v, "assign")]

    @functools.wraps(reference)
    def stream(feeds):
        saved = [(v, np.array(v.numpy() if hasattr(v, "numpy") else v)) for v in variables()]
        try:
            return reference(feeds)
        finally:
            for v, value in saved:
                v.assign(value)

    stream.batch = getattr(reference, "batch", None)
    stream.stateful = [layer.name for layer in layers]
    return stream


def dropped_state_reason(origin: str, state: list[str], path: str) -> str:
    """The one-line reason a target PATH that cannot keep state is refused, naming the STATE."""
    shown = ", ".join(state[:5]) + (" …" if len(state) > 5 else "")
    return (f"The model from {origin} keeps state between calls ({shown}), and {path} drops it: the file "
            "would compute every call from the initial state.")

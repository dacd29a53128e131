"""The samples the agent feeds a model: from an .npz edgekit wrote, or random by spec."""

from __future__ import annotations

import numpy as np

from ..errors import BadInput
from ..runtimes import quantize


def concrete_shape(spec) -> tuple[int, ...]:
    """SPEC's shape with dynamic dimensions (None or negative) set to 1."""
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in spec.shape)


def random_feeds(specs, seed: int = 0) -> dict:
    """One feed of random values per input spec: standard normal for floats, integers in
    [-128, 127] (clipped to the type) for quantized integer inputs (a scale: int8 I/O), 0/1 for
    other integer inputs (token ids, indices: negative or large ones make an embedding's gather
    fail, and any vocabulary has ids 0 and 1) and for bool."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for s in specs:
        dt, shape = np.dtype(s.dtype), concrete_shape(s)
        if dt.kind == "f":
            feeds[s.name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind in "iu" and not getattr(s, "scale", None):
            feeds[s.name] = rng.integers(0, 2, size=shape).astype(dt)
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            feeds[s.name] = rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dt)
        else:
            feeds[s.name] = rng.integers(0, 2, size=shape).astype(dt)
    return feeds


def load_feeds(path: str, specs) -> list[dict]:
    """Samples from an .npz written by edgekit: real values shaped (N, *input shape[1:]) keyed by
    input name (else matched by position); an optional `labels` array is ignored.

    Returns a list of N feeds, each {input name: array of the spec's shape, quantized to the
    spec's type}. Raises BadInput (exit 2) when the arrays do not match the model's inputs."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    names = [k for k in arrays if k != "labels"]
    if len(names) != len(specs):
        raise BadInput(f"The inputs file has {len(names)} array(s) ({', '.join(names)}); the model takes "
                       f"{len(specs)} ({', '.join(s.name for s in specs)}).")
    by_spec = {s.name: arrays[s.name] if s.name in arrays else arrays[names[i]] for i, s in enumerate(specs)}
    n = min(len(a) for a in by_spec.values())
    feeds = []
    for j in range(n):
        feed = {}
        for s in specs:
            x = by_spec[s.name][j : j + 1]
            shape = concrete_shape(s)
            if x.size != int(np.prod(shape)):
                raise BadInput(f"Input {s.name!r}: a sample has {x.size} values, the model takes shape {list(shape)}.")
            feed[s.name] = quantize(x.reshape(shape), s)
        feeds.append(feed)
    if not feeds:
        raise BadInput("The inputs file holds no samples.")
    return feeds

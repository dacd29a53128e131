"""How `edgekit.parity.check` feeds both sides as the model declares its batch: the batch to
use, and the per-group bookkeeping of outputs (padding dropped, groups joined)."""

from __future__ import annotations

import numpy as np

from .errors import BadInput
from .specs import TensorSpec


def batch_as_declared(reference, cand_inputs: list[TensorSpec]) -> tuple[int, dict]:
    """The batch both sides are fed: the artifact's declared batch (first axis of its inputs),
    else the reference's `batch` attribute, else 1. Returns (batch, {batch, from, note}).
    BadInput (exit 2) when both declare a fixed batch and they differ."""
    declared = {int(s.shape[0]) for s in cand_inputs if len(s.shape) and isinstance(s.shape[0], (int, np.integer))
                and s.shape[0] is not None and int(s.shape[0]) > 0}
    ref_batch = getattr(reference, "batch", None)
    if len(declared) > 1:
        raise BadInput(f"The artifact's inputs declare different batches ({sorted(declared)}).",
                       "Convert the model with one batch size for every input (--input-shape).")
    cand_batch = declared.pop() if declared else None
    if cand_batch and ref_batch and cand_batch != ref_batch:
        raise BadInput(
            f"The reference model declares batch {ref_batch}, the artifact batch {cand_batch}: they cannot be fed "
            "the same groups of samples.",
            f"Convert (or load) both with the same batch (--input-shape NAME={cand_batch}x...).",
        )
    batch = int(cand_batch or ref_batch or 1)
    where = "as the artifact declares" if cand_batch else "as the reference declares" if ref_batch else "default"
    note = (f"Batch as declared: both sides fed groups of {batch} sample(s) ({where})" if batch > 1 else
            f"Batch as declared: both sides fed one sample at a time ({where})")
    return batch, {"batch": batch, "from": where, "note": note + "."}


def per_sample_shape(v: np.ndarray, batch: int, keep: int) -> tuple:
    """An output's shape without its group axis (the whole shape when it has none)."""
    return v.shape[1:] if v.ndim and v.shape[0] in (batch, keep) else v.shape


def trim_padding(v: np.ndarray, batch: int, keep: int) -> np.ndarray:
    """Drop the padded samples of a group from an output that has the group's batch axis."""
    v = np.asarray(v)
    return v[:keep] if keep < batch and v.ndim and v.shape[0] == batch else v


def join_groups(parts: list) -> np.ndarray:
    """Concatenate per-group outputs along the first axis (0-d outputs are stacked)."""
    return np.stack(parts) if parts[0].ndim == 0 else np.concatenate(parts)

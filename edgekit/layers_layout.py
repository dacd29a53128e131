"""Reading a candidate tensor in the reference's layout, for per-layer parity (edgekit.layers).

litert-torch keeps 4-D intermediates NHWC while PyTorch is NCHW; Keras and TFLite are both NHWC.
A candidate tensor is read by its shape; when several readings fit (C == H == W: the same shape
either way), by its values, once per layer over all samples (Matched). Each row's `layout` says
which reading was used.
"""

from __future__ import annotations

import numpy as np

from . import metrics

LAYOUTS = {"NHWC→NCHW": (0, 3, 1, 2), "NCHW→NHWC": (0, 2, 3, 1)}  # candidate axes → reference axes
# Another reading replaces "as is" only when its summed squared error is below this share of
# the "as is" error: edgekit's own tie-breaker (introduced with the C == H == W fix), not a
# published threshold.
CLEARLY_BETTER = 0.5


def readings(c_shape: tuple, r_shape: tuple) -> dict:
    """The ways a candidate tensor can be read as the reference's, "as is" first when it fits.

    Args:
        c_shape: the candidate tensor's shape, batch axis first (a tuple of ints).
        r_shape: the reference value's shape, batch axis first.

    Returns:
        {reading name: axis order applied to the candidate, or None for "as is" (reshaped when
        only the rank differs)}. Never empty: {"as is": None} when nothing else fits.
    """
    fits = {"as is": None} if tuple(c_shape[1:]) == tuple(r_shape[1:]) else {}
    if len(c_shape) == 4 == len(r_shape):
        fits.update({k: p for k, p in LAYOUTS.items() if tuple(c_shape[i] for i in p[1:]) == tuple(r_shape[1:])})
    return fits or {"as is": None}


class Matched:
    """Accumulated metrics (edgekit.metrics.Running) of one candidate tensor against its reference
    value, for every reading that fits the shapes.

    With several readings (C == H == W), the values choose once over all samples: the one with
    the least error, "as is" unless another is clearly better (CLEARLY_BETTER), so a Keras NHWC
    tensor stays as it is.
    """

    def __init__(self):
        """An empty accumulator; the readings are fixed by the first `add`."""
        self.fits = self.acc = None

    def add(self, ref, cand) -> None:
        """Add one sample.

        Args:
            ref: the reference value (np.ndarray, float, batch axis first).
            cand: the candidate's dequantized value (np.ndarray, float32) of the same size.

        Raises:
            ValueError: when the sizes differ (callers pair tensors of equal size only).
        """
        if self.fits is None:
            self.fits = readings(cand.shape, ref.shape)
            self.acc = {k: metrics.Running() for k in self.fits}
        for k, perm in self.fits.items():
            self.acc[k].add(ref, (cand if perm is None else np.transpose(cand, perm)).reshape(ref.shape))

    def result(self) -> dict:
        """metrics.Running's result (psnr_db, cosine, max_abs, ...) of the chosen reading, plus
        `layout`: the reading's name, with " (by values)" when the values chose among several."""
        if self.fits is None:
            return {**metrics.Running().result(), "layout": "as is"}
        best = next(iter(self.acc))
        for k, run in self.acc.items():
            if run.sum_sq_err < CLEARLY_BETTER * self.acc[best].sum_sq_err:
                best = k
        return {**self.acc[best].result(), "layout": best + (" (by values)" if len(self.acc) > 1 else "")}

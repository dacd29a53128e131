"""Keep litert-torch's constant cache honest during a conversion.

litert-torch 0.10 lowers each constant of the exported program once and caches the MLIR
attribute under a fingerprint of (shape, stride, storage address, offset) of `x.contiguous()`
(`litert_torch.backend.inline_consts._ConstantFingerprint`). For a constant that is a
non-contiguous view (a transposed weight: onnx2torch keeps a MatMul's weight as the ONNX
file's (in, out) tensor, and `torch.matmul` then reads its transpose), `.contiguous()` is a
temporary copy that is freed as soon as the lowering returns; the next such copy of the same
shape is often allocated at the same address, gets the same fingerprint, and the cache hands back
the *first* weight. The .tflite then silently computes with another layer's weights.

Measured on PP-OCRv4's recognizer (rapidocr's ch_PP-OCRv4_rec_infer.onnx → .tflite): the second
attention block's MLP read the first block's (240, 120) and (120, 240) weights in one build, its
qkv weight in another; fp32 parity 46-53 dB in most builds, 152 dB in the others, depending on
the allocator. Keeping every fingerprinted tensor alive for the conversion makes addresses unique
(152 dB in every build), the assumption the cache is written on.
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def constants_kept_alive():
    """Within the block, every tensor litert-torch fingerprints for its constant cache is kept
    referenced, so no two distinct constants share a storage address. Released on exit. A no-op
    when the installed litert-torch has no such cache (a later version may fingerprint otherwise)."""
    try:
        from litert_torch.backend import inline_consts
        cls = inline_consts._ConstantFingerprint
        original = cls.__dict__["from_tensor"]
    except (ImportError, AttributeError, KeyError):
        yield
        return
    alive: list = []

    def from_tensor(klass, tensor):
        alive.append(tensor)
        return original.__func__(klass, tensor)

    cls.from_tensor = classmethod(from_tensor)
    try:
        yield
    finally:
        cls.from_tensor = original
        alive.clear()

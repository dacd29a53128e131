"""Factories that the tests hand to `edgekit convert file.py:function`, as users do."""

import keras
import tensorflow as tf


class _Op(keras.layers.Layer):
    """A layer calling one raw TensorFlow op (no TFLite builtin for it)."""

    def __init__(self, op, **kw):
        super().__init__(**kw)
        self.op = op

    def call(self, x):
        if self.op == "det":
            return tf.linalg.det(x)  # MatrixDeterminant: Flex can run it, builtins cannot
        return tf.linalg.svd(x, compute_uv=False)  # Svd: neither builtins nor Flex


def with_determinant():
    inp = keras.Input((4, 4), name="x")
    return keras.Model(inp, _Op("det", name="det")(inp))


def with_svd():
    inp = keras.Input((4, 4), name="x")
    return keras.Model(inp, _Op("svd", name="svd")(inp))


def variable_length():
    """A sequence model whose time axis is dynamic, like an audio tagger."""
    inp = keras.Input((None, 8), name="frames")
    x = keras.layers.Dense(16, activation="relu", name="proj")(inp)
    return keras.Model(inp, keras.layers.GlobalAveragePooling1D(name="pool")(x))


def tiny_dense():
    """Weights far under 1024 elements: TFLite's dynamic-range quantization skips them all."""
    inp = keras.Input((8,), name="x")
    return keras.Model(inp, keras.layers.Dense(4, name="out")(inp))


def two_inputs():
    a = keras.Input((6,), name="left")
    b = keras.Input((3,), name="right")
    x = keras.layers.Concatenate(name="cat")([a, b])
    return keras.Model([a, b], [keras.layers.Dense(5, name="score")(x), keras.layers.Dense(2, name="box")(x)])


def needs_argument(size):
    return tiny_dense()


def raises():
    raise RuntimeError("weights server unreachable")


def not_a_model():
    return {"layers": 3}

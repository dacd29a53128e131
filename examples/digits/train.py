"""Rebuild the bundled example: a small CNN trained on scikit-learn's digits (8×8 grey images).

    python examples/digits/train.py      # writes models/digits.keras, data/calib.npz, data/test.npz
"""

from pathlib import Path

import keras
import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).parent


def main():
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(0).permutation(len(x))
    x, y = x[idx], y[idx]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(64, activation="relu", name="fc1"),
            # Logits, no softmax: the arg-max is the same, and XNNPACK has no int8 softmax, so a
            # softmax layer would leave the int8 model's last op on the reference kernels.
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x[:1400], y[:1400], epochs=8, batch_size=32, verbose=0)
    print("held-out accuracy", model.evaluate(x[1400:], y[1400:], verbose=0)[1])
    inference = keras.models.clone_model(model)  # without optimizer state: a smaller file
    inference.set_weights(model.get_weights())
    inference.save(HERE / "models" / "digits.keras")
    np.savez_compressed(HERE / "data" / "calib.npz", image=x[:200])
    np.savez_compressed(HERE / "data" / "test.npz", image=x[1400:], labels=y[1400:])


if __name__ == "__main__":
    main()

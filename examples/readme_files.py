"""Write the files the README's commands use into one folder, from the bundled digits example
and a tempo model that ships inside the `tempocnn` package. Nothing is downloaded.

    python examples/readme_files.py DIR      # then: cd DIR and run the README's commands as written

Keras side (the bundled example, examples/digits/):
    model.keras, calib.npz, test.npz      the digits CNN, 200 calibration and 397 held-out digits (NHWC)
    edgekit.yaml, models/, data/          the bundled pipeline file with the files it names
    saved_model_dir/                      the digits CNN as a TensorFlow SavedModel
    models.py                             build_classifier(): the digits CNN built in code
    tempo.h5                              tempocnn's deeptemp_k2 (a real tempo estimator; its time
                                          axis is dynamic), if tempocnn is installed
                                          (pip install --no-deps tempocnn)
PyTorch side (the same digits, NCHW; the digits CNN's trained weights moved to PyTorch):
    nets.py                               Net (the class) and build() (a factory loading net.pt)
    net.pt                                Net's trained state_dict
    model.pt2, scripted.pt                Net as a torch.export ExportedProgram and as TorchScript
    calib_nchw.npz, test_nchw.npz, imgs/  the digits NCHW, and 64 calibration digits as PNG files

Parts whose framework (keras, torch) is not installed are skipped with a note.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices
try:  # and the lines no variable silences (absl, oneDNN), as edgekit keeps them off its own output
    from edgekit.native_log import quiet_framework_logs

    quiet_framework_logs()
except ImportError:  # the script needs only keras/torch/numpy/pillow
    pass
DIGITS = Path(__file__).resolve().parent / "digits"

MODELS_PY = '''"""A factory edgekit calls: `edgekit convert models.py:build_classifier`."""

from pathlib import Path

import keras


def build_classifier():
    """The digits CNN built in code (as a model with custom code would be), trained weights loaded."""
    model = keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(64, activation="relu", name="fc1"),
        keras.layers.Dense(10, name="logits"),
    ])
    model.load_weights(Path(__file__).with_name("model.keras"))
    return model
'''

NETS_PY = '''"""PyTorch models for `edgekit convert nets.py:Net --weights net.pt` and `nets.py:build`."""

from pathlib import Path

import torch
from torch import nn


class Net(nn.Module):
    """A small CNN for 8x8 grey digits, NCHW: image (1, 1, 8, 8) → 10 logits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, image):
        x = torch.relu(self.conv1(image))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def build():
    """Net with the trained weights in net.pt beside this file, and an example input."""
    net = Net()
    net.load_state_dict(torch.load(Path(__file__).with_name("net.pt"), weights_only=True))
    return net.eval(), (torch.zeros(1, 1, 8, 8),)
'''


def digits():
    """The bundled calibration and held-out digits, NHWC in [0, 1]: (calib, test, labels)."""
    with np.load(DIGITS / "data" / "calib.npz") as c, np.load(DIGITS / "data" / "test.npz") as t:
        return c["image"], t["image"], t["labels"]


def write_keras(out: Path) -> None:
    """model.keras, calib.npz, test.npz, the bundled pipeline, saved_model_dir/, models.py, tempo.h5."""
    shutil.copyfile(DIGITS / "models" / "digits.keras", out / "model.keras")
    for name in ("calib.npz", "test.npz"):
        shutil.copyfile(DIGITS / "data" / name, out / name)
    shutil.copyfile(DIGITS / "edgekit.yaml", out / "edgekit.yaml")
    shutil.copytree(DIGITS / "models", out / "models", dirs_exist_ok=True)
    shutil.copytree(DIGITS / "data", out / "data", dirs_exist_ok=True)
    (out / "models.py").write_text(MODELS_PY)
    tempocnn = importlib.util.find_spec("tempocnn")  # found, not imported (it imports TensorFlow)
    if tempocnn:
        shutil.copyfile(Path(tempocnn.origin).parent / "models" / "deeptemp_k2.h5", out / "tempo.h5")
    else:
        print("tempocnn is not installed (pip install --no-deps tempocnn): tempo.h5 not written", file=sys.stderr)
    if not importlib.util.find_spec("keras"):
        print("keras is not installed: saved_model_dir/ not written", file=sys.stderr)
        return
    import keras

    model = keras.models.load_model(out / "model.keras")
    model.export(str(out / "saved_model_dir"), verbose=False)


def _torch_weights(model) -> dict:
    """The digits CNN's trained Keras weights (MODEL) as a state_dict for nets.Net (same layers;
    kernels HWIO → OIHW, and fc1's rows reordered from NHWC flattening to NCHW flattening)."""
    import torch

    layers = {l.name: [w.numpy() for w in l.weights] for l in model.layers}
    conv = lambda k: k.transpose(3, 2, 0, 1)  # noqa: E731 (kh, kw, in, out) → (out, in, kh, kw)
    fc1 = layers["fc1"][0].reshape(4, 4, 32, 64).transpose(3, 2, 0, 1).reshape(64, 512)
    state = {"conv1.weight": conv(layers["conv1"][0]), "conv1.bias": layers["conv1"][1],
             "conv2.weight": conv(layers["conv2"][0]), "conv2.bias": layers["conv2"][1],
             "fc1.weight": fc1, "fc1.bias": layers["fc1"][1],
             "fc2.weight": layers["logits"][0].T, "fc2.bias": layers["logits"][1]}
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def write_torch(out: Path) -> None:
    """nets.py, net.pt (the Keras digits CNN's weights), model.pt2, scripted.pt, calib_nchw.npz, test_nchw.npz, imgs/."""
    from PIL import Image

    calib, test, labels = (a.transpose(0, 3, 1, 2) if a.ndim == 4 else a for a in digits())
    np.savez_compressed(out / "calib_nchw.npz", image=calib)
    np.savez_compressed(out / "test_nchw.npz", image=test, labels=labels)
    (out / "imgs").mkdir(exist_ok=True)
    for i, img in enumerate(calib[:64, 0]):
        Image.fromarray(np.round(img * 255).astype(np.uint8), "L").save(out / "imgs" / f"{i:03d}.png")
    (out / "nets.py").write_text(NETS_PY)
    if not (importlib.util.find_spec("torch") and importlib.util.find_spec("keras")):
        print("torch and keras are not both installed: net.pt, model.pt2 and scripted.pt not written",
              file=sys.stderr)
        return
    import keras
    import torch

    spec = importlib.util.spec_from_file_location("nets", out / "nets.py")
    nets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nets)
    reference = keras.models.load_model(out / "model.keras")
    net = nets.Net()
    net.load_state_dict(_torch_weights(reference))
    net.eval()
    with torch.no_grad():  # the twin computes what the Keras model computes
        got = net(torch.from_numpy(test[:32])).numpy()
    want = np.asarray(reference(test[:32].transpose(0, 2, 3, 1)))
    assert np.allclose(got, want, atol=1e-4), f"PyTorch twin differs from the Keras model by {abs(got - want).max()}"
    torch.save(net.state_dict(), out / "net.pt")
    example = (torch.zeros(1, 1, 8, 8),)
    torch.export.save(torch.export.export(net, example), out / "model.pt2")
    torch.jit.script(net).save(str(out / "scripted.pt"))


def main(argv: list[str]) -> int:
    """Write every file into the folder ARGV[0] (created if needed)."""
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    write_keras(out)
    write_torch(out)
    print(f"Wrote the README's example files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

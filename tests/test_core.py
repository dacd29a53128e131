"""The ground floor on its own: shapes, data loading, metrics, atomic output."""

import math

import numpy as np
import pytest

from edgekit import metrics
from edgekit.artifacts import atomic_output
from edgekit.data import load_samples
from edgekit.errors import BadInput
from edgekit.specs import TensorSpec, parse_shape, resolve_shapes


def test_parse_shape():
    assert parse_shape("image=1x224x224x3") == ("image", (1, 224, 224, 3))
    assert parse_shape("1,3,8,8") == (None, (1, 3, 8, 8))
    for bad in ("image=", "1xx2", "a=1x0"):
        with pytest.raises(BadInput):
            parse_shape(bad)


def test_resolve_shapes_batch_defaults_to_one_and_names_dynamic_inputs():
    specs = [TensorSpec("x", (None, 8, 8, 1), "float32")]
    assert resolve_shapes(specs, {})[0].shape == (1, 8, 8, 1)
    with pytest.raises(BadInput, match="--input-shape t=1xNx4"):
        resolve_shapes([TensorSpec("t", (None, None, 4), "float32")], {})


def test_metrics_meanings_and_values():
    ref = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    assert metrics.psnr_db(ref, ref) == metrics.PERFECT_DB
    noisy = ref + 0.01
    assert metrics.psnr_db(ref, noisy) == pytest.approx(20 * math.log10(0.7 / 0.01))
    assert metrics.snr_db(ref, noisy) == pytest.approx(10 * math.log10((ref**2).sum() / (0.01**2 * 6)))
    assert metrics.cosine(ref, 2 * ref) == pytest.approx(1.0)
    swapped = ref[:, [1, 0, 2]]
    assert metrics.top1_agreement(ref, swapped) == 0.0
    assert metrics.top5_agreement(ref, swapped) == 1.0
    assert metrics.accuracy(ref, [1, 0]) == 1.0
    assert set(metrics.compare(ref, noisy)) <= set(metrics.MEANINGS)


def test_load_samples_npz_with_labels_and_single_sample(tmp_path):
    spec = [TensorSpec("image", (1, 8, 8, 1), "float32")]
    np.savez(tmp_path / "d.npz", image=np.zeros((5, 8, 8, 1)), labels=np.arange(5))
    s = load_samples(tmp_path / "d.npz", spec)
    assert len(s) == 5 and s.inputs["image"].dtype == np.float32 and list(s.labels) == [0, 1, 2, 3, 4]
    np.save(tmp_path / "one.npy", np.zeros((8, 8, 1), np.float32))  # one sample without batch axis
    assert len(load_samples(tmp_path / "one.npy", spec)) == 1
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(BadInput, match="holds no arrays"):
        load_samples(tmp_path / "empty.npz", spec)


def test_image_folder_is_resized_and_scaled(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 255 * (i % 2), np.uint8)).save(tmp_path / f"{i}.png")
    s = load_samples(tmp_path, [TensorSpec("x", (1, 3, 16, 16), "float32")])  # NCHW
    assert s.inputs["x"].shape == (3, 3, 16, 16) and s.inputs["x"].max() == 1.0
    s = load_samples(tmp_path, [TensorSpec("x", (1, 16, 16, 1), "float32")])  # NHWC grey
    assert s.inputs["x"].shape == (3, 16, 16, 1)


def test_random_samples_warn():
    with pytest.warns(UserWarning, match="prove the plumbing"):
        s = load_samples(None, [TensorSpec("x", (1, 4), "float32")], n_random=7)
    assert len(s) == 7 and s.is_random


def test_atomic_output_removes_partial_file_on_error(tmp_path):
    dest = tmp_path / "m.tflite"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(dest) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_output(dest) as tmp:
        tmp.write_bytes(b"whole")
    assert dest.read_bytes() == b"whole" and len(list(tmp_path.iterdir())) == 1

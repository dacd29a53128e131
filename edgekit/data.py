"""Sample and calibration data: .npy, .npz, a folder of images, or random from the input specs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import BadInput
from .specs import TensorSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
RANDOM = "random"


@dataclass
class Samples:
    """N samples per input, each array shaped (N, *spec.shape[1:]) (batch axis first)."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    is_random: bool = False
    source: str = "random"

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values()))) if self.inputs else 0

    def sample(self, i: int) -> dict[str, np.ndarray]:
        """Sample i with a batch axis of 1, as an on-device model takes it."""
        return {k: v[i : i + 1] for k, v in self.inputs.items()}

    def take(self, n: int | None) -> "Samples":
        """The first N samples (and labels); self when N is None or not smaller than len(self)."""
        if n is None or n >= len(self):
            return self
        labels = None if self.labels is None else self.labels[:n]
        return Samples({k: v[:n] for k, v in self.inputs.items()}, labels, self.is_random, self.source)


class DataWarning(UserWarning):
    """Something about the user's data worth a line in the output (convert and validate show these)."""


class RandomInputsWarning(DataWarning):
    """No data was given, so random samples stand in: they prove the plumbing, not the accuracy."""


def random_samples(specs: list[TensorSpec], n: int = 16, seed: int = 0) -> Samples:
    """N random samples per input spec, shaped (N, *spec.shape[1:]), reproducible by SEED.

    Float inputs: standard normal; integer inputs: uniform integers in [-128, 127] clipped to
    the dtype's range; bool: uniform. Returns `Samples` with is_random=True, no labels.
    Raises BadInput (exit 2) for another dtype (complex, string ...)."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for s in specs:
        shape = (n, *s.shape[1:])
        dt = np.dtype(s.dtype)
        if dt.kind == "f":
            inputs[s.name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            lo, hi = max(info.min, -128), min(info.max, 127)
            inputs[s.name] = rng.integers(lo, hi + 1, size=shape).astype(dt)
        elif dt.kind == "b":
            inputs[s.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise BadInput(f"Cannot make random data for input {s.describe()}.", "Pass real data.")
    return Samples(inputs, None, True, "random")


def random_rejected(exc: Exception, samples: Samples) -> Exception:
    """EXC (the DataRejected of a reference model failing on SAMPLES), restated when SAMPLES are
    edgekit's random ones: no data was given, so "fix the --data values" would mislead; random
    integers in [-128, 127] are rarely valid token ids or class indices. EXC itself otherwise."""
    if not getattr(samples, "is_random", False):
        return exc
    from .errors import DataRejected

    ints = [k for k, v in samples.inputs.items() if v.dtype.kind in "iu"]
    why = (f"; {', '.join(ints)} got random integers in [-128, 127], which a model taking token ids or class "
           "indices rejects" if ints else "")
    return DataRejected(f"{exc.message.rstrip('.')}. No data was given: these were edgekit's random samples{why}.",
                        "Pass real samples with --data (and --calibration for int8): a .npz with one array per "
                        "input name, ids within the model's range.")


def load_samples(
    data,
    specs: list[TensorSpec],
    *,
    n_random: int = 16,
    what: str = "data",
    allow_nan: bool = False,
) -> Samples:
    """Load DATA for a model with these (static) input specs, checked against them.

    Args:
        data: None or "random" (N_RANDOM random samples, `random_samples`, and a
            RandomInputsWarning: they prove plumbing, not accuracy); a `.npy` file (one array,
            for a model with one input); a `.npz` file (one array per input name, or any single
            key for a model with one input; an optional `labels` array, one label per sample;
            other keys are ignored with a DataWarning); or a folder of images (one 4-D input:
            resized bilinearly to the input's H×W, converted to L or RGB by its channel count,
            NCHW or NHWC by the spec's layout/shape, float inputs scaled to [0, 1]); from Python
            also a numpy array (as a .npy holds) or a dict of arrays (as a .npz holds).
            Arrays hold N samples stacked on the first axis, or a single sample without it.
        specs: the model's input specs, with static shapes.
        n_random: how many random samples to make.
        what: what the data is for, in messages ("calibration data", "parity data" ...).
        allow_nan: accept NaN/infinite float values.

    Returns `Samples`, each input shaped (N, *spec.shape[1:]) in the spec's dtype (float64 data
    is cast to a float32 input; integer data for a float input is refused).
    Raises BadInput (exit 2) for another type, a missing or unreadable file, another format, a missing input
    array, a shape, dtype or sample-count mismatch, NaN/inf values or no samples.
    """
    if isinstance(data, np.ndarray) or isinstance(data, Mapping):  # from Python: arrays in memory
        samples = _from_array(data, specs, what, "the array given") if isinstance(data, np.ndarray) else \
            _from_arrays({str(k): v for k, v in data.items()}, specs, what, "the arrays given")
        _check(samples, specs, samples.source, what, allow_nan)
        return samples
    if data is not None and not isinstance(data, (str, Path)):
        raise BadInput(f"The {what} is a {type(data).__name__}; edgekit takes a path (.npy, .npz, a folder of "
                       "images), a numpy array, or a dict of arrays keyed by input name (plus 'labels').",
                       "Pass numpy arrays (numpy.asarray(x)) or save them with numpy.savez.")
    if data is None or str(data) == RANDOM:
        warnings.warn(
            f"No {what} given: using {n_random} random samples. Random inputs prove the plumbing, "
            f"not the accuracy; pass real samples (.npy, .npz or an image folder).",
            RandomInputsWarning,
            stacklevel=2,
        )
        return random_samples(specs, n_random)
    path = Path(data)
    if not path.exists():
        raise BadInput(f"The {what} file {path} does not exist.", "Check the path.")
    from .limits import readable_input

    readable_input(path, f"The {what}")  # a FIFO or a device would block or never end
    if path.is_dir():
        samples = _load_images(path, specs, what)
    elif path.suffix == ".npy":
        samples = _load_npy(path, specs, what)
    elif path.suffix == ".npz":
        samples = _load_npz(path, specs, what)
    else:
        raise BadInput(
            f"The {what} {path} is not a .npy file, a .npz file or a folder of images.",
            "Save arrays with numpy.save / numpy.savez (keyed by input name).",
        )
    _check(samples, specs, path, what, allow_nan)
    return samples


def _load_npy(path: Path, specs, what) -> Samples:
    if len(specs) != 1:
        names = ", ".join(s.name for s in specs)
        raise BadInput(
            f"{path} holds one array, but the model has {len(specs)} inputs ({names}).",
            "Use a .npz file with one array per input name: numpy.savez(path, name=array, ...).",
        )
    return _from_array(_np_load(path, what), specs, what, str(path))


def _from_array(arr, specs, what, source: str) -> Samples:
    """One array (N samples stacked, or one sample) for a model with one input."""
    if len(specs) != 1:
        raise BadInput(f"The {what} is one array, but the model has {len(specs)} inputs "
                       f"({', '.join(s.name for s in specs)}).", "Give one array per input name (a dict or .npz).")
    return Samples({specs[0].name: _add_batch(arr, specs[0])}, source=source)


def _np_load(path: Path, what):
    """np.load(PATH) without pickles: an array for a .npy, an NpzFile for a .npz — a file whose
    content is the other kind (a .npz renamed .npy) is BadInput like unreadable bytes."""
    try:
        data = np.load(path, allow_pickle=False)
    # numpy parses the header with ast/tokenize and the records with zipfile/zlib: damaged bytes
    # raise anything from ValueError to TypeError, TokenError, BadZipFile, zlib.error or
    # MemoryError (a header claiming terabytes). All mean the same: not a readable numpy file.
    except Exception as exc:
        raise BadInput(
            f"Cannot read the {what} {path}: {exc}.",
            "It must be a file written by numpy.save/numpy.savez (object arrays are refused).",
        ) from exc
    if isinstance(data, np.ndarray) != (path.suffix == ".npy"):
        if not isinstance(data, np.ndarray):
            data.close()
        held, want = ("one array (numpy.save)", ".npz") if isinstance(data, np.ndarray) else (
            "an archive of arrays (numpy.savez)", ".npy")
        raise BadInput(f"The {what} {path} holds {held}, not what a {want} file holds.",
                       f"Rename it to {path.with_suffix('.npy' if want == '.npz' else '.npz').name}.")
    return data


def _load_npz(path: Path, specs, what) -> Samples:
    with _np_load(path, what) as z:
        try:
            arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # as in _np_load: a damaged record or a header that lies
            raise BadInput(f"Cannot read the {what} {path}: {exc}.", "Rewrite it with numpy.savez.") from exc
    return _from_arrays(arrays, specs, what, str(path))


def _from_arrays(arrays: dict, specs, what, source: str) -> Samples:
    """Arrays keyed by input name (any single key for a one-input model), plus optional labels."""
    path = source
    if not arrays:
        raise BadInput(f"The {what} {path} holds no arrays.", "Save one array per input name with numpy.savez.")
    labels = arrays.pop("labels", None)
    if labels is not None:
        labels = np.asarray(labels)
    inputs = {}
    for i, s in enumerate(specs):
        if s.name in arrays:
            inputs[s.name] = _add_batch(arrays.pop(s.name), s)
        elif len(specs) == 1 and len(arrays) == 1:
            inputs[s.name] = _add_batch(arrays.popitem()[1], s)  # one input, any key (arr_0, x ...)
        else:
            raise BadInput(
                f"The {what} {path} has no array for input {s.name!r} (it has: "
                f"{', '.join(list(arrays) + list(inputs)) or 'only labels'}).",
                f"Save it under the input's name: numpy.savez(path, {s.name}=array, ...).",
            )
    if arrays:  # e.g. `label` for `labels`: say so rather than drop the accuracy silently
        warnings.warn(f"The {what} {path} has array(s) no input takes, ignored: {', '.join(arrays)} "
                      f"(inputs: {', '.join(s.name for s in specs)}; task labels go under the key 'labels').",
                      DataWarning, stacklevel=3)
    return Samples(inputs, labels, source=source)


def _add_batch(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Accept a single sample (spec rank) or a stack of samples (spec rank, batch axis = N).
    Raises BadInput (exit 2) for a member that is not an array (raw bytes in an .npz) or a
    0-d scalar."""
    if not isinstance(arr, np.ndarray):
        raise BadInput(f"The data for input {spec.name!r} is not a numpy array (a {type(arr).__name__} "
                       "member, not written by numpy.save).", "Write the data with numpy.save / numpy.savez.")
    if arr.ndim == 0:
        raise BadInput(f"The data for input {spec.name!r} is a single number, not an array of samples.",
                       f"Give an array of shape (N, {', '.join(map(str, spec.shape[1:]))}).")
    if arr.ndim == len(spec.shape) - 1:
        return arr[None]
    return arr


def _load_images(folder: Path, specs, what) -> Samples:
    from PIL import Image

    if len(specs) != 1:
        raise BadInput(f"A folder of images can feed a model with one input; this one has {len(specs)}.", "Use .npz.")
    spec = specs[0]
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BadInput(f"The folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).", "Add images.")
    if len(spec.shape) != 4:
        raise BadInput(f"Images need a 4-D image input; {spec.describe()} is not one.", "Use .npy or .npz.")
    nchw = spec.shape[1] in (1, 3) and spec.shape[3] not in (1, 3) or spec.layout == "NCHW"
    c, h, w = (spec.shape[1], spec.shape[2], spec.shape[3]) if nchw else (spec.shape[3], spec.shape[1], spec.shape[2])
    mode = {1: "L", 3: "RGB"}.get(c)
    if mode is None:
        raise BadInput(f"Input {spec.describe()} has {c} channels; images give 1 or 3.", "Use .npy or .npz.")
    batch = []
    from .limits import regular_file

    for f in files:
        regular_file(f, "The image")  # a FIFO named *.png would block the read
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert(mode).resize((w, h), Image.BILINEAR))
        # PIL's decoders raise OSError on most damage, but also DecompressionBombError (a header
        # claiming gigapixels), ValueError, SyntaxError, EOFError ...: all mean a damaged image
        except Exception as exc:
            raise BadInput(f"Cannot read the image {f}: {exc}.", "Remove it or replace it.") from exc
        arr = arr.reshape(h, w, c)
        batch.append(arr.transpose(2, 0, 1) if nchw else arr)
    x = np.stack(batch)
    if np.dtype(spec.dtype).kind == "f":
        x = x.astype(spec.dtype) / 255.0  # pixels scaled to [0, 1]; use .npy for other normalisations
    else:
        x = x.astype(spec.dtype)
    return Samples({spec.name: x}, source=str(folder))


def _check(samples: Samples, specs, path, what, allow_nan) -> None:
    n = None
    for s in specs:
        arr = samples.inputs[s.name]
        want = tuple(s.shape[1:])
        if tuple(arr.shape[1:]) != want:
            raise BadInput(
                f"The {what} {path} gives input {s.name!r} samples of shape {tuple(arr.shape[1:])}, "
                f"the model takes {want} per sample ({s.describe()}).",
                "Reshape the data (samples stacked on the first axis) or fix --input-shape.",
            )
        # float64 → float32 is what numpy users mean; integer data for a float input is not (raw
        # pixels 0..255 where the model wants 0..1 would calibrate silently wrong): refuse it.
        want_dt = np.dtype(s.dtype)
        if arr.dtype.kind in "iu" and want_dt.kind in "iu" and arr.dtype != want_dt and arr.size \
                and np.iinfo(want_dt).min <= arr.min() and arr.max() <= np.iinfo(want_dt).max:
            pass  # token ids as numpy's default int64 for an int32 input: the same numbers, cast below
        elif arr.dtype.kind != want_dt.kind or (arr.dtype.kind != "f" and arr.dtype != want_dt):
            raise BadInput(
                f"The {what} {path} gives input {s.name!r} as {arr.dtype}, the model takes {s.dtype}.",
                f"Convert it with the model's preprocessing (scaling included), then array.astype(numpy.{s.dtype}).",
            )
        given = arr
        if arr.dtype != np.dtype(s.dtype):
            with np.errstate(over="ignore"):
                arr = samples.inputs[s.name] = arr.astype(s.dtype)  # float64 past float32's range: inf, caught below
        if arr.dtype.kind == "f" and not allow_nan and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            cast = (f" once cast from {given.dtype} to {arr.dtype} (beyond its range)"
                    if given.dtype != arr.dtype and np.isfinite(given).all() else "")
            raise BadInput(
                f"The {what} {path} has {bad} NaN or infinite value(s) in input {s.name!r}{cast}.",
                "Calibration and parity need finite numbers: clean or drop those samples.",
            )
        if n is None:
            n = len(arr)
        elif len(arr) != n:
            raise BadInput(f"The {what} {path} has different sample counts per input.", "Give each input N samples.")
        if len(arr) == 0:
            raise BadInput(f"The {what} {path} has no samples.", "Give at least one.")
    if samples.labels is not None and (not isinstance(samples.labels, np.ndarray) or samples.labels.ndim == 0
                                       or len(samples.labels) != n):
        raise BadInput(
            f"The {what} {path} has {np.size(samples.labels) if isinstance(samples.labels, np.ndarray) else 'no array of'} "
            f"labels for {n} samples.", "Give one label per sample (an array under the key 'labels')."
        )
    if samples.labels is not None:
        samples.labels = _class_indices(samples.labels, f"The {what} {path}")


def _class_indices(labels: np.ndarray, where: str) -> np.ndarray:
    """LABELS (one per sample) as int64 class indices, or BadInput (exit 2): one-hot rows,
    strings, fractions or negative numbers would score both models 0 % (or fail) and report a
    delta of 0 as if it were measured. Integral floats (3.0, from pandas) are accepted."""
    hint = "Give one class index per sample under 'labels' (integers 0..C-1; one-hot rows: labels.argmax(1))."
    if labels.ndim > 1 and labels.reshape(len(labels), -1).shape[1] > 1:
        raise BadInput(f"{where} has labels of shape {labels.shape}; edgekit compares one class index per sample "
                       "with the arg-max of the model's output.", hint)
    flat = labels.reshape(-1)
    if flat.dtype.kind not in "iuf":
        raise BadInput(f"{where} has labels of type {flat.dtype}, not class indices.", hint)
    if flat.dtype.kind == "f" and not (np.isfinite(flat).all() and (flat == np.round(flat)).all()):
        raise BadInput(f"{where} has labels that are not whole numbers (such as {flat[flat != np.round(flat)][:1]}).",
                       hint)
    if flat.size and flat.min() < 0:
        raise BadInput(f"{where} has negative labels (such as {int(flat.min())}); class indices start at 0.", hint)
    return flat.astype(np.int64)


def shapes_from_data(data) -> dict:
    """The per-sample input shapes DATA implies, with batch 1: {input name: dims} from a `.npz`
    or a dict of arrays (labels left out), {0: dims} from a `.npy` or one array; {} for image
    folders, random data, or anything unreadable (this is only a hint: loading says what is wrong).
    Used when a model input has no fixed shape and no --input-shape was given."""
    try:
        if isinstance(data, np.ndarray):
            arrays = {0: data.shape}
        elif isinstance(data, Mapping):
            arrays = {str(k): np.shape(v) for k, v in data.items() if k != "labels"}
        elif data is None or str(data) == RANDOM or not Path(data).is_file():
            return {}
        elif Path(data).suffix == ".npy":
            arrays = {0: np.load(data, mmap_mode="r", allow_pickle=False).shape}
        elif Path(data).suffix == ".npz":
            with np.load(data, allow_pickle=False) as z:
                arrays = {k: z[k].shape for k in z.files if k != "labels"}
        else:
            return {}
    except Exception:  # a hint only: the data is checked properly when it is loaded
        return {}
    if len(arrays) == 1 and not isinstance(next(iter(arrays)), int):
        (name, shape), = arrays.items()
        arrays = {name: shape, 0: shape}  # one array: it is the one input's, whatever its key
    return {k: (1, *shape[1:]) for k, shape in arrays.items() if len(shape) >= 2}

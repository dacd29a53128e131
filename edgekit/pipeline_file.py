"""`edgekit.yaml`: the pipeline file, parsed and checked with errors that name the line and key.

    model: models/digits.keras        # any MODEL that `edgekit convert` accepts
    input_shapes: {image: 1x8x8x1}    # optional, as --input-shape
    data: data/test.npz               # samples for parity (with optional labels)
    calibration: data/calib.npz       # for int8 builds
    builds:                           # a list, or {matrix: {to: [...], quantize: [...]}}
      - {name: fp32, to: tflite}
      - {name: int8, to: tflite, quantize: int8, io_dtype: int8}
    targets: [host]                   # the target strings of `edgekit profile`
    budgets: {size_mb: 5, latency_p90_ms: 20, min_psnr_db: 25}

Paths are relative to the file. The accepted values come from the registries: `to:` from
edgekit.converters.CONVERTERS, `quantize:` from edgekit.quantization.RECIPES, `targets:` from
edgekit.targets.TARGETS, and the budget names from `BUDGETS` below (README's budget list is
checked against it by tests/test_registries.py).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput
from .limits import LIMITS, limit
from .pipeline_yaml import Located

BUDGETS = {
    "size_mb": "artifact size in MB (10^6 bytes), at most",
    "latency_p90_ms": "p90 latency in ms on each target, at most (a {target: ms} map for per-target limits)",
    "min_psnr_db": "parity PSNR of every output, at least",
    "min_cosine": "parity cosine similarity of every output, at least",
    "min_top1_agreement": "share of samples whose top-1 class is kept, at least",
    "max_accuracy_drop": "reference accuracy minus candidate accuracy on the data's labels, at most",
    "min_delegated_fraction": "share of operators on the accelerated backend (XNNPACK), at least",
    "peak_rss_mb": "peak resident memory of a profiling run in MB (10^6 bytes), at most",
}
BUILD_KEYS = {"name", "to", "quantize", "io_dtype", "input_shapes", "calibration", "allow_tf_ops",
              "channels_last_io", "budgets", "allow_float_fallback", "max_accuracy_drop", "min_top1_agreement",
              "min_psnr"}
TOP_KEYS = {"model", "weights", "input_shapes", "data", "calibration", "builds", "targets", "budgets", "runs",
            "warmup", "threads", "samples"}


@dataclass
class BuildSpec:
    """One build of the pipeline: its folder NAME, the `--to` format, the recipe, the I/O type,
    fixed input shapes ({name: shape tuple}), its own calibration path, flags, and budgets that
    override the pipeline's."""

    name: str
    to: str
    quantize: str = "none"
    io_dtype: str = "float32"
    input_shapes: dict = field(default_factory=dict)
    calibration: str | None = None
    allow_tf_ops: bool = False
    channels_last_io: bool = False
    budgets: dict = field(default_factory=dict)
    allow_float_fallback: bool = False
    max_accuracy_drop: float | None = None
    min_top1_agreement: float | None = None
    min_psnr: float | None = None

    def options(self) -> dict:
        """What determines the artifact (for the cache key and the report)."""
        out = {"to": self.to, "quantize": self.quantize, "io_dtype": self.io_dtype,
               "input_shapes": self.input_shapes, "allow_tf_ops": self.allow_tf_ops,
               "channels_last_io": self.channels_last_io}
        out.update({k: v for k, v in self.quantize_options().items() if v not in (None, False)})
        return out

    def quantize_options(self) -> dict:
        """The convert keyword arguments of the int8 checks: allow_float_fallback and the
        accuracy-aware search bars (max_accuracy_drop in points, min_top1_agreement 0..1,
        min_psnr in dB; None = not asked)."""
        return {"allow_float_fallback": self.allow_float_fallback, "max_accuracy_drop": self.max_accuracy_drop,
                "min_top1_agreement": self.min_top1_agreement, "min_psnr": self.min_psnr}


@dataclass
class Pipeline:
    """A loaded edgekit.yaml: absolute file PATH, the MODEL (paths resolved against the file's
    folder), the builds, target strings, global budgets, data/calibration/weights paths (or
    "random"), and profiling settings (runs, warmup, threads; samples caps parity samples)."""

    path: Path
    model: str
    builds: list[BuildSpec]
    targets: list[str] = field(default_factory=lambda: ["host"])
    budgets: dict = field(default_factory=dict)
    data: str | None = None
    calibration: str | None = None
    weights: str | None = None
    input_shapes: dict = field(default_factory=dict)
    runs: int = 50
    warmup: int = 5
    threads: int = 1
    samples: int | None = None

    @property
    def folder(self) -> Path:
        """The folder of the pipeline file: relative paths in it are resolved from here."""
        return self.path.parent


def load(path: str | Path) -> Pipeline:
    """Read and check the pipeline file PATH (or PATH/edgekit.yaml for a folder).

    Values are checked against the registries (formats, recipes, targets, BUDGETS), all of them
    before anything is built. Raises BadInput (exit 2) naming the file, line and key of each
    mistake with a hint: one mistake as one error, several as one error listing them all in file
    order. A file that cannot be read as YAML stops at that (nothing after it is readable).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "edgekit.yaml"
    from .limits import existing_regular

    existing_regular(path, "The pipeline file")  # a FIFO would block the read forever
    if not path.is_file():
        raise BadInput(f"The pipeline file {path} does not exist.",
                       "Create edgekit.yaml (see the README's pipeline section) or pass its path.")
    src = Located(path)
    d = src.data
    if not isinstance(d, dict):
        raise src.error((), "the file must be a mapping of keys (model:, builds:, ...).", "See the README example.")
    _unknown(src, d, TOP_KEYS, ())
    model = None
    if "model" not in d:
        src.note((), "no `model:` key.", "Name the model to build: model: models/net.keras")
    else:
        model = src.attempt(_str, src, d, "model", ())
    if model is not None:
        model = _model_path(path, model)
    rel = lambda v: None if v is None else v if v == "random" else str(path.parent / v)
    shapes = src.attempt(_shapes, src, d.get("input_shapes"), ("input_shapes",), default={})
    targets = d.get("targets", ["host"])
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        src.note(("targets",), "must be a list of target strings.", "targets: [host, ssh://pi@raspberrypi]")
        targets = [t for t in targets if isinstance(t, str)] if isinstance(targets, list) else []
    _check_targets(src, targets)
    budgets = _budgets(src, d.get("budgets", {}), ("budgets",), targets)
    builds = src.attempt(_builds, src, d.get("builds"), targets, rel, default=[])
    names = [b.name for b in builds]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        src.note(("builds",), f"build names must be unique; repeated: {', '.join(sorted(dup))}.",
                 "Give each build its own name:")
    for key in ("runs", "warmup", "threads", "samples"):
        src.attempt(_count, src, d, key)
    paths = {k: rel(src.attempt(_opt_str, src, d, k, ())) for k in ("data", "calibration", "weights")}
    src.finish()
    return Pipeline(
        path=path.resolve(), model=model, builds=builds, targets=targets, budgets=budgets, input_shapes=shapes,
        runs=d.get("runs", 50), warmup=d.get("warmup", 5), threads=d.get("threads", 1), samples=d.get("samples"),
        **paths,
    )


def _model_path(path: Path, model: str) -> str:
    """MODEL resolved against the pipeline file's folder (a file, or file.py:factory)."""
    if ":" not in model or (path.parent / model).exists():
        return str(path.parent / model)
    target, _, func = model.rpartition(":")  # file.py:factory relative to the pipeline file
    return f"{path.parent / target}:{func}" if target.endswith(".py") else model


def _count(src, d, key) -> None:
    """runs/warmup/threads/samples: a whole number ≥ 1 (warmup ≥ 0), runs and warmup within limits."""
    if key not in d:
        return
    v = d[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < (0 if key == "warmup" else 1):
        raise src.error((key,), f"must be a positive whole number, not {v!r}.", f"{key}: 10")
    if key in ("runs", "warmup") and v > limit(f"max_{key}"):
        raise src.error((key,), f"{v:,} exceeds edgekit's limit of {limit(f'max_{key}'):,} "
                        f"({LIMITS[f'max_{key}'][1]}).", f"{key}: 50")


def _check_targets(src, targets: list[str]) -> None:
    """Every target string must be of a registered kind (edgekit.targets.TARGETS) or a named
    target (the user's targets.toml); records a located problem for each one that is not."""
    from edgekit import targets as registry

    for i, t in enumerate(targets):
        try:
            registry.resolve(t)
        except BadInput as exc:  # "Unknown target ..." → "unknown target ...", or a broken targets.toml
            src.note(("targets", i), exc.message[:1].lower() + exc.message[1:], exc.hint)


def _unknown(src, d: dict, allowed: set, at: tuple) -> bool:
    """Record every key of D not in ALLOWED (with the closest known key); True if there was one."""
    import difflib

    bad = [k for k in d if k not in allowed]
    for k in bad:
        close = difflib.get_close_matches(str(k), sorted(allowed), n=1)
        src.note(at + (k,), f"unknown key {k!r}.",
                 (f"Did you mean {close[0]!r}? " if close else "") + "Known keys: " + ", ".join(sorted(allowed)))
    return bool(bad)


def _str(src, d, key, at):
    v = d.get(key)
    if not isinstance(v, str) or not v:
        raise src.error(at + (key,), f"must be a non-empty string, not {type(v).__name__} {v!r}.", f"{key}: ...")
    return v


def _opt_str(src, d, key, at):
    return None if d.get(key) is None else _str(src, d, key, at)


def _shapes(src, v, at) -> dict:
    from .specs import parse_shape

    if v is None:
        return {}
    if not isinstance(v, dict):
        raise src.error(at, "must map input names to shapes.", "input_shapes: {image: 1x224x224x3}")
    out = {}
    for name, dims in v.items():
        try:
            out[str(name)] = parse_shape(str(dims))[1]
        except BadInput as exc:
            src.note(at + (name,), exc.message, exc.hint)
        except ValueError:  # a dimension over Python's 4300-digit limit of int()
            src.note(at + (name,), f"{str(dims)[:40]}... has a dimension too long to be a number.",
                     "input_shapes: {image: 1x224x224x3}")
    return out


def _budgets(src, v, at, targets) -> dict:
    """The budgets mapping V at AT, every bad entry recorded (and left out of the result)."""
    if not isinstance(v, dict):
        src.note(at, "must be a mapping of budget names to limits.", "budgets: {size_mb: 5, latency_p90_ms: 20}")
        return {}
    _unknown(src, v, set(BUDGETS), at)
    out = {}
    for k, limit in v.items():
        if k not in BUDGETS:
            continue
        if k == "latency_p90_ms" and isinstance(limit, dict):
            good = True
            for t, ms in limit.items():
                if t not in targets:
                    good = False
                    src.note(at + (k, t), f"a budget for target {t!r}, which is not in targets ({', '.join(targets)}).",
                             "Add the target to `targets:` or remove this budget.")
                elif not _number(ms):
                    good = False
                    src.note(at + (k, t), f"must be a number, not {ms!r}.", f"{t}: 20")
            if good:
                out[k] = limit
        elif not _number(limit):
            src.note(at + (k,), f"must be a number, not {type(limit).__name__} {limit!r}.", f"{k}: {BUDGETS[k]}")
        else:
            out[k] = limit
    return out


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _builds(src, v, targets, rel) -> list[BuildSpec]:
    """The builds at `builds:` (a list, or a matrix expanded in order), each checked on its own;
    raises a located BadInput when the list or matrix itself is unusable."""
    at = ("builds",)
    if v is None:
        raise src.error((), "no `builds:`.", "builds:\n  - {name: fp32, to: tflite}")
    if isinstance(v, dict):
        items = _matrix(src, v, at)
    elif isinstance(v, list) and v:
        if len(v) > limit("max_builds"):
            raise src.error(at, f"lists {len(v):,} builds; edgekit's limit is {limit('max_builds'):,} per pipeline "
                            "file.", "Split the builds into several pipeline files.")
        items = [(b, at + (i,)) for i, b in enumerate(v)]
    else:
        raise src.error(at, "must be a non-empty list of builds or a {matrix: ...}.", "builds:\n  - {name: fp32, to: tflite}")
    out = []
    for b, where in items:
        spec = _build(src, b, where, targets, rel)
        if spec is not None:
            out.append(spec)
    return out


def _matrix(src, v: dict, at: tuple) -> list[tuple[dict, tuple]]:
    """The (build options, key path) of each combination of a `{matrix: {...}, budgets: ...}`."""
    _unknown(src, v, {"matrix", "budgets"}, at)
    m = v.get("matrix")
    if not isinstance(m, dict) or not m:
        raise src.error(at + ("matrix",), "must map option names to lists of values.",
                        "builds: {matrix: {to: [tflite, executorch], quantize: [none, int8]}}")
    allowed = BUILD_KEYS - {"name", "budgets"}
    _unknown(src, m, allowed, at + ("matrix",))
    keys = [k for k in m if k in allowed]
    values = [m[k] if isinstance(m[k], list) else [m[k]] for k in keys]
    count = math.prod(len(x) for x in values)
    if count > limit("max_builds") or not count:
        raise src.error(at + ("matrix",), f"expands to {count:,} builds; edgekit's limit is "
                        f"{limit('max_builds'):,} per pipeline file ({LIMITS['max_builds'][1]})." if count else
                        "a list in the matrix is empty, so it expands to no build.",
                        "Shorten the lists, or split the matrix into several pipeline files." if count else
                        "Give every matrix key at least one value: {matrix: {to: [tflite]}}.")
    items = []
    for combo in itertools.product(*values):
        opts = dict(zip(keys, combo))
        opts["name"] = "-".join(str(c) for c in combo)
        if "budgets" in v:
            opts["budgets"] = v["budgets"]
        items.append((opts, at + ("matrix",)))
    return items


def _build(src, b, where: tuple, targets, rel) -> BuildSpec | None:
    """One build's options B at WHERE as a BuildSpec, or None after recording its problems."""
    from edgekit import converters, quantization

    if not isinstance(b, dict):
        src.note(where, "each build is a mapping.", "- {name: int8, to: tflite, quantize: int8}")
        return None
    before = len(src.problems)
    _unknown(src, b, BUILD_KEYS, where)
    to = b.get("to", "tflite")
    if not isinstance(to, str) or to not in converters.formats():
        src.note(where + ("to",), f"unknown target format {to!r}.", "to: " + " | ".join(converters.formats()))
    q = b.get("quantize", "none")
    if not isinstance(q, str) or q not in quantization.RECIPES:  # a list is unhashable: TypeError
        src.note(where + ("quantize",), f"unknown quantization {q!r}.", "quantize: " + " | ".join(quantization.RECIPES))
    name = b.get("name") or f"{to}-{q}"
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        src.note(where + ("name",), f"{name!r} is not a usable name (it becomes a folder).",
                 "Use letters, digits, '-', '_' and '.'.")
    for flag in ("allow_tf_ops", "channels_last_io", "allow_float_fallback"):
        if flag in b and not isinstance(b[flag], bool):
            src.note(where + (flag,), f"must be true or false, not {b[flag]!r}.", f"{flag}: true")
    for bar in ("max_accuracy_drop", "min_top1_agreement", "min_psnr"):
        if bar in b and not _number(b[bar]):
            src.note(where + (bar,), f"must be a number, not {b[bar]!r}.", f"{bar}: 1")
    shapes = src.attempt(_shapes, src, b.get("input_shapes"), where + ("input_shapes",), default={})
    calibration = src.attempt(_opt_str, src, b, "calibration", where)
    budgets = _budgets(src, b.get("budgets", {}), where + ("budgets",), targets)
    if len(src.problems) > before:
        return None
    return BuildSpec(
        name=name, to=to, quantize=q, io_dtype=str(b.get("io_dtype", "float32")), input_shapes=shapes,
        calibration=rel(calibration), allow_tf_ops=b.get("allow_tf_ops", False),
        channels_last_io=b.get("channels_last_io", False), allow_float_fallback=b.get("allow_float_fallback", False),
        max_accuracy_drop=b.get("max_accuracy_drop"), min_top1_agreement=b.get("min_top1_agreement"),
        min_psnr=b.get("min_psnr"), budgets=budgets,
    )

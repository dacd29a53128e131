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


class _Located:
    """Values from the YAML file with the line of each key, for errors that point at it."""

    def __init__(self, path: Path):
        import yaml

        from .limits import regular_file

        self.path = path
        regular_file(path, "The pipeline file", "max_pipeline_bytes",
                     "Pass the edgekit.yaml itself (a few lines; see the README's pipeline section).")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"Cannot read the pipeline file {path}: {getattr(exc, 'strerror', None) or exc}.",
                           "Check the path; the file must be UTF-8 text.") from exc
        try:
            self.node = yaml.compose(text, Loader=yaml.SafeLoader)
            _check_graph(path, self.node)  # before anything walks it: aliases can loop or multiply
            self.data = yaml.safe_load(text)
        except RecursionError:  # PyYAML composes nested collections recursively
            raise BadInput(f"{path}: nested too deeply to read.", "Flatten the file (a few levels are enough).") from None
        except (ValueError, OverflowError) as exc:  # int()/date()/chr(): 5000 digits, 2001-13-45, "\U99999999"
            raise BadInput(f"{path}: a value cannot be read ({str(exc).split(';')[0]}).",
                           "Write numbers with a few digits, dates as real dates and \\U escapes as real code points (or quote the value).") from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark else "somewhere"
            raise BadInput(f"{path}: {where}: not valid YAML ({getattr(exc, 'problem', exc)}).",
                           "Fix the syntax (indentation, colons, brackets).") from exc
        self.lines: dict[tuple, int] = {}
        if self.node is not None:
            self._index(self.node, ())

    def _index(self, node, at: tuple):
        """Record the line of every key path under NODE (bounded by _check_graph)."""
        import yaml

        self.lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                self.lines[at + (k.value,)] = k.start_mark.line + 1
                self._index(v, at + (k.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._index(v, at + (i,))

    def error(self, at: tuple, message: str, hint: str) -> BadInput:
        line = self.lines.get(at) or self.lines.get(at[:-1]) or 1
        key = ".".join(str(p) for p in at) or "(top level)"
        return BadInput(f"{self.path}:{line}: {key}: {message}", hint)


def _check_graph(path: Path, root) -> None:
    """Refuse a YAML node graph that loops (an alias inside its own anchor: `a: &a [*a]`) or
    whose aliases expand past the `max_yaml_nodes` limit (a "billion laughs" file: a few lines
    that PyYAML's safe loader accepts, since it shares aliased nodes, but that any walk over the
    values multiplies). Counts expanded nodes without expanding (memoized per node).
    Raises BadInput (exit 2) naming the line of the alias and the limit."""
    import yaml

    from .limits import LIMITS, limit

    bound, sizes, active = limit("max_yaml_nodes"), {}, set()

    def size(node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise BadInput(f"{path}:{node.start_mark.line + 1}: an alias refers to the node that contains it "
                           "(a loop); edgekit cannot use a self-referring value.",
                           "Replace the alias (*name) by the values it stands for.")
        active.add(id(node))
        children = []
        if isinstance(node, yaml.MappingNode):
            children = [c for kv in node.value for c in kv]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        n = 1
        for c in children:
            n += size(c)
            if n > bound:
                raise BadInput(f"{path}: its aliases expand to over {bound:,} values, edgekit's limit "
                               f"({LIMITS['max_yaml_nodes'][1]}).", "Write the values out instead of nesting aliases.")
        active.discard(id(node))
        sizes[id(node)] = n
        return n

    if root is not None:
        try:
            size(root)
        except RecursionError:
            raise BadInput(f"{path}: nested too deeply to read.", "Flatten the file (a few levels are enough).") from None


def load(path: str | Path) -> Pipeline:
    """Read and check the pipeline file PATH (or PATH/edgekit.yaml for a folder).

    Values are checked against the registries (formats, recipes, targets, BUDGETS). Raises
    BadInput (exit 2) naming the file, line and key of the first mistake, with a hint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "edgekit.yaml"
    from .limits import existing_regular

    existing_regular(path, "The pipeline file")  # a FIFO would block the read forever
    if not path.is_file():
        raise BadInput(f"The pipeline file {path} does not exist.",
                       "Create edgekit.yaml (see the README's pipeline section) or pass its path.")
    src = _Located(path)
    d = src.data
    if not isinstance(d, dict):
        raise src.error((), "the file must be a mapping of keys (model:, builds:, ...).", "See the README example.")
    _unknown(src, d, TOP_KEYS, ())
    if "model" not in d:
        raise src.error((), "no `model:` key.", "Name the model to build: model: models/net.keras")
    model = _str(src, d, "model", ())
    if ":" not in model or (path.parent / model).exists():
        model = str((path.parent / model))
    else:  # file.py:factory relative to the pipeline file
        target, _, func = model.rpartition(":")
        if target.endswith(".py"):
            model = f"{path.parent / target}:{func}"
    rel = lambda v: None if v is None else v if v == "random" else str(path.parent / v)
    shapes = _shapes(src, d.get("input_shapes"), ("input_shapes",))
    targets = d.get("targets", ["host"])
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise src.error(("targets",), "must be a list of target strings.", "targets: [host, ssh://pi@raspberrypi]")
    _check_targets(src, targets)
    budgets = _budgets(src, d.get("budgets", {}), ("budgets",), targets)
    builds = _builds(src, d.get("builds"), targets, rel)
    names = [b.name for b in builds]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise src.error(("builds",), f"build names must be unique; repeated: {', '.join(sorted(dup))}.",
                        "Give each build its own name:")
    for key in ("runs", "warmup", "threads", "samples"):
        if key in d and (not isinstance(d[key], int) or isinstance(d[key], bool) or d[key] < (0 if key == "warmup" else 1)):
            raise src.error((key,), f"must be a positive whole number, not {d[key]!r}.", f"{key}: 10")
        if key in ("runs", "warmup") and key in d and d[key] > limit(f"max_{key}"):
            raise src.error((key,), f"{d[key]:,} exceeds edgekit's limit of {limit(f'max_{key}'):,} "
                            f"({LIMITS[f'max_{key}'][1]}).", f"{key}: 50")
    return Pipeline(
        path=path.resolve(), model=model, builds=builds, targets=targets, budgets=budgets,
        data=rel(_opt_str(src, d, "data", ())), calibration=rel(_opt_str(src, d, "calibration", ())),
        weights=rel(_opt_str(src, d, "weights", ())), input_shapes=shapes,
        runs=d.get("runs", 50), warmup=d.get("warmup", 5), threads=d.get("threads", 1), samples=d.get("samples"),
    )


def _check_targets(src, targets: list[str]) -> None:
    """Every target string must be of a registered kind (edgekit.targets.TARGETS) or a named
    target (the user's targets.toml); raises BadInput (exit 2) naming the line otherwise."""
    from edgekit import targets as registry

    for i, t in enumerate(targets):
        try:
            registry.resolve(t)
        except BadInput as exc:  # "Unknown target ..." → "unknown target ...", or a broken targets.toml
            raise src.error(("targets", i), exc.message[:1].lower() + exc.message[1:], exc.hint) from None


def _unknown(src, d: dict, allowed: set, at: tuple):
    for k in d:
        if k not in allowed:
            import difflib

            close = difflib.get_close_matches(str(k), sorted(allowed), n=1)
            raise src.error(at + (k,), f"unknown key {k!r}.",
                            (f"Did you mean {close[0]!r}? " if close else "") + "Known keys: " + ", ".join(sorted(allowed)))


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
            raise src.error(at + (name,), exc.message, exc.hint) from None
        except ValueError:  # a dimension over Python's 4300-digit limit of int()
            raise src.error(at + (name,), f"{str(dims)[:40]}... has a dimension too long to be a number.",
                            "input_shapes: {image: 1x224x224x3}") from None
    return out


def _budgets(src, v, at, targets) -> dict:
    if not isinstance(v, dict):
        raise src.error(at, "must be a mapping of budget names to limits.", "budgets: {size_mb: 5, latency_p90_ms: 20}")
    _unknown(src, v, set(BUDGETS), at)
    for k, limit in v.items():
        if k == "latency_p90_ms" and isinstance(limit, dict):
            for t, ms in limit.items():
                if t not in targets:
                    raise src.error(at + (k, t), f"a budget for target {t!r}, which is not in targets ({', '.join(targets)}).",
                                    "Add the target to `targets:` or remove this budget.")
                if not _number(ms):
                    raise src.error(at + (k, t), f"must be a number, not {ms!r}.", f"{t}: 20")
            continue
        if not _number(limit):
            raise src.error(at + (k,), f"must be a number, not {type(limit).__name__} {limit!r}.", f"{k}: {BUDGETS[k]}")
    return dict(v)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _builds(src, v, targets, rel) -> list[BuildSpec]:
    from edgekit import converters, quantization

    at = ("builds",)
    if v is None:
        raise src.error((), "no `builds:`.", "builds:\n  - {name: fp32, to: tflite}")
    if isinstance(v, dict):
        _unknown(src, v, {"matrix", "budgets"}, at)
        m = v.get("matrix")
        if not isinstance(m, dict) or not m:
            raise src.error(at + ("matrix",), "must map option names to lists of values.",
                            "builds: {matrix: {to: [tflite, executorch], quantize: [none, int8]}}")
        _unknown(src, m, BUILD_KEYS - {"name", "budgets"}, at + ("matrix",))
        keys = list(m)
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
    elif isinstance(v, list) and v:
        if len(v) > limit("max_builds"):
            raise src.error(at, f"lists {len(v):,} builds; edgekit's limit is {limit('max_builds'):,} per pipeline "
                            "file.", "Split the builds into several pipeline files.")
        items = [(b, at + (i,)) for i, b in enumerate(v)]
    else:
        raise src.error(at, "must be a non-empty list of builds or a {matrix: ...}.", "builds:\n  - {name: fp32, to: tflite}")
    out = []
    for b, where in items:
        if not isinstance(b, dict):
            raise src.error(where, "each build is a mapping.", "- {name: int8, to: tflite, quantize: int8}")
        _unknown(src, b, BUILD_KEYS, where)
        to = b.get("to", "tflite")
        if not isinstance(to, str) or to not in converters.formats():
            raise src.error(where + ("to",), f"unknown target format {to!r}.", "to: " + " | ".join(converters.formats()))
        q = b.get("quantize", "none")
        if not isinstance(q, str) or q not in quantization.RECIPES:  # a list is unhashable: TypeError
            raise src.error(where + ("quantize",), f"unknown quantization {q!r}.",
                            "quantize: " + " | ".join(quantization.RECIPES))
        name = b.get("name") or f"{to}-{q}"
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise src.error(where + ("name",), f"{name!r} is not a usable name (it becomes a folder).",
                            "Use letters, digits, '-', '_' and '.'.")
        for flag in ("allow_tf_ops", "channels_last_io", "allow_float_fallback"):
            if flag in b and not isinstance(b[flag], bool):
                raise src.error(where + (flag,), f"must be true or false, not {b[flag]!r}.", f"{flag}: true")
        for bar in ("max_accuracy_drop", "min_top1_agreement", "min_psnr"):
            if bar in b and (isinstance(b[bar], bool) or not isinstance(b[bar], (int, float))):
                raise src.error(where + (bar,), f"must be a number, not {b[bar]!r}.", f"{bar}: 1")
        out.append(BuildSpec(
            name=name, to=to, quantize=q, io_dtype=str(b.get("io_dtype", "float32")),
            input_shapes=_shapes(src, b.get("input_shapes"), where + ("input_shapes",)),
            calibration=rel(_opt_str(src, b, "calibration", where)), allow_tf_ops=b.get("allow_tf_ops", False),
            channels_last_io=b.get("channels_last_io", False),
            allow_float_fallback=b.get("allow_float_fallback", False), max_accuracy_drop=b.get("max_accuracy_drop"),
            min_top1_agreement=b.get("min_top1_agreement"), min_psnr=b.get("min_psnr"),
            budgets=_budgets(src, b.get("budgets", {}), where + ("budgets",), targets),
        ))
    return out

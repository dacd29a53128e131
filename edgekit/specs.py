"""Tensor specifications shared by models, artifacts, data and runtimes."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from .errors import BadInput, ShapeNeeded


@dataclass
class TensorSpec:
    """One input or output tensor of a model or artifact (schema `$defs/tensor` as a dict).

    Attributes:
        name: the tensor's name in the model (or signature).
        shape: a tuple of ints; None (or -1 from some runtimes) marks a dynamic dimension.
        dtype: a numpy dtype name (float32, int8, uint8, int16, int32, int64, bool ...).
        scale, zero_point: for quantized tensors, real = (q - zero_point) * scale (TFLite's
            affine quantization); None otherwise.
        layout: "NCHW" / "NHWC" when known; not compared by ==.
    """

    name: str
    shape: tuple  # ints; None marks a dynamic dimension
    dtype: str  # numpy dtype name: float32, int8, uint8, int16, int32, int64, bool ...
    scale: float | None = None  # quantized tensors: real = (q - zero_point) * scale
    zero_point: int | None = None
    layout: str | None = field(default=None, compare=False)  # "NCHW" / "NHWC" when known

    @property
    def is_static(self) -> bool:
        """True when every dimension is a known int ≥ 0 (no None, no -1)."""
        return all(isinstance(d, int) and d >= 0 for d in self.shape)

    @property
    def is_quantized(self) -> bool:
        """True when the tensor carries a nonzero quantization scale."""
        return self.scale is not None and self.scale != 0.0

    def to_dict(self) -> dict:
        """The spec as JSON data (schema `$defs/tensor`): shape as a list, None fields left out."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> "TensorSpec":
        """The inverse of `to_dict` (name, shape and dtype required; KeyError without them)."""
        return cls(
            name=d["name"],
            shape=tuple(d["shape"]),
            dtype=d["dtype"],
            scale=d.get("scale"),
            zero_point=d.get("zero_point"),
            layout=d.get("layout"),
        )

    def describe(self) -> str:
        """For messages: "image 1x224x224x3 float32" ('?' for a dynamic dimension)."""
        dims = "x".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {dims} {self.dtype}"


_SHAPE = re.compile(r"^\s*(?:(?P<name>[^=]+)=)?(?P<dims>\d+(?:\s*[x,]\s*\d+)*)\s*$")


def parse_shape(text: str) -> tuple[str | None, tuple[int, ...]]:
    """'image=1x224x224x3' → ('image', (1, 224, 224, 3)); '1,3,8,8' → (None, (1, 3, 8, 8)).

    Raises BadInput (exit 2) for text of another form, a zero dimension, or a shape over the
    `max_input_elements` limit (edgekit.limits)."""
    m = _SHAPE.match(text or "")
    if not m:
        raise BadInput(
            f"Cannot parse the shape {text!r}.",
            "Write it as NAME=DIMS with dimensions separated by 'x', e.g. "
            "--input-shape image=1x224x224x3 (or just 1x224x224x3 for a model with one input).",
        )
    dims = tuple(int(d) for d in re.split(r"\s*[x,]\s*", m["dims"].strip()))
    if any(d <= 0 for d in dims):
        raise BadInput(f"The shape {text!r} has a zero dimension.", "Every dimension must be ≥ 1.")
    name = m["name"].strip() if m["name"] else None
    from .limits import check_shape_size

    check_shape_size(name or "(first input)", dims)  # 1x3x100000x100000 would exhaust memory later
    return name, dims


def parse_input_shapes(items) -> dict:
    """Input shapes in any form a user gives them → {input name or position: dims (ints)}.

    Accepts None; one "NAME=DIMS" / "DIMS" string ("image=1x224x224x3", "1,3,8,8"); a list or
    tuple of such strings (repeated --input-shape); or a dict {name or position: dims} whose dims
    are a sequence of positive ints or a "1x3x8x8" string (the Python API).
    Raises BadInput (exit 2) for another type or a malformed shape."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = [items]
    if isinstance(items, dict):
        shapes: dict = {}
        for key, dims in items.items():
            if isinstance(dims, str):
                dims = parse_shape(dims)[1]
            elif isinstance(dims, (list, tuple)) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                          for d in dims):
                dims = tuple(dims)
            else:
                raise BadInput(f"The shape for input {key!r} is {dims!r}.",
                               "Give it as a tuple of positive ints, e.g. {'image': (1, 224, 224, 3)}, "
                               "or a string '1x224x224x3'.")
            shapes[key] = dims
        return shapes
    if not isinstance(items, (list, tuple)):
        raise BadInput(f"Input shapes given as a {type(items).__name__}.",
                       "Give 'NAME=DIMS' strings (a list for several inputs) or a dict {name: dims}.")
    shapes = {}
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise BadInput(f"Input shape {item!r} is not a 'NAME=DIMS' string.",
                           "Write it as 'image=1x224x224x3', or pass a dict {name: dims}.")
        name, dims = parse_shape(item)
        shapes[name if name is not None else i] = dims
    return shapes


def resolve_shapes(specs: list[TensorSpec], given: dict, what: str = "model") -> list[TensorSpec]:
    """Fill dynamic dimensions from --input-shape; a dynamic batch alone defaults to 1.

    Raises BadInput naming the input and showing the flag when a dimension stays unknown.
    """
    known = {s.name for s in specs}
    for key in given:
        if isinstance(key, str) and key not in known:
            raise BadInput(
                f"--input-shape names {key!r}, but the {what} has no input of that name.",
                "Its inputs are: " + ", ".join(s.describe() for s in specs),
            )
        if isinstance(key, int) and key >= len(specs):
            raise BadInput(
                f"{len(given)} --input-shape values given, but the {what} has {len(specs)} input(s).",
                "Name each shape: --input-shape NAME=DIMS.",
            )
    out = []
    for i, spec in enumerate(specs):
        dims = given.get(spec.name, given.get(i))
        if dims is not None:
            if len(spec.shape) and len(dims) != len(spec.shape):
                raise BadInput(
                    f"--input-shape for {spec.name!r} has {len(dims)} dimensions, the {what} expects "
                    f"{len(spec.shape)} ({spec.describe()}).",
                    "Give one number per dimension.",
                )
            for want, got in zip(spec.shape, dims):
                if want is not None and want != got and not (want == -1):
                    raise BadInput(
                        f"--input-shape {'x'.join(map(str, dims))} for {spec.name!r} contradicts the "
                        f"{what}'s fixed shape {spec.describe()}.",
                        "Only dynamic dimensions (shown as ?) can be set.",
                    )
            out.append(TensorSpec(spec.name, tuple(dims), spec.dtype, layout=spec.layout))
            continue
        shape = list(spec.shape)
        if shape and shape[0] is None:
            shape[0] = 1  # batch 1 is what an on-device model runs
        if any(d is None for d in shape):
            example = "x".join("N" if d is None else str(d) for d in shape)
            raise ShapeNeeded(
                f"Input {spec.name!r} of the {what} has a dynamic dimension ({spec.describe()}); "
                "an on-device model needs a fixed shape.",
                f"Give it with --input-shape {spec.name}={example} (replace N with the size you ship).",
            )
        out.append(TensorSpec(spec.name, tuple(shape), spec.dtype, layout=spec.layout))
    return out

"""ONNX → PyTorch, the hop that lets an .onnx model reach ExecuTorch and LiteRT: onnx2torch turns
the (static-shape, constant-folded) graph into a torch.fx GraphModule, which the PyTorch
converters then export and lower as any nn.Module. The reference stays the ONNX file on ONNX
Runtime, so parity compares the artifact with what the published model computes.

onnx2torch (1.5.15) declares torchvision, and imports it for two converters (NonMaxSuppression,
RoiAlign); the PyPI torchvision here is a CUDA build that fails to import beside the CPU torch
edgekit pins. scripts/setup.sh therefore installs onnx2torch with --no-deps, and a model with
those two ops is refused by name (exit 2) when torchvision cannot be imported.
"""

from __future__ import annotations

import importlib
import re
import sys
import tempfile
import types
from pathlib import Path

from edgekit.errors import MissingDependency, UnsupportedModel

NEEDS_TORCHVISION = ("NonMaxSuppression", "RoiAlign")
INSTALL = "pip install --no-deps onnx2torch==1.5.15"


def _import_onnx2torch():
    """onnx2torch, importable without a working torchvision (see the module docstring); raises
    MissingDependency (exit 3) with the install line when it is not installed."""
    stubbed = False
    try:
        import torchvision  # noqa: F401  (a working one: nothing to do)
    except Exception:  # missing, or a CUDA build beside the CPU torch ("operator torchvision::nms does not exist")
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        stub, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
        stub.ops, ops.roi_align = ops, None
        sys.modules.update({"torchvision": stub, "torchvision.ops": ops})
        stubbed = True
    try:
        return importlib.import_module("onnx2torch")
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "onnx2torch":
            raise
        raise MissingDependency("An .onnx model reaches ExecuTorch and LiteRT through onnx2torch, which is not "
                                "installed.", f"Install it with: {INSTALL} (its metadata asks for torchvision, "
                                "which edgekit does not need).") from exc
    finally:
        if stubbed:  # nobody else may take the placeholder for torchvision
            for name in ("torchvision", "torchvision.ops"):
                sys.modules.pop(name, None)


def torch_source(source):
    """The ONNX SourceModel → a SourceModel (framework "torch") whose `native` is onnx2torch's
    GraphModule of the static, constant-folded graph, with the same inputs, output names and
    reference (ONNX Runtime). Raises MissingDependency (exit 3) without onnx2torch;
    UnsupportedModel (exit 2) naming an ONNX op onnx2torch has no converter for."""
    import onnx
    import torch

    from edgekit.sources import SourceModel

    from .onnx_to_onnx import static_model

    onnx2torch = _import_onnx2torch()
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp:
        path = Path(tmp) / "static.onnx"
        static_model(source, path)
        model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    blocked = sorted(ops & set(NEEDS_TORCHVISION)) if "torchvision" not in sys.modules else []
    if blocked:
        raise UnsupportedModel(f"The ONNX model uses {', '.join(blocked)}, which onnx2torch converts only with "
                               "torchvision, and torchvision cannot be imported here.",
                               "Cut the graph before that op (post-process on the app side), or install a "
                               "torchvision built for this torch.")
    _spatial_means_as_global_pools(model)
    try:
        gm = onnx2torch.convert(model).eval()
    except Exception as exc:
        op = re.search(r"operation_type='(\w+)', version=(\d+)", str(exc))
        said = f"it has no converter for the op {op.group(1)}" if op else f"{type(exc).__name__}: {str(exc)[:300]}"
        raise UnsupportedModel(f"onnx2torch cannot convert the ONNX model {source.origin}: {said}.",
                               "That ONNX op has no PyTorch equivalent in onnx2torch; --to onnx still takes the "
                               "model (fixed shapes, recipes).") from exc
    _constants_as_values(gm)
    _static_reshapes(gm)
    _name_inputs(gm, list(source.extra["input_names"]))
    dtypes = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64, "int32": torch.int32,
              "bool": torch.bool, "int8": torch.int8, "uint8": torch.uint8}
    example = tuple(torch.zeros(s.shape, dtype=dtypes.get(s.dtype, torch.float32)) for s in source.inputs)
    return SourceModel(framework="torch", origin=source.origin, inputs=source.inputs, native=gm,
                       reference=source.reference, sha256=source.sha256, size_bytes=source.size_bytes,
                       extra={"example_inputs": example, "input_names": list(source.extra["input_names"]),
                              "output_names": list(source.extra["output_names"]), "via": "onnx2torch"})


def _spatial_means_as_global_pools(model) -> int:
    """Rewrite, in MODEL (an onnx.ModelProto), each ReduceMean over every spatial axis with
    keepdims=1 (axes 2..rank-1, as an attribute or, from opset 18, a constant input) as the
    GlobalAveragePool it equals. torch.onnx.export (opset 18) writes a CNN's global pooling as
    ReduceMean-18, which onnx2torch 1.5.15 has no converter for (it knows ReduceMean up to
    opset 13), so every PyTorch CNN exported to ONNX was refused on the way to .pte/.tflite;
    GlobalAveragePool is the same op in every opset. Also drops Reshape's allowzero=1 (which
    onnx2torch refuses) where the constant shape has no 0, the only case it changes anything.
    Returns the number of ReduceMean nodes rewritten."""
    import onnx
    from onnx import helper, numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    ranks = {v.name: len(v.type.tensor_type.shape.dim)
             for v in list(onnx.shape_inference.infer_shapes(model).graph.value_info) + list(model.graph.input)}
    done = 0
    for n in model.graph.node:  # allowzero=1 (torch.onnx writes it) only differs when the shape holds a 0
        if n.op_type == "Reshape" and len(n.input) > 1 and n.input[1] in consts and 0 not in consts[n.input[1]]:
            keep = [a for a in n.attribute if a.name != "allowzero"]
            del n.attribute[:]
            n.attribute.extend(keep)
    for i, n in enumerate(list(model.graph.node)):
        if n.op_type != "ReduceMean" or n.input[0] not in ranks:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        axes = attrs.get("axes")
        if axes is None and len(n.input) > 1 and n.input[1] in consts:
            axes = consts[n.input[1]].tolist()
        rank = ranks[n.input[0]]
        if axes is None or attrs.get("keepdims", 1) != 1 or rank < 3 or \
                sorted(a % rank for a in axes) != list(range(2, rank)):
            continue
        model.graph.node.remove(n)
        model.graph.node.insert(i, helper.make_node("GlobalAveragePool", [n.input[0]], [n.output[0]],
                                                    name=(n.name or n.output[0]) + "_global_pool"))
        done += 1
    return done


def _constants_as_values(gm) -> None:
    """onnx2torch keeps the graph's constant tensors (Resize scales, Reshape shapes, ...) as
    buffers; torch.export treats buffers as data and then cannot read a shape from one
    ("Could not guard on data-dependent expression"). As plain attributes they are constants
    whose values export sees."""
    holder = getattr(gm, "initializers", None)
    if holder is None:
        return
    for name, value in list(holder._buffers.items()):
        del holder._buffers[name]
        object.__setattr__(holder, name, value)


def versions() -> dict:
    """{package: version} of the ONNX hop (onnx, onnxruntime, onnx2torch)."""
    from . import package_versions

    return package_versions("onnx", "onnxruntime", "onnx2torch")


def via_torch(torch_path, source, recipe, dest, options):
    """Convert the ONNX SOURCE with the PyTorch converter module TORCH_PATH (same recipes,
    options, result and errors) from `torch_source(source)`; the artifact records
    `converted_via` "onnx2torch" and the hop's tool versions."""
    artifact = torch_path.convert(torch_source(source), recipe, dest, options)
    artifact.extra["converted_via"] = "onnx2torch"
    artifact.tools = {**artifact.tools, **versions()}
    return artifact


def _name_inputs(gm, names: list[str]) -> None:
    """Give forward() the ONNX input names (onnx2torch calls them input_1, ...): the PyTorch
    converters pass inputs by name so the artifact keeps them. Names that are not Python
    identifiers stay as they are (the inputs then go by position)."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(names) or not all(n.isidentifier() for n in names):
        return
    for node, name in zip(placeholders, names):
        node.target = name
        node.name = name
    gm.recompile()


def _static_reshapes(gm) -> None:
    """Swap onnx2torch's Reshape, Slice and (Un)Squeeze-with-axes-input modules for ones
    torch.export can trace: its Reshape tests `torch.any(shape == 0)`, a tensor op export cannot
    decide on a shape ("data-dependent"), its Slice calls `.numpy()` on the bounds, its
    (Un)Squeeze loops over a sorted axes tensor; ours read the constant shapes, bounds and axes as
    Python numbers (ONNX semantics kept: a 0 dimension copies the input's, -1 is inferred;
    negative steps flip as onnx2torch does; negative axes count from the end)."""
    import torch

    class _Reshape(torch.nn.Module):
        def forward(self, x, shape):
            dims = [int(d) for d in shape.tolist()]
            return torch.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(dims)])

    class _Slice(torch.nn.Module):  # onnx2torch's calls .numpy() on its inputs: export's fake tensors have none
        def forward(self, x, starts, ends, axes=None, steps=None):
            starts, ends = [int(v) for v in starts.tolist()], [int(v) for v in ends.tolist()]
            axes = list(range(len(starts))) if axes is None else [int(a) % x.dim() for a in axes.tolist()]
            steps = [1] * len(starts) if steps is None else [int(v) for v in steps.tolist()]
            index = [slice(None)] * x.dim()
            for start, end, axis, step in zip(starts, ends, axes, steps):
                if step < 0:  # as onnx2torch: flip, then slice forward
                    x = torch.flip(x, dims=[axis])
                    start, end, step = -start - 1, -end - 1, -step
                index[axis] = slice(start, end, step)
            return x[tuple(index)]

    class _Squeeze(torch.nn.Module):  # theirs iterates torch.sort(axes): a tensor loop export cannot unroll
        def forward(self, x, axes=None):
            if axes is None or axes.numel() == 0:
                return torch.squeeze(x)
            for axis in sorted((int(a) % x.dim() for a in axes.tolist()), reverse=True):
                x = torch.squeeze(x, dim=axis)
            return x

    class _Unsqueeze(torch.nn.Module):  # axes name the output's positions: insert in ascending order
        def forward(self, x, axes):
            rank = x.dim() + axes.numel()
            for axis in sorted(int(a) % rank for a in axes.tolist()):
                x = torch.unsqueeze(x, dim=axis)
            return x

    swap = {"OnnxReshape": _Reshape, "OnnxSlice": _Slice, "OnnxSqueezeDynamicAxes": _Squeeze,
            "OnnxUnsqueezeDynamicAxes": _Unsqueeze}
    for name, module in list(gm.named_modules()):
        cls = swap.get(type(module).__name__)
        if cls is not None and name:
            parent, _, child = name.rpartition(".")
            setattr(gm.get_submodule(parent) if parent else gm, child, cls())

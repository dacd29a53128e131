"""Per-layer parity against a PyTorch reference: its intermediate values (TorchTap), and a
.tflite candidate converted by litert-torch matched to them module by module.

PyTorch references are read from torch.export's graph of the reference module: a leaf module's
value is the output of the last graph node it computes (nn_module_stack). litert-torch names a
.tflite tensor by the modules of the ops fused into it (`Net/torch.nn.modules.conv.Conv2d_conv2;1`).
The .pte candidate's side is edgekit.layers_executorch, which uses TorchTap too.
"""

from __future__ import annotations

import warnings

import numpy as np

from .errors import BadInput
from .layers_layout import Matched
from .layers_tflite import NOT_IN_TFLITE, TFLiteProbe, not_observable

# functional activations a converter fuses into the preceding op (litert-torch, XNNPACK)
ACTIVATIONS = ("relu", "relu6", "hardtanh", "clamp", "sigmoid", "tanh", "gelu", "silu", "hardswish", "leaky_relu")


class TorchTap:
    """The reference nn.Module's intermediate values by leaf module, read from torch.export's
    graph of it: a module's value is the output of the last node it computes (nn_module_stack);
    ops of the root module itself (functional relu, flatten) belong to no module.

    Attributes:
        modules: leaf module paths ('conv1', 'block.0') in the order the graph computes them.
        last: module path → the fx node of its value; types: module path → class name;
        chains: module path → the called modules below the root as litert-torch names them.
    """

    def __init__(self, source):
        """Export (or take) the reference's graph.

        Args:
            source: the reference SourceModel, framework "torch" (an nn.Module, exported here
                with its example inputs) or "torch-exported" (a .pt2 ExportedProgram).

        Raises:
            UnsupportedModel (exit 2): torch.export of the module failed.
            BadInput (exit 2): any other framework.
        """
        import torch

        if source.framework == "torch-exported":
            ep = source.native
        elif source.framework == "torch":
            from .errors import UnsupportedModel

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ep = torch.export.export(source.native, tuple(source.extra["example_inputs"]))
            except Exception as exc:
                raise UnsupportedModel(f"--per-layer needs torch.export of the reference, which failed: "
                                       f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}",
                                       "Run without --per-layer for the output-level verdict.") from exc
        else:
            raise BadInput(f"--per-layer cannot read intermediate values of a {source.framework} reference.",
                           "Pass the nn.Module (file.py:factory) or a .pt2 as the reference.")
        self.gm = ep.module()
        self.example = tuple(source.extra["example_inputs"])
        self.input_names = list(source.extra["input_names"])
        nodes = [n for n in self.gm.graph.nodes if n.op == "call_function"]
        self.order = {n.name: i for i, n in enumerate(nodes)}
        self.last, self.types, self.chains = {}, {}, {}
        for n in nodes:
            path, typ = module_of(n)
            if path:
                self.last[path] = n
                self.types[path] = typ
                self.chains[path] = _chain(n)
        self.modules = sorted(self.last, key=lambda p: self.order[self.last[p].name])
        out = next(n for n in self.gm.graph.nodes if n.op == "output")
        self.output_nodes = _flat_node_args(out.args)

    def activation_after(self, path: str):
        """The activation node (ACTIVATIONS) the module's output feeds alone, which converters
        fuse into the module's op; None when there is none."""
        node = self.last[path]
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_function":
            u = users[0]
            name = getattr(u.target, "__name__", str(u.target)).split(".")[0]
            if name.rstrip("_") in ACTIVATIONS and not module_of(u)[0]:
                return u
        return None

    def run(self, feeds: dict, want: set) -> dict:
        """One batch through the graph.

        Args:
            feeds: reference input name → np.ndarray (batch axis first; cast to the example
                input's dtype).
            want: names of the graph nodes to capture.

        Returns:
            {node name: np.ndarray} for the nodes in `want` (floats as float32).
        """
        import torch

        got = {}

        class Capture(torch.fx.Interpreter):
            def run_node(self, n):
                out = super().run_node(n)
                if n.name in want:
                    v = out[0] if isinstance(out, (tuple, list)) else out
                    got[n.name] = v.detach().float().numpy() if v.is_floating_point() else v.numpy()
                return out

        args = [torch.from_numpy(np.ascontiguousarray(feeds[name])).to(ex.dtype)
                for name, ex in zip(self.input_names, self.example)]
        with torch.no_grad():
            Capture(self.gm).run(*args)
        return got


def module_of(node) -> tuple[str, str]:
    """(leaf module path, its class name) from an fx graph node's nn_module_stack; ('', '') for a
    node of the root module."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    path, typ = list(stack.values())[-1]
    typ = typ if isinstance(typ, str) else getattr(typ, "__qualname__", str(typ))
    return path, typ.rsplit(".", 1)[-1]


def _chain(node) -> tuple:
    """The called modules below the root as litert-torch names them: ('pkg.Block_0', 'torch.nn.modules.conv.Conv2d_conv')."""
    out = []
    for path, typ in list((node.meta.get("nn_module_stack") or {}).values())[1:]:
        typ = typ if isinstance(typ, str) else f"{typ.__module__}.{typ.__qualname__}"
        out.append(f"{typ}_{path.rsplit('.', 1)[-1]}")
    return tuple(out)


def _flat_node_args(args) -> list[str]:
    out = []
    for a in args if isinstance(args, (list, tuple)) else [args]:
        if isinstance(a, (list, tuple)):
            out += _flat_node_args(a)
        elif isinstance(a, dict):
            out += _flat_node_args(list(a.values()))
        elif hasattr(a, "name"):
            out.append(a.name)
    return out


# -- .tflite vs PyTorch -------------------------------------------------------------------------

def torch_attribution(tap: TorchTap, probe: TFLiteProbe) -> dict:
    """Module path → (candidate tensor, op type, whether a root-module op is fused in).

    litert-torch names a tensor by the scopes of the ops fused into it, ';'-separated:
    'Net/torch.nn.modules.conv.Conv2d_conv2;1' (a leaf module), a bare 'Net' part when an op of
    the parent (a functional relu) is fused in. A module's value is the last tensor it owns.
    """
    known = sorted(tap.modules, key=len, reverse=True)
    by_chain = {c: p for p, c in tap.chains.items()}
    rank = {p: i for i, p in enumerate(tap.modules)}
    owner = {}
    for op_type, t in probe.ops:
        found, parent = set(), False
        if t in probe.output_names:
            found |= {p for p in tap.modules if tap.last[p].name in tap.output_nodes}
        else:
            for part in probe.name(t).split(";"):
                comps = [c for c in part.split("/") if c]
                if not comps or comps[-1].isdigit():
                    continue
                leaf = by_chain.get(tuple(comps[1:]))  # the full chain of called modules; else the last one's name
                if leaf is None and len(comps) > 1:
                    leaf = next((p for p in known if comps[-1].endswith("_" + p)), None)
                if leaf:
                    found.add(leaf)
                else:
                    parent = True
        if found:
            owner[t] = (max(found, key=rank.get), op_type, parent)
    best = {}
    for _, t in probe.ops:  # execution order: the last tensor a module owns is its output
        if t in owner:
            best[owner[t][0]] = (t, owner[t][1], owner[t][2])
    return best


def vs_torch(tap: TorchTap, probe: TFLiteProbe, samples, in_map: dict, progress=None):
    """Compare each leaf module's value with the candidate tensor that holds it (after the
    activation the converter fused in, when a root-module op is fused into the tensor).

    Args:
        tap: the reference's TorchTap.
        probe: the candidate's TFLiteProbe.
        samples, in_map, progress: as for edgekit.layers_tflite.vs_tflite.

    Returns:
        (rows, not_observable), as vs_tflite.
    """
    best = torch_attribution(tap, probe)
    chosen, missing, folded = [], [], {}
    for path in tap.modules:
        typ = tap.types[path]
        if path not in best:
            missing.append(not_observable(path, typ, f"folded into {folded[path]}'s op (compared there)"
                                          if path in folded else NOT_IN_TFLITE))
            continue
        t, op_type, parent = best[path]
        node, label, last = tap.last[path], typ, path
        bn = _folded_batchnorm(tap, path, best)
        if bn:  # the converter folded the BatchNorm after it into its op: the tensor holds the BatchNorm's value
            folded[bn] = path
            node, label, last = tap.last[bn], f"{typ} + {tap.types[bn]} {bn} (folded)", bn
        act = tap.activation_after(last) if parent or bn else None
        if act is not None:  # the converter fused the activation that follows the module: compare after it
            node, label = act, f"{label} + {getattr(act.target, '__name__', 'act').split('.')[0]}"
        ref_shape = tuple(node.meta["val"].shape) if hasattr(node.meta.get("val"), "shape") else None
        if ref_shape is None or int(np.prod(ref_shape[1:])) != int(np.prod(probe.shape(t)[1:])):
            missing.append(not_observable(path, typ, f"shape {ref_shape and ref_shape[1:]} ≠ tensor "
                                                     f"{probe.shape(t)[1:]} (fused or reshaped)"))
            continue
        chosen.append((path, label, node.name, t, op_type))
    chosen = probe.in_execution_order(chosen, lambda c: c[3])
    acc = [Matched() for _ in chosen]
    want = {c[2] for c in chosen}
    n = len(samples)
    for i in range(n):
        refs = tap.run({k: v[i : i + 1] for k, v in samples.inputs.items()}, want)
        probe.run_sample(samples, i, in_map)
        for k, (_, _, node, t, _) in enumerate(chosen):
            acc[k].add(refs[node], probe.get(t))
        if progress:
            progress(i + 1, n)
    rows = [probe.row(t, path, f"{label} → {op_type}", acc[k]) for k, (path, label, _, t, op_type) in enumerate(chosen)]
    return rows, missing


def _folded_batchnorm(tap: TorchTap, path: str, best: dict) -> str | None:
    """The BatchNorm module computed right after PATH that has no tensor of its own in the
    .tflite (litert-torch folds it into the convolution before it), else None."""
    i = tap.modules.index(path)
    nxt = tap.modules[i + 1] if i + 1 < len(tap.modules) else None
    return nxt if nxt and nxt not in best and "BatchNorm" in tap.types[nxt] else None

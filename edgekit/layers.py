"""Per-layer parity: where does a converted model start to diverge from its reference?

| candidate | reference          | how intermediate values are matched                              |
|-----------|--------------------|------------------------------------------------------------------|
| .tflite   | Keras model        | tensor names carry the Keras layer scopes (`model_1/conv2_1/...`)|
| .tflite   | another .tflite    | tensors of the same name and shape                               |
| .tflite   | PyTorch model      | litert-torch names tensors by module (`Net/...Conv2d_conv2;1`)    |
| .pte      | PyTorch model      | ETRecord debug handles → modules; ETDump intermediate outputs    |
|           |                    | (edgekit.layers_executorch)                                      |

PyTorch references are read from torch.export's graph of the reference module (TorchTap):
a leaf module's value is the output of the last graph node it computes (nn_module_stack).

TFLite intermediates are read from an interpreter that preserves all tensors, without the
default XNNPACK delegate (a delegated subgraph hides its insides); int8/int16 tensors are
dequantized. Metrics are edgekit.metrics, accumulated over samples (metrics.Running).

A candidate tensor is read in the reference's layout (litert-torch keeps 4-D intermediates NHWC,
PyTorch is NCHW) by its shape; when several readings fit (C == H == W: the same shape either way),
by its values, once per layer over all samples (Matched). Each row's `layout` says which was used.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from . import metrics
from .artifacts import format_of
from .errors import BadInput, require
from .parity import adapt_layout
from .runtimes import dequantize, quantize

MEMORY_BUDGET = 256 << 20  # bytes of reference intermediates held at once (Keras references)
WORST = 5


def check_supported(reference, cand_path: Path) -> None:
    """Refuse an unsupported pair before any work (exit 2), naming what is supported."""
    fmt = format_of(cand_path)
    if fmt in ("tflite", "edgetpu"):
        return
    if fmt == "executorch":
        from .layers_executorch import find_etrecord

        find_etrecord(cand_path)  # BadInput naming the fix when the .pte has none
        return
    raise BadInput(
        f"--per-layer is not available for {fmt} candidates yet.",
        "Per-layer localisation works for .tflite candidates (against Keras, PyTorch or another .tflite) "
        "and .pte candidates with an ETRecord (against PyTorch); run without --per-layer for the "
        "output-level verdict.",
    )


def compare_layers(ref, cand_path: Path, samples, in_map: dict, thresholds: dict, progress=None) -> dict:
    """`ref` is an edgekit.validation.Reference. Returns {layers, first_divergence, worst_layers,
    not_observable, per_layer_samples} (+ `executorch` details for a .pte candidate)."""
    if format_of(cand_path) == "executorch":
        from .layers_executorch import compare_pte

        rows, unmatched, details = compare_pte(ref, cand_path, samples, in_map, progress)
        if not rows:
            raise BadInput("--per-layer observed no module of the reference in the .pte.",
                           "; ".join(f"{u['layer']}: {u['reason']}" for u in unmatched[:5]) or
                           "Was the .pte converted from this model?")
        return {**summarize(rows, unmatched, thresholds, len(samples)), "executorch": details}
    probe = TFLiteProbe(cand_path)
    if ref.kind == "model" and ref.framework == "keras":
        rows, unmatched = _vs_keras(ref.native, probe, samples, in_map, progress)
    elif ref.kind == "artifact" and ref.format in ("tflite", "edgetpu"):
        rows, unmatched = _vs_tflite(TFLiteProbe(ref.path), probe, samples, in_map, progress)
    elif ref.kind == "model" and ref.framework in ("torch", "torch-exported"):
        rows, unmatched = _vs_torch(TorchTap(ref.native), probe, samples, in_map, progress)
    else:
        raise BadInput(
            f"--per-layer cannot match a {ref.framework or ref.format} reference with a .tflite candidate yet.",
            "Use the Keras or PyTorch model (or another .tflite) as the reference for per-layer localisation.",
        )
    if not rows:
        raise BadInput(
            "--per-layer found no intermediate tensor of the candidate that matches a reference layer.",
            "The tensor names of the .tflite carry no layer names the reference knows (was it converted "
            "from this model?).",
        )
    return summarize(rows, unmatched, thresholds, len(samples))


def summarize(rows: list[dict], unmatched: list[dict], thresholds: dict, n: int) -> dict:
    min_psnr, min_cos = thresholds.get("min_psnr_db"), thresholds.get("min_cosine")
    first = None
    for i, row in enumerate(rows):
        row["index"] = i
        why = []
        if min_psnr is not None and row["psnr_db"] < min_psnr:
            why.append(f"PSNR {row['psnr_db']:.1f} dB < {min_psnr:g}")
        if min_cos is not None and row["cosine"] < min_cos:
            why.append(f"cosine {row['cosine']:.5f} < {min_cos:g}")
        row["diverged"] = bool(why)
        if why and first is None:
            first = {k: row[k] for k in ("index", "layer", "op_type", "shape", "psnr_db", "cosine", "max_abs")}
            first["reason"] = "; ".join(why)
    worst = sorted(rows, key=lambda r: (r["psnr_db"], r["cosine"]))[:WORST]
    return {
        "layers": rows,
        "first_divergence": first,
        "worst_layers": [r["layer"] for r in worst],
        "not_observable": unmatched,
        "per_layer_samples": n,
    }


# -- reading a candidate tensor in the reference's layout ---------------------------------------

LAYOUTS = {"NHWC→NCHW": (0, 3, 1, 2), "NCHW→NHWC": (0, 2, 3, 1)}  # candidate axes → reference axes
CLEARLY_BETTER = 0.5  # another reading replaces "as is" only below this share of its squared error


def readings(c_shape: tuple, r_shape: tuple) -> dict:
    """The ways a candidate tensor can be read as the reference's, "as is" first when it fits:
    {name: axis order, or None for as is (reshaped when only the rank differs)}."""
    fits = {"as is": None} if tuple(c_shape[1:]) == tuple(r_shape[1:]) else {}
    if len(c_shape) == 4 == len(r_shape):
        fits.update({k: p for k, p in LAYOUTS.items() if tuple(c_shape[i] for i in p[1:]) == tuple(r_shape[1:])})
    return fits or {"as is": None}


class Matched:
    """metrics.Running of one candidate tensor against its reference value, for every reading that
    fits the shapes. With several (C == H == W), the values choose once over all samples: the one
    with the least error, "as is" unless another is clearly better (a Keras NHWC tensor stays)."""

    def __init__(self):
        self.fits = self.acc = None

    def add(self, ref, cand) -> None:
        if self.fits is None:
            self.fits = readings(cand.shape, ref.shape)
            self.acc = {k: metrics.Running() for k in self.fits}
        for k, perm in self.fits.items():
            self.acc[k].add(ref, (cand if perm is None else np.transpose(cand, perm)).reshape(ref.shape))

    def result(self) -> dict:
        if self.fits is None:
            return {**metrics.Running().result(), "layout": "as is"}
        best = next(iter(self.acc))
        for k, run in self.acc.items():
            if run.sum_sq_err < CLEARLY_BETTER * self.acc[best].sum_sq_err:
                best = k
        return {**self.acc[best].result(), "layout": best + (" (by values)" if len(self.acc) > 1 else "")}


# -- the TFLite candidate ---------------------------------------------------------------------

class TFLiteProbe:
    """A TFLite interpreter that keeps every intermediate tensor, listed in execution order."""

    def __init__(self, path: Path):
        interp_mod = require("ai_edge_litert.interpreter", "tf", "ai-edge-litert (the TFLite runtime)")
        from .runtimes.tflite import _tflite_spec

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": it is, here
            self.it = interp_mod.Interpreter(
                model_path=str(path),
                experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=interp_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        self.it.allocate_tensors()
        self.tensors = {d["index"]: d for d in self.it.get_tensor_details()}
        sigs = self.it.get_signature_list()
        if len(sigs) == 1:
            runner = self.it.get_signature_runner(next(iter(sigs)))
            ins = [dict(d, name=n) for n, d in runner.get_input_details().items()]
            outs = [dict(d, name=n) for n, d in runner.get_output_details().items()]
        else:
            ins, outs = self.it.get_input_details(), self.it.get_output_details()
        self.inputs = {d["name"]: (d["index"], _tflite_spec(d)) for d in ins}
        self.output_names = {d["index"]: d["name"] for d in outs}  # tensor index → signature name
        self.ops = []  # (op type, output tensor index), in execution order
        for op in self.it._get_ops_details():  # no public op list; stable across releases
            if op["op_name"] == "DELEGATE":
                continue
            for t in op["outputs"]:
                d = self.tensors.get(int(t))
                if d is not None and np.dtype(d["dtype"]).kind in "fiu" and np.dtype(d["dtype"]).name not in ("int32", "int64"):
                    self.ops.append((op["op_name"], int(t)))
                elif d is not None and int(t) in self.output_names:
                    self.ops.append((op["op_name"], int(t)))

    def name(self, t: int) -> str:
        return self.tensors[t]["name"]

    def shape(self, t: int) -> tuple:
        return tuple(int(x) for x in self.tensors[t]["shape"])

    def run(self, feeds: dict) -> None:
        """feeds: candidate input name → real values with a batch axis of 1."""
        for name, x in feeds.items():
            idx, spec = self.inputs[name]
            self.it.set_tensor(idx, quantize(adapt_layout(np.asarray(x), spec.shape), spec))
        self.it.invoke()

    def get(self, t: int) -> np.ndarray:
        d = self.tensors[t]
        raw = self.it.get_tensor(t)
        q = d.get("quantization_parameters") or {}
        scales, zps = np.asarray(q.get("scales", [])), np.asarray(q.get("zero_points", []))
        if np.dtype(d["dtype"]).kind in "iu" and scales.size:
            if scales.size == 1:
                return ((raw.astype(np.float64) - zps[0]) * scales[0]).astype(np.float32)
            axis = int(q.get("quantized_dimension", 0))
            shape = [1] * raw.ndim
            shape[axis] = -1
            return ((raw.astype(np.float64) - zps.reshape(shape)) * scales.reshape(shape)).astype(np.float32)
        return np.array(raw, dtype=np.float32)

    def feed_for(self, samples, i: int, in_map: dict) -> dict:
        return {in_map[k].name: v[i : i + 1] for k, v in samples.inputs.items()}


def _friendly(tensor_name: str) -> str:
    """'model_1/conv1_1/Relu;model_1/conv1_1/convolution' → 'conv1_1'."""
    parts = []
    for part in tensor_name.split(";"):
        comps = part.split("/")
        scope = "/".join(comps[1:-1]) if len(comps) > 2 else part
        if scope not in parts:
            parts.append(scope)
    return "+".join(parts)


# -- .tflite vs .tflite -----------------------------------------------------------------------

def _vs_tflite(ref: TFLiteProbe, cand: TFLiteProbe, samples, in_map, progress):
    ref_by_name = {ref.name(t): t for _, t in ref.ops}
    ref_inputs = {n: spec for n, (_, spec) in ref.inputs.items()}
    pairs, unmatched = [], []
    for op_type, t in cand.ops:
        name = cand.name(t)
        rt = ref_by_name.get(name)
        if rt is None and t in cand.output_names:  # graph outputs: by signature name
            rt = next((r for r, n in ref.output_names.items() if n == cand.output_names[t]), None)
        if rt is None or np.prod(ref.shape(rt)) != np.prod(cand.shape(t)):
            unmatched.append({"tensor": name, "op_type": op_type, "reason": "no tensor of this name and size in the reference"})
            continue
        pairs.append((op_type, t, rt))
    acc = {t: Matched() for _, t, _ in pairs}
    n = len(samples)
    ref_names = list(ref_inputs)
    for i in range(n):
        cfeed = cand.feed_for(samples, i, in_map)
        # the reference artifact's inputs are the samples' keys (data was loaded against them)
        ref.run({k: samples.inputs[k][i : i + 1] for k in ref_names if k in samples.inputs})
        cand.run(cfeed)
        for _, t, rt in pairs:
            acc[t].add(ref.get(rt), cand.get(t))
        if progress:
            progress(i + 1, n)
    rows = []
    for op_type, t, rt in pairs:
        label = cand.output_names.get(t) or _friendly(cand.name(t))
        rows.append({"layer": label, "op_type": op_type, "shape": list(cand.shape(t)), "tensor": cand.name(t),
                     **acc[t].result()})
    return rows, unmatched


# -- .tflite vs Keras -------------------------------------------------------------------------

def _keras_attribution(model, probe: TFLiteProbe):
    """Keras layer name → the candidate tensor that holds its output (the last one in execution
    order whose name carries the layer's scope; a graph output by its signature name)."""
    import keras

    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    order = {l.name: i for i, l in enumerate(layers)}
    model_scope = model.name

    def layer_of(component: str):
        stripped = re.sub(r"_\d+$", "", component)  # TF uniquifies scopes: conv1 → conv1_1
        if stripped in order and stripped != model_scope:
            return stripped
        if component in order:
            return component
        return None

    owner = {}
    for op_type, t in probe.ops:
        found = set()
        if t in probe.output_names and probe.output_names[t] in order:
            found.add(probe.output_names[t])
        else:
            for part in probe.name(t).split(";"):
                for comp in part.split("/")[:-1]:
                    name = layer_of(comp)
                    if name:
                        found.add(name)
                        break
        if found:
            owner[t] = (max(found, key=order.get), op_type)  # fused ops hold the later layer's output
    best = {}
    for op_type, t in probe.ops:  # execution order: the last tensor a layer owns is its output
        if t in owner:
            best[owner[t][0]] = (t, owner[t][1])
    return layers, best


def _vs_keras(source, probe: TFLiteProbe, samples, in_map, progress):
    import keras

    model = source.native
    layers, best = _keras_attribution(model, probe)
    unmatched = []
    chosen = []
    for layer in layers:
        if layer.name not in best:
            unmatched.append({"layer": layer.name, "op_type": type(layer).__name__,
                              "reason": "no tensor in the .tflite (fused into a neighbour or removed)"})
            continue
        try:
            out = layer.output
        except (AttributeError, ValueError):
            out = None
        if out is None or isinstance(out, (list, tuple, dict)):
            unmatched.append({"layer": layer.name, "op_type": type(layer).__name__,
                              "reason": "the layer has several outputs"})
            continue
        t, op_type = best[layer.name]
        if int(np.prod([d for d in out.shape[1:]])) != int(np.prod(probe.shape(t)[1:])):
            unmatched.append({"layer": layer.name, "op_type": type(layer).__name__,
                              "reason": f"shape {tuple(out.shape[1:])} ≠ tensor {probe.shape(t)[1:]}"})
            continue
        chosen.append((layer, out, t, op_type))
    if not chosen:
        return [], unmatched
    # Execution order of the candidate is a topological order of what it computes.
    exec_pos = {t: i for i, (_, t) in enumerate(probe.ops)}
    chosen.sort(key=lambda c: exec_pos[c[2]])
    inputs = model.inputs
    tap = keras.Model(inputs, [c[1] for c in chosen])
    specs = source.inputs
    n = len(samples)
    per_sample = sum(int(np.prod(probe.shape(c[2]))) * 4 for c in chosen)
    chunk = max(1, min(64, MEMORY_BUDGET // max(per_sample, 1)))
    acc = [Matched() for _ in chosen]
    for start in range(0, n, chunk):
        xs = [samples.inputs[s.name][start : start + chunk] for s in specs]
        ys = tap(xs, training=False)  # tap's inputs are model.inputs, a list
        ys = [np.asarray(y) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]
        for j in range(len(xs[0])):
            i = start + j
            probe.run(probe.feed_for(samples, i, in_map))
            for k, (_, _, t, _) in enumerate(chosen):
                acc[k].add(ys[k][j : j + 1], probe.get(t))
            if progress:
                progress(i + 1, n)
    rows = [{"layer": layer.name, "op_type": f"{type(layer).__name__} → {op_type}", "shape": list(probe.shape(t)),
             "tensor": probe.name(t), **acc[k].result()}
            for k, (layer, _, t, op_type) in enumerate(chosen)]
    return rows, unmatched


# -- PyTorch references ------------------------------------------------------------------------

ACTIVATIONS = ("relu", "relu6", "hardtanh", "clamp", "sigmoid", "tanh", "gelu", "silu", "hardswish", "leaky_relu")


class TorchTap:
    """The reference nn.Module's intermediate values by leaf module, read from torch.export's
    graph of it: a module's value is the output of the last node it computes (nn_module_stack);
    ops of the root module itself (functional relu, flatten) belong to no module."""

    def __init__(self, source):
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
        """The activation node the module's output feeds alone (converters fuse it into the op)."""
        node = self.last[path]
        users = list(node.users)
        if len(users) == 1 and users[0].op == "call_function":
            u = users[0]
            name = getattr(u.target, "__name__", str(u.target)).split(".")[0]
            if name.rstrip("_") in ACTIVATIONS and not module_of(u)[0]:
                return u
        return None

    def run(self, feeds: dict, want: set) -> dict:
        """One batch through the graph; {node name: np.ndarray} for the nodes in `want`."""
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
    """(leaf module path, its class name) from a graph node's nn_module_stack; ('', '') at the root."""
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

def _torch_attribution(tap: TorchTap, probe: TFLiteProbe):
    """Module path → (candidate tensor, op type, reference node). litert-torch names a tensor by
    the scopes of the ops fused into it, ';'-separated: 'Net/torch.nn.modules.conv.Conv2d_conv2;1'
    (a leaf module), a bare 'Net' part when an op of the parent (a functional relu) is fused in."""
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


def _vs_torch(tap: TorchTap, probe: TFLiteProbe, samples, in_map, progress):
    best = _torch_attribution(tap, probe)
    chosen, unmatched = [], []
    for path in tap.modules:
        typ = tap.types[path]
        if path not in best:
            unmatched.append({"layer": path, "op_type": typ, "reason": "no tensor in the .tflite (fused into a neighbour or removed)"})
            continue
        t, op_type, parent = best[path]
        node, label = tap.last[path], typ
        act = tap.activation_after(path) if parent else None
        if act is not None:  # the converter fused the activation that follows the module: compare after it
            node, label = act, f"{typ} + {getattr(act.target, '__name__', 'act').split('.')[0]}"
        ref_shape = tuple(node.meta["val"].shape) if hasattr(node.meta.get("val"), "shape") else None
        if ref_shape is None or int(np.prod(ref_shape[1:])) != int(np.prod(probe.shape(t)[1:])):
            unmatched.append({"layer": path, "op_type": typ,
                              "reason": f"shape {ref_shape and ref_shape[1:]} ≠ tensor {probe.shape(t)[1:]} (fused or reshaped)"})
            continue
        chosen.append((path, label, typ, node.name, t, op_type))
    exec_pos = {t: i for i, (_, t) in enumerate(probe.ops)}
    chosen.sort(key=lambda c: exec_pos[c[4]])
    acc = [Matched() for _ in chosen]
    want = {c[3] for c in chosen}
    n = len(samples)
    for i in range(n):
        refs = tap.run({k: v[i : i + 1] for k, v in samples.inputs.items()}, want)
        probe.run(probe.feed_for(samples, i, in_map))
        for k, (_, _, _, node, t, _) in enumerate(chosen):
            acc[k].add(refs[node], probe.get(t))
        if progress:
            progress(i + 1, n)
    rows = [{"layer": path, "op_type": f"{label} → {op_type}", "shape": list(probe.shape(t)), "tensor": probe.name(t),
             **acc[k].result()}
            for k, (path, label, typ, _, t, op_type) in enumerate(chosen)]
    return rows, unmatched

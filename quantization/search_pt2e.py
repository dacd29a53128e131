"""The accuracy-aware search for PT2E (ExecuTorch/XNNPACK): layers are the modules that own a
convolution or a linear layer; a layer is kept float by removing its nodes' annotations before
`prepare_pt2e` (`set_module_name(name, None)` asserts in torchao 0.18, FACTS.md).

Candidates are scored on the converted (fake-quant) module in eager, before any lowering:
calibrate once with everything quantized (`convert_pt2e(fold_quantize=False)`), then a set of
float layers is simulated by rewiring their conv/linear inputs and weights past the
quantize→dequantize pairs (no recalibration; the graph is restored after each evaluation): that
ranks the layers. The greedy steps' candidates are real re-quantizations scored the same way
(converted module in eager, before lowering). The search's answer is then confirmed with a real re-quantization (annotations removed, calibrated
again, the same rewiring so that XNNPACK sees a float layer with float inputs) on the search
split, and only that winner is lowered by the converter.
"""

from __future__ import annotations

import numpy as np

from . import QuantRecipe, pt2e

WEIGHTED = ("conv", "linear", "addmm", "mm", "bmm", "matmul")  # aten op name prefixes (conv2d, convolution, ...)


SENSITIVITY_SAMPLES = 16  # search-split samples that rank the layers (each layer is one eager pass over them)
FUSED_ACTIVATIONS = ("relu", "hardtanh", "clamp", "relu6")


def _op(node) -> str:
    return str(getattr(node.target, "__name__", node.target)).split(".")[0]


def _weighted(node) -> bool:
    return node.op == "call_function" and _op(node).startswith(WEIGHTED)


def layer_of(node) -> str | None:
    """The innermost module that owns NODE (its nn_module_stack's last entry, as a dotted name
    like "blocks.3.conv_dw"), or None for a node of the top-level module."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    path = str(path).replace("L['self'].", "").replace("L__self___", "")
    return path or None


def weighted_layers(gm) -> list[str]:
    """The modules of GM (an exported or converted GraphModule) that own a conv or matrix
    product, in graph order."""
    out: dict[str, None] = {}
    for n in gm.graph.nodes:
        if _weighted(n):
            name = layer_of(n)
            if name:
                out.setdefault(name, None)
    return list(out)


def skipping(quantizer, float_layers: set):
    """A PT2E Quantizer that annotates like QUANTIZER, then removes the annotations of every node
    owned by a module in FLOAT_LAYERS (those stay float after prepare/convert)."""
    from torchao.quantization.pt2e.quantizer import Quantizer

    class Skipping(Quantizer):
        def transform_for_annotation(self, model):
            return quantizer.transform_for_annotation(model)

        def annotate(self, model):
            quantizer.annotate(model)
            for n in model.graph.nodes:
                name = layer_of(n)
                if name and any(name == f or name.startswith(f + ".") for f in float_layers):
                    n.meta.pop("quantization_annotation", None)
                    # an activation fused into the layer's pattern (conv → relu → q) would make
                    # XNNPACK read the float layer as a quantized one ("Weight and Input should
                    # both be quantized"): its output stays float too
                    for u in list(n.users) if _weighted(n) else []:
                        if u.op == "call_function" and _op(u).startswith(FUSED_ACTIVATIONS):
                            u.meta.pop("quantization_annotation", None)
            _drop_dangling_shared(model)
            return model

        def validate(self, model):
            return quantizer.validate(model)

    return Skipping()


def _drop_dangling_shared(model) -> None:
    """Remove the annotation of every node whose SharedQuantizationSpec points at a node that is
    no longer annotated (max_pool sharing a removed relu's range), until none is left: prepare
    would fail with a KeyError on them."""
    import torch
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

    def annotated(node) -> bool:
        a = node.meta.get("quantization_annotation")
        return a is not None and (a.output_qspec is not None or bool(a.input_qspec_map))

    changed = True
    while changed:
        changed = False
        for n in model.graph.nodes:
            a = n.meta.get("quantization_annotation")
            if a is None:
                continue
            for spec in [*a.input_qspec_map.values(), a.output_qspec]:
                if not isinstance(spec, SharedQuantizationSpec):
                    continue
                ref = spec.edge_or_node
                ends = [ref] if isinstance(ref, torch.fx.Node) else [ref[1]]
                if any(not annotated(e) for e in ends):
                    n.meta.pop("quantization_annotation", None)
                    changed = True
                    break


def quantize(graph_module, example: tuple, recipe: QuantRecipe, calibration: list | None, float_layers=(),
             backend: str = "xnnpack", fold_quantize: bool = True):
    """pt2e.quantize with FLOAT_LAYERS (module names) left unquantized, with the annotation of a
    plain `--quantize int8` build (ReLU6 fused into its conv, weight scales unfloored:
    pt2e.with_fused_clamp, pt2e_floor), so that no float layers is exactly the default int8.
    Returns (converted GraphModule, the inner quantizer). Exceptions of prepare/convert propagate."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from . import pt2e_floor

    inner = pt2e_floor.unfloored(pt2e.quantizer_for(backend, recipe))
    q = skipping(inner, set(float_layers)) if float_layers else inner
    prepared = prepare_pt2e(graph_module, q)
    with torch.no_grad():
        for args in calibration or [example]:
            prepared(*args)
    converted = convert_pt2e(prepared, fold_quantize=fold_quantize)
    if float_layers:  # a float layer must take float inputs too (XNNPACK refuses dq → float linear)
        bypass(converted, set(float_layers))
        converted.graph.eliminate_dead_code()
        converted.recompile()
    move_exported_model_to_eval(converted)
    return converted, inner


def quantize_lowerable(exported, example: tuple, recipe: QuantRecipe, calibration: list | None, float_layers=(),
                       backend: str = "xnnpack", rounds: int = 8):
    """`quantize` of EXPORTED.module() with FLOAT_LAYERS float, plus every int8 layer that the
    float ones leave `stranded` (its quantized output read only by float layers, so nothing
    quantizes it: XNNPACK takes a conv with int8 inputs only with an int8 output, and the conv
    would fall outside the delegate with its per-channel weights, which no device kernel
    dequantizes). Repeats until none is stranded (at most ROUNDS times). Returns (converted
    GraphModule, the float layers used, in graph order)."""
    float_set = set(float_layers)
    for _ in range(rounds):
        gm, _ = quantize(exported.module(), example, recipe, calibration, tuple(sorted(float_set)), backend=backend)
        more = set(stranded(gm)) - float_set
        if not more:
            break
        float_set |= more
    order = weighted_layers(gm)
    return gm, [n for n in order if n in float_set] + sorted(float_set - set(order))


def stranded(gm) -> list[str]:
    """Layers of GM (a converted GraphModule) whose conv/linear reads int8 weights but whose
    output reaches no quantize op, directly or through the activation fused into it."""
    def quantizes(node) -> bool:
        return node.op == "call_function" and "quantize" in _op(node) and "dequantize" not in _op(node)

    out = []
    for n in gm.graph.nodes:
        if not _weighted(n) or len(n.args) < 2 or _through_qdq(n.args[1]) is None and not _dequantized(n.args[1]):
            continue
        users = list(n.users)
        reach = any(quantizes(u) for u in users) or any(
            u.op == "call_function" and _op(u).startswith(FUSED_ACTIVATIONS) and any(quantizes(v) for v in u.users)
            for u in users)
        if not reach and layer_of(n):
            out.append(layer_of(n))
    return out


def _dequantized(arg) -> bool:
    """True when ARG is a dequantize node (a folded int8 weight: its quantize was folded away)."""
    import torch

    return isinstance(arg, torch.fx.Node) and arg.op == "call_function" and "dequantize" in _op(arg)


def run_outputs(gm, batches: list) -> list:
    """GM run on each argument tuple of BATCHES (batch 1): a list of (N, ...) numpy arrays, one
    per output, in the module's output order."""
    import torch

    per_out: list[list] = []
    with torch.no_grad():
        for args in batches:
            out = gm(*args)
            outs = out if isinstance(out, (tuple, list)) else (out,)
            for i, o in enumerate(outs):
                if len(per_out) <= i:
                    per_out.append([])
                per_out[i].append(o.detach().float().numpy())
    return [np.concatenate(p, 0) for p in per_out]


class Engine:
    """The search engine (quantization.search) on a PT2E model.

    Args:
        exported: `torch.export.export(...)`'s ExportedProgram of the float model (its
            `.module()` is quantized again for each confirmation).
        example: example inputs tuple; recipe: the int8 QuantRecipe.
        calibration: calibration argument tuples (the calibration split).
        search: argument tuples of the search split (batch 1 each).
    """

    def __init__(self, exported, example, recipe, calibration, search, backend="xnnpack"):
        self.exported, self.example, self.recipe = exported, example, recipe
        self.calibration, self.search, self.backend = calibration, search, backend
        self.sim, _ = quantize(exported.module(), example, recipe, calibration, backend=backend, fold_quantize=False)
        self.layers = weighted_layers(self.sim)
        self.params = _params_by_layer(exported)  # ties in the ranking go to the smaller layer

    def evaluate(self, float_layers: set) -> list:
        """Outputs on the search split with FLOAT_LAYERS simulated float (see module docstring)."""
        changes = self._bypass(float_layers)
        try:
            return run_outputs(self.sim, self.search)
        finally:
            undo(self.sim, changes)

    def sensitivity(self, reference: list, labels=None) -> dict:
        """{layer: output PSNR lost, in dB, when that layer alone is int8}: every other weighted
        layer simulated float (see quantization.search for why this side), measured on the first
        SENSITIVITY_SAMPLES samples of the search split (a ranking, not the verdict: the greedy
        steps use the whole split). REFERENCE: the float outputs on the whole search split."""
        from . import search as S

        n = min(SENSITIVITY_SAMPLES, len(self.search))
        ref = [r[:n] for r in reference]
        full, batches = self.search, self.search[:n]
        self.search = batches
        every = set(self.layers)
        try:
            base = S._psnr_or_big(S.score(ref, self.evaluate(every))["psnr_db"])
            return {name: round(base - S._psnr_or_big(S.score(ref, self.evaluate(every - {name}))["psnr_db"]), 3)
                    for name in self.layers}
        finally:
            self.search = full

    def evaluate_exact(self, float_layers) -> list:
        """The greedy steps' candidates: a real re-quantization (`confirm`), since the
        simulation keeps the float layers' output ranges quantized and so is pessimistic."""
        if not float_layers:  # full int8: the calibrated simulation is exactly that (no float layer to bypass)
            return self.evaluate(set())
        return self.confirm(sorted(float_layers))

    def confirm(self, float_layers) -> list:
        """Outputs on the search split of a real re-quantization with FLOAT_LAYERS unannotated."""
        gm, _ = quantize_lowerable(self.exported, self.example, self.recipe, self.calibration, float_layers,
                                   backend=self.backend)
        return run_outputs(gm, self.search)

    def _bypass(self, float_layers: set) -> list:
        changes = bypass(self.sim, float_layers)
        self.sim.recompile()
        return changes


AGNOSTIC = ("pad", "constant_pad_nd", "view", "_unsafe_view", "reshape", "flatten", "permute", "transpose",
            "squeeze", "unsqueeze", "clone", "contiguous", "max_pool2d")  # ops that only move values


def bypass(gm, float_layers: set) -> list:
    """Rewire the conv/linear nodes of FLOAT_LAYERS in GM (a converted GraphModule) to take float
    values: the weights and input under their dequantize(quantize(x)) pairs, and an input reached
    through value-moving ops (AGNOSTIC: the padding module EfficientNet's convolutions call
    first) recomputed from the float value under them. Returns the changes as (node, arg index,
    old arg or None for a node it created) so that `undo` can restore GM; GM is not recompiled."""
    changes: list = []
    for n in list(gm.graph.nodes):
        if not _weighted(n) or layer_of(n) not in float_layers:
            continue
        for i, a in enumerate(n.args[:3]):
            created: list = []
            src = _float_source(gm, a, n, created, 0)
            if src is not None:
                changes.extend((c, None, None) for c in created)
                changes.append((n, i, a))
                n.update_arg(i, src)
    return changes


def undo(gm, changes: list) -> None:
    """Restore GM after `bypass` (arguments back, created nodes erased); recompiles GM."""
    for node, i, old in reversed(changes):
        if i is None:
            gm.graph.erase_node(node)
        else:
            node.update_arg(i, old)
    gm.recompile()


def _float_source(gm, arg, before, created: list, depth: int):
    """The float value ARG stands for without quantization, or None when ARG is not quantized:
    x for dequantize(quantize(x)); for a value-moving op on a quantized value, the same op
    recomputed (inserted before BEFORE, listed in CREATED) on the float value."""
    import torch

    src = _through_qdq(arg)
    if src is not None:
        return src
    if (depth < 8 and isinstance(arg, torch.fx.Node) and arg.op == "call_function" and arg.args
            and _op(arg).startswith(AGNOSTIC) and isinstance(arg.args[0], torch.fx.Node)):
        inner = _float_source(gm, arg.args[0], before, created, depth + 1)
        if inner is not None:
            with gm.graph.inserting_before(before):
                clone = gm.graph.call_function(arg.target, (inner, *arg.args[1:]), dict(arg.kwargs))
            clone.meta = dict(arg.meta)
            created.append(clone)
            return clone
    return None


def _through_qdq(arg):
    """The float value under dequantize(quantize(x)) feeding a compute op, or None."""
    import torch

    if not isinstance(arg, torch.fx.Node) or arg.op != "call_function" or "dequantize" not in _op(arg):
        return None
    q = arg.args[0] if arg.args else None
    if isinstance(q, torch.fx.Node) and q.op == "call_function" and "quantize" in _op(q) and "dequantize" not in _op(q):
        return q.args[0]
    return None


def searched(exported, example: tuple, recipe: QuantRecipe, calibration: list, request: dict,
             names: list, backend: str = "xnnpack"):
    """Run the accuracy-aware search on EXPORTED and quantize the winner for lowering.

    Args:
        exported: the float model's ExportedProgram; example: its example inputs.
        recipe: the int8 QuantRecipe; calibration: calibration-split argument tuples.
        request: `options.extra["search"]` from edgekit.build: {"bar": search.Bar, "samples":
            the search split (data.Samples), "reference": float outputs on it (list of (N, ...)
            arrays), "splits": sizes, "log": callable}.
        names: forward()'s input names (the Samples keys), in order.

    Returns (converted GraphModule with the chosen layers float, the `quantization` keys
    "float_layers" and "search" (schema `$defs/convert`)). Exceptions of PT2E propagate."""
    import time

    from . import search as S

    t0 = time.perf_counter()
    samples = request["samples"]
    batches = pt2e.calibration_batches(samples, names, [t.dtype for t in example])
    engine = Engine(exported, example, recipe, calibration, batches, backend)
    info = S.run(engine, request["reference"], request["bar"], samples.labels, request.get("log", lambda m: None))
    chosen = [f["name"] for f in info["float_layers"]]
    converted, used = quantize_lowerable(exported, example, recipe, calibration, chosen, backend=backend)
    sens = info.get("sensitivity") or {}
    info["float_layers"] += [{"name": n, "sensitivity_db": sens.get(n), "why": "lowering"} for n in used if n not in chosen]
    chosen = used
    confirmed = S.score(request["reference"], run_outputs(converted, batches), samples.labels)
    params = engine.params
    kept = sum(params.get(n, 0) for n in chosen)
    info.update({
        "confirmed": {**S._rounded(confirmed), "meets_bar": request["bar"].holds(confirmed)},
        "met": info["met"] and request["bar"].holds(confirmed),
        "splits": request.get("splits"), "layers": len(engine.layers), "seconds": round(time.perf_counter() - t0, 2),
        "scored_on": "PT2E converted (fake-quant) module in eager, before lowering",
        "cost": {"float_params": kept, "params": sum(params.values()),
                 "extra_bytes_vs_full_int8_estimate": 3 * kept},
    })
    for f in info["float_layers"]:
        f["params"] = params.get(f["name"], 0)
    return converted, {"float_layers": info.pop("float_layers"), "search": info}


def _params_by_layer(exported) -> dict:
    """{module name: parameter count} of the exported model's modules (weights and biases)."""
    out: dict = {}
    for key, t in exported.state_dict.items():
        mod = key.rpartition(".")[0]
        out[mod] = out.get(mod, 0) + int(t.numel())
    return out

"""Per-layer parity for ExecuTorch `.pte` candidates against a PyTorch reference.

What is read, and from where:

- the ETRecord the converter wrote beside the program (`model.pte.etrecord`, `convert --to
  executorch --etrecord`): its Edge graph gives every operator a debug handle and the module
  that computed it (nn_module_stack);
- the program run by executorch.runtime with ETDump and a debug buffer: one event per operator
  executed outside a delegate, with its output tensors; a delegate (XNNPACK) is one event whose
  only observable values are its outputs;
- the reference: the same modules' values in torch.export's graph of the reference module
  (edgekit.layers_torch.TorchTap).

A module whose last operator ran inside a delegate cannot be observed in the shipped program.
For those, when the ETRecord holds the program's exported graph (its weights included) and the
graph has no quantized operators (the pip runtime has no portable quantized kernels), the graph
is lowered again without delegation and that portable twin is observed instead: it checks the
graph and its weights, not the delegate's kernels, and the row says so (`observed`). An int8
(PT2E) program's graph is instead run in eager PyTorch (`observed`: "int8 graph (eager)"): every
quantized layer gets its row and error, computed with the program's own int8 weights, scales
and zero points. The delegate's own outputs are compared too, at delegate granularity.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import metrics
from .artifacts import read_manifest
from .errors import BadInput, require
from .parity import adapt_layout

SUFFIX = ".etrecord"
SKIP_EVENTS = {"OPERATOR_CALL", "Method::init", "Program::load_method", "Method::execute"}


def find_etrecord(pte: Path) -> Path:
    """The ETRecord of the .pte `pte`: the file its manifest names, else `<pte>.etrecord` beside it.

    Raises:
        BadInput (exit 2): there is none (the message names `convert --etrecord`).
    """
    manifest = read_manifest(pte) or {}
    named = (manifest.get("extra") or {}).get("etrecord") or manifest.get("etrecord")
    for cand in ([Path(pte).with_name(named)] if named else []) + [Path(str(pte) + SUFFIX)]:
        if cand.is_file():
            return cand
    raise BadInput(
        f"--per-layer needs the ETRecord of {Path(pte).name} ({Path(pte).name}{SUFFIX} beside it); there is none.",
        "Convert again with an ETRecord: edgekit convert MODEL --to executorch --etrecord "
        "(or run without --per-layer for the output-level verdict).",
    )


def compare_pte(ref, pte: Path, samples, in_map: dict, progress=None):
    """(rows, not_observable, details) in the shape edgekit.layers.summarize takes. Sample by
    sample: the reference's and the program's values of one sample are held at a time."""
    from .layers_torch import TorchTap

    if ref.kind != "model" or ref.framework not in ("torch", "torch-exported"):
        raise BadInput(f"--per-layer for a .pte candidate needs the PyTorch model as the reference, not "
                       f"{ref.framework or ref.format}.",
                       "Pass the nn.Module it was converted from (file.py:factory or .pt2).")
    require("executorch.devtools", "torch", "ExecuTorch devtools")
    from executorch.devtools import parse_etrecord

    et_path = find_etrecord(pte)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        etrecord = parse_etrecord(str(et_path))
    tap = TorchTap(ref.native)
    order = _input_order(pte, in_map)
    n = len(samples)
    feed = lambda i: {k: v[i : i + 1] for k, v in samples.inputs.items()}  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="edgekit-etdump-") as tmp:
        cand = EtdumpRunner(Path(pte).read_bytes(), etrecord, order, tmp)
        first = cand.run(feed(0))
        delegates = _delegates(first)
        in_delegate = {h: d for d in delegates for h in d["handles"]}
        plan, unmatched, hidden = [], [], []  # plan: (module, op type, observed, event key)
        for path in tap.modules:
            typ, h = tap.types[path], cand.handles.get(path)
            if h is None:
                unmatched.append({"layer": path, "op_type": typ, "reason": "no operator of this module in the ETRecord graph"})
            elif (h,) in first:
                plan.append((path, f"{typ} → {first[(h,)]['op']}", "pte", (h,)))
            elif h in in_delegate and h == max(in_delegate[h]["handles"]):  # a delegate's last op: its output
                d = in_delegate[h]
                plan.append((path, f"{typ} → {d['backend'].removesuffix('Backend')} delegate output "
                                   f"({len(d['ops'])} ops)", "pte", d["key"]))
            elif h in in_delegate:
                hidden.append(path)
            else:
                unmatched.append({"layer": path, "op_type": typ, "reason": "no runtime event for its operator (removed or not logged)"})
        twin, twin_note = (_portable_twin(etrecord, order, tmp) if hidden else (None, None))
        twin_first = twin.run(feed(0)) if twin else {}
        qtap = _quantized_tap(etrecord, ref) if hidden and twin is None else None
        ref_of: dict = {}  # module path → reference node to compare with, when not its own last node
        for path in hidden:
            backend = in_delegate[cand.handles[path]]["backend"]
            why = f"inside a {backend} delegate: a black box at run time"
            h = twin.handles.get(path) if twin else None
            if h is not None and (h,) in twin_first:
                plan.append((path, f"{tap.types[path]} → {twin_first[(h,)]['op']} (portable twin)", "portable twin", (h,)))
                why += ("; compared in a portable (undelegated) re-lowering of the ETRecord's graph, which checks "
                        "the graph and its weights, not the delegate's kernels")
            elif qtap is not None and path in qtap.last:
                op = str(getattr(qtap.last[path].target, "__name__", qtap.last[path].target)).split(".")[0]
                folded = _folded_into(tap, qtap, path)
                if folded:  # PT2E folded the BatchNorm after it: compare with the BatchNorm's value
                    ref_of[path] = tap.last[folded].name
                    op += f" + {tap.types[folded]} {folded} (folded)"
                plan.append((path, f"{tap.types[path]} → {op} ({QUANT_GRAPH})", QUANT_GRAPH, ("q", path)))
                why += ("; compared in the program's quantized graph (the ETRecord's exported program: its int8 "
                        "weights, scales and zero points) run in eager PyTorch, which checks the quantization, "
                        "not the delegate's kernels")
            elif twin_note:
                why += f" ({twin_note})"
            unmatched.append({"layer": path, "op_type": tap.types[path], "reason": why})
        want = {ref_of.get(p, tap.last[p].name) for p, *_ in plan}
        acc = {i: metrics.Running() for i in range(len(plan))}
        shapes, bad = {}, {}
        for i in range(n):
            f = feed(i)
            refs = tap.run(f, want)
            events = {"pte": first if i == 0 else cand.run(f)}
            if twin:
                events["portable twin"] = twin_first if i == 0 else twin.run(f)
            if qtap is not None:
                events[QUANT_GRAPH] = _quantized_events(qtap, f, [p for p, _, o, _ in plan if o == QUANT_GRAPH])
            for j, (path, op_type, observed, key) in enumerate(plan):
                if j in bad:
                    continue
                r = refs[ref_of.get(path, tap.last[path].name)]
                outs = events[observed].get(key, {}).get("outputs", [])
                c = next((o for o in reversed(outs) if o.size == r.size), None)
                if c is None:
                    bad[j] = {"layer": path, "op_type": op_type, "reason": f"runtime output "
                              f"{[tuple(o.shape) for o in outs]} ≠ reference {tuple(r.shape)}"}
                    continue
                shapes[j] = list(c.shape)
                acc[j].add(r, adapt_layout(c, r.shape).reshape(r.shape))
            if progress:
                progress(i + 1, n)
    unmatched += list(bad.values())
    rows = [{"layer": path, "op_type": op_type, "shape": shapes[j], "observed": observed, **acc[j].result()}
            for j, (path, op_type, observed, _) in enumerate(plan) if j not in bad]
    pos = {m: i for i, m in enumerate(tap.modules)}
    rows.sort(key=lambda r: (pos[r["layer"]], r["observed"] != "pte"))
    details = {
        "etrecord": str(et_path),
        "delegates": [{"backend": d["backend"], "ops": d["ops"],
                       "modules": sorted((p for p in cand.handles if cand.handles[p] in d["handles"]),
                                         key=lambda p: pos.get(p, len(pos)))}
                      for d in delegates],
        "inside_delegates": hidden,
        "portable_twin": None if not hidden else (twin_note or "used for the modules inside delegates"),
    }
    return rows, unmatched, details


# -- the ETRecord graph --------------------------------------------------------------------------

def _edge_graph(etrecord):
    edge = etrecord.edge_dialect_program
    if isinstance(edge, dict):
        edge = edge.get("forward") or next(iter(edge.values()))
    if edge is None:
        raise BadInput("The ETRecord holds no Edge dialect program.", "Convert again with --etrecord.")
    return edge.graph_module.graph


def _module_handles(graph, module_of) -> dict:
    out = {}
    for n in graph.nodes:
        h = n.meta.get("debug_handle")
        if n.op != "call_function" or h is None:
            continue
        path, _ = module_of(n)
        if path:
            out[path] = int(h) if not isinstance(h, (list, tuple)) else int(max(h))
    return out


def _input_order(pte, in_map) -> list[str]:
    """Sample keys in the order of the program's inputs."""
    from .runtimes.executorch import ExecuTorchSession

    names = [s.name for s in ExecuTorchSession(pte).inputs]
    by_cand = {spec.name: k for k, spec in in_map.items()}
    return [by_cand.get(n, list(in_map)[i]) for i, n in enumerate(names)]


# -- running with ETDump -------------------------------------------------------------------------

class EtdumpRunner:
    """Runs a program with ETDump and a debug buffer; `run(feed)` → {debug handles (tuple): {op,
    outputs: [np.ndarray], delegate, backend, ops}}, the last event of each handle set (an op's
    weight-layout copy shares its handle). The ETRecord maps the ETDump's instruction ids to debug
    handles and operators; `handles` is module path → debug handle of the module's last op.

    One program load and one ETDump per sample: the Inspector merges runs of one method into one
    event block and requires their debug data to be equal (it is built for profiling repeated
    runs of one input), so distinct samples cannot share a dump."""

    def __init__(self, program: bytes, etrecord, order: list[str], tmp: str):
        """program: the .pte's bytes; etrecord: the parsed ETRecord; order: sample keys in the
        order of the program's inputs; tmp: a folder for the ETDump and debug buffer files."""
        from .layers_torch import module_of

        self.program, self.etrecord, self.order = program, etrecord, order
        graph = _edge_graph(etrecord)
        self.handles = _module_handles(graph, module_of)
        self.buffer = sum(_bytes(n) for n in graph.nodes) * 2 + (1 << 16)
        self.etdump, self.debug = str(Path(tmp) / f"{id(self)}.etdp"), str(Path(tmp) / f"{id(self)}.bin")

    def run(self, feed: dict) -> dict:
        """Run one sample (feed: sample key → np.ndarray with a batch axis of 1); returns the
        events as described in the class docstring."""
        import torch
        from executorch.devtools import Inspector
        from executorch.runtime import Runtime

        from .native_log import capture_native_stderr

        with capture_native_stderr():
            prog = Runtime.get().load_program(self.program, enable_etdump=True, debug_buffer_size=self.buffer)
            prog.load_method("forward").execute([torch.from_numpy(np.ascontiguousarray(feed[k])) for k in self.order])
            prog.write_etdump_result_to_file(self.etdump, self.debug)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ins = Inspector(etdump_path=self.etdump, etrecord=self.etrecord, debug_buffer_path=self.debug)
        events = {}
        for block in ins.event_blocks:
            events.update(_events(block))
        return events


def _events(block) -> dict:
    found = {}
    for e in block.events:
        if e.name in SKIP_EVENTS or not e.op_types or not e.debug_data or e.debug_handles is None:
            continue
        h = e.debug_handles
        key = (int(h),) if isinstance(h, int) else tuple(int(x) for x in h)
        outs = [d.detach().float().numpy() for d in e.debug_data if hasattr(d, "detach") and d.numel()]
        found[key] = {"op": str(e.op_types[-1]).replace("aten.", "").replace(".default", ""), "outputs": outs,
                      "delegate": e.name == "DELEGATE_CALL", "backend": e.delegate_backend_name,
                      "ops": list(e.op_types), "key": key}
    return found


def _delegates(events: dict) -> list[dict]:
    return [{"backend": ev["backend"] or "delegate", "handles": set(k), "ops": ev["ops"], "key": k}
            for k, ev in events.items() if ev["delegate"]]


def _bytes(node) -> int:
    v = node.meta.get("val")
    vals = v if isinstance(v, (list, tuple)) else [v]
    total = 0
    for t in vals:
        if hasattr(t, "numel") and hasattr(t, "element_size"):
            try:
                total += int(t.numel()) * int(t.element_size())
            except Exception:  # symbolic sizes
                total += 1 << 20
    return total


# -- the portable twin ---------------------------------------------------------------------------

QUANT_GRAPH = "int8 graph (eager)"


def _quantized_tap(etrecord, ref):
    """A TorchTap over the ETRecord's exported program when it is PT2E-quantized (q/dq ops in
    its graph): each module's value as the int8 program computes it, simulated in eager PyTorch
    (the quantized_decomposed ops). None when the ETRecord holds no exported program, the graph
    is not quantized, or it cannot be read (an unobservable module stays listed as such)."""
    from types import SimpleNamespace

    from .layers_torch import TorchTap

    ep = etrecord.exported_program
    if ep is None or not any("quantize" in str(n.target) for n in ep.graph.nodes if n.op == "call_function"):
        return None
    try:
        return TorchTap(SimpleNamespace(framework="torch-exported", native=ep, extra=ref.native.extra))
    except Exception:  # an unreadable graph: the modules stay "inside a delegate"
        return None


def _folded_into(tap, qtap, path: str) -> str | None:
    """The reference module right after PATH when it is a BatchNorm that the quantized graph no
    longer has (PT2E folds it into the convolution before it), else None."""
    i = tap.modules.index(path)
    nxt = tap.modules[i + 1] if i + 1 < len(tap.modules) else None
    if nxt and nxt not in qtap.last and "BatchNorm" in tap.types[nxt]:
        return nxt
    return None


def _quantized_events(qtap, feed: dict, paths: list) -> dict:
    """One sample through the quantized graph: {("q", module path): {"outputs": [np.ndarray]}}."""
    got = qtap.run(feed, {qtap.last[p].name for p in paths})
    return {("q", p): {"outputs": [got[qtap.last[p].name]]} for p in paths if qtap.last[p].name in got}


def _portable_twin(etrecord, order, tmp):
    """The ETRecord's exported graph (the program's own weights) lowered without a delegate, as an
    EtdumpRunner; (None, why not) when that cannot be done."""
    ep = etrecord.exported_program
    if ep is None:
        return None, "the ETRecord holds no exported graph to re-lower without delegation"
    if any("quantize" in str(n.target) for n in ep.graph.nodes if n.op == "call_function"):
        return None, "a quantized graph: the runtime has no portable quantized kernels to re-lower it"
    from executorch.devtools import parse_etrecord
    from executorch.exir import to_edge_transform_and_lower

    from .native_log import capture_native_stderr

    try:
        with warnings.catch_warnings(), capture_native_stderr():
            warnings.simplefilter("ignore")
            prog = to_edge_transform_and_lower(ep, partitioner=[], generate_etrecord=True).to_executorch()
            # the in-memory ETRecord lacks the instruction → debug handle map until saved
            path = str(Path(tmp) / "twin.etrecord")
            prog.get_etrecord().save(path)
            record = parse_etrecord(path)
    except Exception as exc:  # an op without a portable lowering
        return None, f"re-lowering without delegation failed: {type(exc).__name__}"
    return EtdumpRunner(prog.buffer, record, order, tmp), None

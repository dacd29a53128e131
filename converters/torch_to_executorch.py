"""PyTorch (nn.Module, .pt2 ExportedProgram) → ExecuTorch `.pte` with the XNNPACK backend.

torch.export → (PT2E quantization) → to_edge_transform_and_lower(XnnpackPartitioner) → .pte.
Delegation coverage is read from the lowered graph *before* to_executorch() (which rewrites ops
to their out-variants); the .pte is then loaded with executorch.runtime and every method run, so a
missing portable kernel is a failed build naming the operator, not a surprise on the phone.

With `--etrecord` (options.extra["etrecord"]) the ETRecord (graphs with debug handles, the
example input as representative input) is written beside the program as `model.pte.etrecord`
for `validate --per-layer` and the devtools Inspector. Opt-in: it costs no measurable time
(+0.0–0.7 s) but ≈2.2× the .pte on disk (EfficientNet-Lite0: 18.6 MB .pte, 40.5 MB ETRecord).
"""

from __future__ import annotations

import copy
import operator
import re
from collections import Counter
from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.errors import BadInput, CheckFailed, UnsupportedModel
from edgekit.native_log import capture_native_stderr
from edgekit.quantization import QuantRecipe

from . import _torch_common as common

FRAMEWORKS = ("torch", "torch-exported")
RECIPES = ("none", "fp16", "dynamic-int8", "int8")
SUFFIX = ".pte"


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """A PyTorch model → DEST, an ExecuTorch .pte lowered to XNNPACK (fp16: the module and
    inputs cast to half; dynamic-int8/int8: PT2E with the XNNPACK quantizer).

    Args:
        source: the loaded `SourceModel` (framework one of FRAMEWORKS).
        recipe: the `QuantRecipe`, one of RECIPES (edgekit.build refuses others before calling).
        dest: the file to write; edgekit.build passes `atomic_output`'s temporary path beside
            the final one.
        options: `converters.ConvertOptions`: calibration (`data.Samples`, for int8), io_dtype
            (float32 only), extra["etrecord"] (also write DEST's final name + ".etrecord"),
            debug.

    Returns the `Artifact` (schema `$defs/convert`): I/O named as the source's, `extra` with
    `delegation` (schema `$defs/delegation`), `methods`, `etrecord`, `kernels` (each operator left
    outside XNNPACK with the kernel library that serves it, checked against a portable-only device
    runtime: `edgekit.converters._executorch_kernels.check`; `passed` false is a failed check,
    exit 1 with the files written) and `notes`. Raises BadInput (exit 2) for another io_dtype; UnsupportedModel (exit 2)
    when torch.export, PT2E quantization or lowering fails; CheckFailed (exit 1) when a method
    of the .pte fails to run (a missing kernel) or its outputs differ in shape from the source's
    or hold NaN/inf.
    """
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgekit.quantization import pt2e
    from edgekit.runtimes.executorch import ExecuTorchSession

    common.no_io_dtype(recipe, options, "ExecuTorch")
    example = source.extra["example_inputs"]
    quant = {"recipe": recipe.name}
    if recipe.name == "none":
        ep = common.export(source)
    elif recipe.name == "fp16":
        m16 = copy.deepcopy(common.module_of(source)).half()
        ex16 = tuple(t.half() if t.is_floating_point() else t for t in example)
        ep = common.export(source, m16, ex16)
        quant.update({"effective": True, "weights_by_dtype": {"float16": _count_float16(ep)}})
    else:
        exported = common.export(source)
        gm = exported.module()
        calib = common.calibration_batches(source, options)
        try:
            with common.quiet():
                if options.extra.get("search"):  # accuracy-aware: some layers stay float
                    from edgekit.quantization import search_pt2e

                    converted, found = search_pt2e.searched(exported, example, recipe, calib, options.extra["search"],
                                                            source.extra["input_names"])
                    quant.update(found)
                else:
                    from edgekit.quantization import pt2e_floor  # pt2e.quantize, weights' scales unfloored

                    converted, _ = pt2e_floor.quantize(gm, example, recipe, calib, backend="xnnpack")
        except BadInput:  # the search's own refusal (e.g. a top-1 bar on a map output): it has the fix
            raise
        except Exception as exc:
            raise UnsupportedModel(f"PT2E quantization ({recipe.name}) failed: {type(exc).__name__}: "
                                   f"{str(exc).strip().splitlines()[0][:400] if str(exc).strip() else ''}",
                                   "Try --quantize fp16 or none, or quantize a smaller part of the model.") from exc
        summary = pt2e.summarize_graph(converted)
        ok = bool(summary.get("dynamic_qparams") if recipe.name == "dynamic-int8" else summary.get("quantize"))
        quant.update({"effective": ok, "pt2e": summary, "quantizer": "XNNPACKQuantizer (symmetric, per-channel)"})
        if not ok:
            quant["note"] = ("the XNNPACK quantizer found no operator to quantize "
                             + ("(dynamic int8 covers linear layers only)" if recipe.name == "dynamic-int8" else ""))
        ep = common.export(source, converted, example)
    with capture_native_stderr(not options.debug) as log, common.quiet():
        try:
            want_etrecord = bool(options.extra.get("etrecord"))
            edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()], generate_etrecord=want_etrecord)
            delegation = delegation_info(edge)
            program = edge.to_executorch()
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
            raise UnsupportedModel(f"ExecuTorch could not lower the model: {type(exc).__name__}: {msg}",
                                   "Run with --debug for the full log; the operator named above has no "
                                   "Edge dialect/XNNPACK lowering.") from exc
    dest.write_bytes(program.buffer)
    etrecord = write_etrecord(program, example, dest) if want_etrecord else None
    session = ExecuTorchSession(dest)  # CheckFailed naming the operator when a kernel is missing
    shapes = session.check_all_methods()
    want = common.reference_shapes(source)  # on the same zeros check_all_methods fed
    if shapes.get(session.method_name) != want:
        raise CheckFailed(
            f"The .pte runs but {session.method_name}() gives outputs of shape {shapes.get(session.method_name)} "
            f"where the source model gives {want} on the same input (zeros).",
            "The .pte computes outputs of other sizes than the model; run edgekit validate on real data to see "
            "which output differs (add --debug for the lowering log).",
        )
    common.check_outputs(session, source, ".pte")
    versions = _versions()
    inputs = [_named(s, n) for s, n in zip(session.inputs, source.extra["input_names"])]
    outputs = [_named(s, n) for s, n in zip(session.outputs, source.extra["output_names"])]
    extra = {"delegation": delegation, "methods": sorted(shapes)}
    if etrecord:
        extra["etrecord"] = etrecord
    from . import _executorch_kernels as kernel_libs

    # the host wheel links every kernel library: check against what a device runtime has
    extra["kernels"] = kernels = kernel_libs.check(kernel_libs.program_operators(program))
    said = kernel_libs.describe(kernels)
    if not kernels["passed"]:
        kernels["failure"] = kernel_libs.failure(kernels)
    if delegation["not_delegated"] or said:
        extra["notes"] = [said or f"{delegation['total_ops'] - delegation['delegated_ops']} op(s) run outside "
                          f"XNNPACK: {', '.join(delegation['not_delegated'])}"]
    return Artifact(path=dest, format="executorch", inputs=inputs, outputs=outputs, recipe=recipe.name,
                    io_dtype=inputs[0].dtype if inputs else "float32", tools=versions, quantization=quant,
                    extra=extra)


def delegation_info(edge) -> dict:
    """{delegated_ops, total_ops, not_delegated: [op names], not_delegated_counts, delegate_calls}."""
    import torch
    from executorch.devtools.backend_debug import get_delegation_info

    gm = edge.exported_program().graph_module
    delegate = torch.ops.higher_order.executorch_call_delegate
    calls = 0
    left = Counter()
    for n in gm.graph.nodes:
        if n.op != "call_function" or n.target is operator.getitem:
            continue
        if n.target == delegate:
            calls += 1
        else:
            left[getattr(n.target, "__name__", str(n.target))] += 1
    delegated = 0
    try:
        df = get_delegation_info(gm).get_operator_delegation_dataframe()
        for _, row in df.iterrows():
            if row["op_type"] in ("Total",) or "getitem" in str(row["op_type"]):
                continue
            delegated += int(row["occurrences_in_delegated_graphs"])
    except Exception:  # devtools layout changed: count delegate calls only
        delegated = calls
    return {
        "delegated_ops": delegated,
        "total_ops": delegated + sum(left.values()),
        "not_delegated": sorted(left),
        "not_delegated_counts": dict(sorted(left.items())),
        "delegate_calls": calls,
        "backend": "XnnpackBackend",
    }


def write_etrecord(program, example, dest: Path) -> str:
    """Write the ETRecord as `<final name>.etrecord` beside the artifact; returns its file name.
    `dest` may be atomic_output's temporary `.model.pte.XXXX.partial.pte`: the ETRecord is named
    after the final artifact, and written atomically itself."""
    from edgekit.artifacts import atomic_output

    m = re.fullmatch(r"\.(.+)\.[^.]+\.partial" + re.escape(dest.suffix), dest.name)
    name = (m.group(1) if m else dest.name) + ".etrecord"
    etrecord = program.get_etrecord()
    etrecord.update_representative_inputs([tuple(example)])  # lets Inspector.calculate_numeric_gap run
    with common.quiet(), atomic_output(dest.with_name(name)) as tmp:
        etrecord.save(str(tmp))
    return name


def _count_float16(ep) -> int:
    import torch

    return sum(1 for t in ep.state_dict.values() if isinstance(t, torch.Tensor) and t.dtype == torch.float16)


def _named(spec, name):
    spec.name = name
    return spec


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("torch", "executorch", "torchao"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out

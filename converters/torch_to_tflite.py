"""PyTorch (nn.Module, .pt2 ExportedProgram) → `.tflite` with litert-torch.

| recipe       | how                                                                        | I/O      |
|--------------|----------------------------------------------------------------------------|----------|
| none         | litert_torch.convert                                                       | float32  |
| fp16         | ai-edge-quantizer float_casting on the fp32 .tflite (fp16 weights)         | float32  |
| dynamic-int8 | ai-edge-quantizer dynamic_wi8_afp32 on the fp32 .tflite                    | float32  |
| int8         | PT2E with litert-torch's quantizer, calibrated (fallback: ai-edge-quantizer | int8     |
|              | static_wi8_ai8 when the PT2E quantizer cannot annotate the model)          |          |

Full-integer models from litert-torch always have int8 inputs and outputs (there is no float-I/O
option); their scale and zero-point are in the manifest and edgekit's runtimes apply them.
`--channels-last-io` wraps the module with litert_torch.to_channel_last_io so 4-D inputs (and
4-D outputs) are NHWC, as camera pipelines deliver them.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.artifacts import Artifact
from edgekit.errors import BadInput, UnsupportedModel
from edgekit.native_log import capture_native_stderr, first_error_line
from edgekit.quantization import QuantRecipe
from edgekit.quantization import tflite as tflite_quant

from . import _torch_common as common
from ._litert_consts import constants_kept_alive

FRAMEWORKS = ("torch", "torch-exported")
RECIPES = ("none", "fp16", "dynamic-int8", "int8")
SUFFIX = ".tflite"


def convert(source, recipe: QuantRecipe, dest: Path, options) -> Artifact:
    """A PyTorch model → DEST, a .tflite from litert-torch, quantized as the module docstring's
    table says.

    Args:
        source: the loaded `SourceModel` (framework one of FRAMEWORKS).
        recipe: the `QuantRecipe`, one of RECIPES (edgekit.build refuses others before calling).
        dest: the file to write; edgekit.build passes `atomic_output`'s temporary path beside
            the final one.
        options: `converters.ConvertOptions`: calibration (`data.Samples`, for int8),
            io_dtype ("float32", or "int8" with int8: the I/O is int8 either way),
            channels_last_io (NHWC 4-D inputs and outputs), debug.

    Returns the `Artifact` (schema `$defs/convert`): `quantization` with `method` and what the
    file holds, `extra.channels_last_io`, `extra.notes` (int8 I/O, hybrid ops, a quantizer
    fallback). Raises BadInput (exit 2) for an io_dtype other than float32 without int8, uint8,
    or --channels-last-io without a 4-D input; UnsupportedModel (exit 2) for a model whose
    forward() writes buffers (state a .tflite from litert-torch would drop), or when torch.export or
    litert-torch fails; CheckFailed (exit 1) when the .tflite does not load or gives outputs of
    other shapes than the source, or NaN/inf.
    """
    import litert_torch

    from edgekit.quantization import pt2e
    from edgekit.runtimes.tflite import TFLiteSession

    litert_torch.config.show_progress = False  # its progress lines go to stdout otherwise
    notes: list[str] = []
    if source.extra.get("stateful"):  # litert-torch bakes buffers in as constants: no state between calls
        from edgekit.sources.state import dropped_state_reason

        raise UnsupportedModel(dropped_state_reason(source.origin, source.extra["stateful"],
                                                    "a .tflite from litert-torch"),
                               "Use --to executorch (its .pte keeps mutable buffers between calls), or pass the state "
                               "in and out of forward() as inputs and outputs.")
    if recipe.name != "int8" and options.io_dtype != "float32":
        raise BadInput(f"--io-dtype {options.io_dtype} needs --quantize int8.", "Add --quantize int8.")
    if recipe.name == "int8" and options.io_dtype == "uint8":
        raise BadInput("litert-torch full-integer models have int8 inputs and outputs; uint8 is not available.",
                       "Use --io-dtype int8 (or float32: edgekit then notes that the I/O is int8).")
    example = tuple(source.extra["example_inputs"])
    module = common.module_of(source)
    names = source.extra["input_names"]
    nhwc_in = [i for i, t in enumerate(example) if t.dim() == 4] if options.channels_last_io else []
    nhwc_out = [i for i, s in enumerate(source.outputs) if len(s.shape) == 4] if options.channels_last_io else []
    if options.extra.get("search") and nhwc_in:
        raise BadInput("The accuracy-aware int8 search compares the .tflite with the model on the data as given "
                       "(NCHW); --channels-last-io changes the inputs to NHWC.",
                       "Drop --channels-last-io for the search, or search with --to executorch.")
    if options.channels_last_io and not nhwc_in:
        raise BadInput("--channels-last-io changes 4-D (NCHW) inputs to NHWC, and this model has none.",
                       "Drop --channels-last-io.")
    layout = None
    if nhwc_in:
        module = litert_torch.to_channel_last_io(module, args=nhwc_in, outputs=nhwc_out or None)
        example = tuple(t.permute(0, 2, 3, 1).contiguous() if i in nhwc_in else t for i, t in enumerate(example))
        layout = lambda t: t.permute(0, 2, 3, 1).contiguous() if t.dim() == 4 else t  # noqa: E731
    # Inputs keep forward()'s parameter names in the .tflite when passed as keywords.
    by_name = source.framework == "torch" and not nhwc_in and all(n.isidentifier() and not n.startswith("args_")
                                                                     for n in names)
    args, kwargs = ((), dict(zip(names, example))) if by_name else (example, None)
    quant = {"recipe": recipe.name}
    with capture_native_stderr(not options.debug) as log, common.quiet(), constants_kept_alive():
        try:
            if recipe.name == "int8" and options.extra.get("search"):  # accuracy-aware: some layers stay float
                from edgekit.quantization import search_aeq

                calib = common.calibration_batches(source, options, layout)
                fp32 = litert_torch.convert(module, args, kwargs).model_content()
                flatbuffer, found = search_aeq.searched(fp32, _aeq_calibration(fp32, calib, names if kwargs else None),
                                                        options.extra["search"], [o.name for o in source.outputs])
                quant.update({"method": "ai-edge-quantizer static_wi8_ai8, no_quantize for the search's float layers",
                              **found})
            elif recipe.name == "int8":
                calib = common.calibration_batches(source, options, layout)
                flatbuffer, how = _full_int8(litert_torch, source, module, args, kwargs, calib, names,
                                             example, recipe, notes)
                quant["method"] = how
            else:
                flatbuffer = litert_torch.convert(module, args, kwargs).model_content()
                if recipe.name in ("fp16", "dynamic-int8"):
                    flatbuffer = _aeq(flatbuffer, recipe.name)
                    quant["method"] = {"fp16": "ai-edge-quantizer float_casting (fp16 weights)",
                                       "dynamic-int8": "ai-edge-quantizer dynamic_wi8_afp32"}[recipe.name]
        except (BadInput, UnsupportedModel):
            raise
        except Exception as exc:
            if "export" in type(exc).__module__ or "GuardOnDataDependent" in type(exc).__name__ or \
                    "data-dependent" in str(exc).lower():
                raise common.explain_export_error(exc, source.origin) from exc
            raise UnsupportedModel(f"litert-torch could not convert the model: {type(exc).__name__}: "
                                   f"{first_error_line(str(exc) or log.text)}",
                                   "Run with --debug for the converter's log; the operator it names has no "
                                   "TFLite lowering (try --to executorch).") from exc
    dest.write_bytes(flatbuffer)
    session = TFLiteSession(dest)
    io_dtype = session.inputs[0].dtype if session.inputs else "float32"
    if recipe.name == "int8" and options.io_dtype == "float32" and io_dtype != "float32":
        notes.append("litert-torch full-integer models take and give int8 tensors (no float I/O option): "
                     "this .tflite has int8 I/O; the scale and zero-point of each are in the manifest.")
    common.check_outputs(session, source, ".tflite", nhwc_outputs=nhwc_out)
    summary = tflite_quant.summarize(dest)
    ok, why = tflite_quant.effective(recipe, summary)
    quant.update({"effective": ok, **({"note": why} if why else {}), **summary})
    hybrid = tflite_quant.hybrid_note(recipe, summary)  # e.g. residual ADDs left in float
    if hybrid:
        notes.append(hybrid)
    for i in nhwc_in:
        session.inputs[i].layout = "NHWC"
    versions = {}
    import importlib.metadata as md

    for pkg in ("torch", "litert-torch", "ai-edge-quantizer", "torchao"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return Artifact(path=dest, format="tflite", inputs=session.inputs, outputs=session.outputs,
                    recipe=recipe.name, io_dtype=io_dtype, tools=versions, quantization=quant,
                    extra={"channels_last_io": bool(nhwc_in), "notes": notes, "flex_ops": []})


def _full_int8(litert_torch, source, module, args, kwargs, calib, names, example, recipe, notes):
    """PT2E with litert-torch's quantizer; ai-edge-quantizer static int8 when PT2E cannot annotate."""
    import torch
    from litert_torch.quantize.quant_config import QuantConfig

    from edgekit.quantization import pt2e_floor  # per-channel weight scales not floored at 2**-12

    try:
        gm = torch.export.export(module, args, kwargs=kwargs).module()
        if kwargs is None:
            converted, q = pt2e_floor.quantize(gm, example, recipe, calib, backend="litert", fold_quantize=False)
        else:
            converted, q = _quantize_kwargs(gm, recipe, calib or [example], names)
        em = litert_torch.convert(converted, args, kwargs, quant_config=QuantConfig(pt2e_quantizer=q))
        return em.model_content(), "PT2E (litert-torch PT2EQuantizer, symmetric per-channel)"
    except Exception as exc:  # e.g. the GRU annotator's IndexError
        pt2e_error = f"{type(exc).__name__}: {first_error_line(str(exc))}"
    fp32 = litert_torch.convert(module, args, kwargs).model_content()
    flatbuffer = _aeq(fp32, "int8", calib, names if kwargs else None)
    notes.append(f"litert-torch's PT2E quantizer could not annotate this model ({pt2e_error}); the float .tflite "
                 "was quantized with ai-edge-quantizer's static int8 recipe instead (same calibration data).")
    return flatbuffer, "ai-edge-quantizer static_wi8_ai8"


def _quantize_kwargs(gm, recipe, calib, names):
    """pt2e.quantize, calling the graph module with keyword arguments."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgekit.quantization import pt2e, pt2e_floor

    q = pt2e_floor.unfloored(pt2e.quantizer_for("litert", recipe))
    prepared = prepare_pt2e(gm, q)
    with torch.no_grad():
        for batch in calib:
            prepared(**dict(zip(names, batch)))
    converted = convert_pt2e(prepared, fold_quantize=False)
    move_exported_model_to_eval(converted)
    return converted, q


def _aeq(flatbuffer: bytes, recipe: str, calib=None, names=None) -> bytes:
    from ai_edge_quantizer import qtyping, recipe as aeq_recipe
    from ai_edge_quantizer import quantizer as aeq

    qz = aeq.Quantizer(tflite_quant.flat_biases(flatbuffer))  # for ai-edge-quantizer's per-channel bias
    if recipe == "fp16":
        qz.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                  num_bits=16, algorithm_key="float_casting")
        return qz.quantize(enable_progress_report=False).quantized_model
    if recipe == "dynamic-int8":
        qz.load_quantization_recipe(aeq_recipe.dynamic_wi8_afp32())
        return qz.quantize(enable_progress_report=False).quantized_model
    qz.load_quantization_recipe(aeq_recipe.static_wi8_ai8())
    stats = qz.calibrate(_aeq_calibration(flatbuffer, calib, names))
    return qz.quantize(stats, enable_progress_report=False).quantized_model


def _aeq_calibration(flatbuffer: bytes, calib: list, names=None) -> dict:
    """CALIB (argument tuples, batch 1) as ai-edge-quantizer's calibrate() takes it: {signature
    key: [{input name: array}]}. NAMES: forward()'s names when the inputs were passed as keywords
    (the signature then has them, maybe reordered), else None (positional: signature order)."""
    from ai_edge_litert.interpreter import Interpreter

    sig = Interpreter(model_content=flatbuffer).get_signature_list()
    key = next(iter(sig))
    in_names = sig[key]["inputs"]
    data = [{n: t.numpy() for n, t in zip(in_names if names is None else names, batch)} for batch in calib]
    if names is not None:
        data = [{n: d[n] for n in in_names} for d in data]
    return {key: data}


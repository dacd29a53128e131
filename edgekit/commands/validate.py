"""`edgekit validate REFERENCE CANDIDATE`: parity of an artifact against its reference."""

from __future__ import annotations

import click

from .options import check_threshold, host_key_option, input_shape_option, json_option, preset_option, samples_option, target_option
from .output import log_to, progress, show


@click.command("validate")
@click.argument("reference")
@click.argument("candidate")
@click.option("--data", metavar="DATA", help="Samples (.npy, .npz keyed by input name with optional 'labels', image folder); default random.")
@samples_option()
@click.option("--per-layer", is_flag=True, help="Localise the divergence: compare intermediate tensors layer by layer.")
@preset_option
@click.option("--min-psnr", type=float, callback=check_threshold, metavar="DB", help="Fail below this PSNR (dB) on any output.")
@click.option("--max-abs", type=float, callback=check_threshold, metavar="X", help="Fail above this max absolute difference.")
@click.option("--min-cosine", type=float, callback=check_threshold, metavar="X", help="Fail below this cosine similarity.")
@click.option("--min-top1-agreement", type=float, callback=check_threshold, metavar="X", help="Fail below this top-1 agreement (0..1).")
@click.option("--max-accuracy-drop", type=float, callback=check_threshold, metavar="X", help="Fail when accuracy on labels drops more (0..1).")
@input_shape_option(" of the reference model")
@click.option("--weights", metavar="FILE",
              help="PyTorch reference as file.py:Class: its state_dict or checkpoint (loaded with weights_only=True).")
@click.option("--signature", metavar="NAME",
              help="A SavedModel reference: the signature to compare with (default serving_default).")
@target_option(default=None, prefix="Run the candidate there (", suffix="); the reference runs here.")
@host_key_option
@json_option()
def validate_command(reference, candidate, data, samples, per_layer, preset, min_psnr, max_abs, min_cosine,
                     min_top1_agreement, max_accuracy_drop, input_shapes, weights, signature, as_json,
                     target=None,
                     accept_new_host_key=False):
    """Check that CANDIDATE (an artifact) computes what REFERENCE computes.

    \b
    REFERENCE is any MODEL `convert` takes, or an artifact; CANDIDATE is a .tflite, .pte,
    .ptl or .onnx file. Inputs/outputs are matched by name, shape (NCHW/NHWC) and values;
    quantized I/O is handled. Exit 0 pass, 1 fail, 2 bad input.

    \b
    Examples:
      edgekit validate digits.keras digits_int8.tflite --data test.npz
      edgekit validate model_fp32.tflite model_int8.tflite --data test.npz --per-layer --json
      edgekit validate net.py:Net --weights net.pt --input-shape x=1x3x32x32 net.pte
    """
    from edgekit.limits import existing_regular
    from edgekit.report import print_validate
    from edgekit.validation import raise_for_result, validate

    existing_regular(candidate, "The candidate")  # a FIFO or device: refused before anything reads it

    thresholds = {"min_psnr_db": min_psnr, "max_abs": max_abs, "min_cosine": min_cosine,
                  "min_top1_agreement": min_top1_agreement, "max_accuracy_drop": max_accuracy_drop}

    def work(con):
        with progress(con) as update:
            return validate(
                reference, candidate, data=data, samples=samples, per_layer=per_layer,
                thresholds={k: v for k, v in thresholds.items() if v is not None}, preset=preset,
                input_shapes=input_shapes, weights=weights, signature=signature, progress=update, log=log_to(con),
                target=target, target_options={"accept_new_host_key": accept_new_host_key} if target else None,
            )

    raise_for_result(show(as_json, work, print_validate))

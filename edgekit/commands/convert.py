"""`edgekit convert MODEL`: quantize, convert, check parity, write the artifact + manifest."""

from __future__ import annotations

import click

from .options import input_shape_option, io_dtype_option, json_option, quantize_option, samples_option, to_option
from .output import STATE, log_to, progress, show


@click.command("convert")
@click.argument("model")
@to_option
@quantize_option
@click.option("--calibration", metavar="DATA", help="Calibration samples (.npy, .npz, image folder, or 'random').")
@click.option("--data", metavar="DATA", help="Samples for the parity check (default: the calibration data, else random).")
@io_dtype_option
@input_shape_option()
@click.option("--allow-tf-ops", is_flag=True, help="Allow TensorFlow (Flex) ops; most device runtimes cannot run them.")
@click.option("--weights", metavar="FILE", help="PyTorch state_dict for a file.py:Class model.")
@click.option("--signature", metavar="NAME",
              help="SavedModel: the signature to convert and check (default serving_default).")
@click.option("--channels-last-io", is_flag=True, help="PyTorch→TFLite: NHWC inputs/outputs for an NCHW model.")
@click.option("--etrecord", is_flag=True,
              help="ExecuTorch: also write MODEL.pte.etrecord (≈2× the .pte) for validate --per-layer.")
@click.option("--allow-float-fallback", is_flag=True,
              help="Accept a quantized build that came back float or hybrid (otherwise exit 1 after writing it).")
@click.option("--max-accuracy-drop", type=float, metavar="POINTS",
              help="int8: keep the most harmful layers float until accuracy drops at most POINTS (needs labels).")
@click.option("--min-top1-agreement", type=float, metavar="FRACTION",
              help="int8: keep the most harmful layers float until top-1 agreement with float is at least FRACTION.")
@click.option("--min-psnr", type=float, metavar="DB",
              help="int8: keep the most harmful layers float until output PSNR is at least DB.")
@click.option("-o", "--output", metavar="PATH", help="Artifact path (default: MODEL's name + recipe, in the current folder).")
@click.option("--no-validate", is_flag=True, help="Skip the parity check.")
@samples_option("parity samples")
@json_option()
def convert_command(model, to, quantize, calibration, data, io_dtype, input_shapes, allow_tf_ops, weights,
                    signature,
                    channels_last_io, etrecord, allow_float_fallback, max_accuracy_drop, min_top1_agreement, min_psnr,
                    output, no_validate, samples, as_json):
    """Convert MODEL to an on-device format, quantize it, and check it against the original.

    \b
    MODEL is a Keras .keras/.h5 file, a TensorFlow SavedModel folder, a PyTorch .pt2
    (torch.export.save) or TorchScript .pt file, or a factory: file.py:function or
    package.module:function returning a keras.Model or torch.nn.Module.

    \b
    Examples:
      edgekit convert digits.keras --quantize int8 --calibration calib.npz
      edgekit convert tempo.h5 --input-shape input_1=1x40x256x1 --quantize dynamic-int8
      edgekit convert digits.keras --quantize int8 --calibration calib.npz --data test.npz --max-accuracy-drop 1
    """
    from edgekit.build import convert, raise_for_parity
    from edgekit.quantization.fallback import raise_for_fallback
    from edgekit.report import print_convert

    def work(con):
        with progress(con) as update:
            return convert(
                model, to=to, quantize=quantize, calibration=calibration, data=data, io_dtype=io_dtype,
                input_shapes=input_shapes, allow_tf_ops=allow_tf_ops, output=output, validate=not no_validate,
                weights=weights, signature=signature, channels_last_io=channels_last_io, samples=samples,
                etrecord=etrecord,
                allow_float_fallback=allow_float_fallback, max_accuracy_drop=max_accuracy_drop,
                min_top1_agreement=min_top1_agreement, min_psnr=min_psnr, progress=update, log=log_to(con), debug=STATE.debug,
            )

    result = show(as_json, work, print_convert)
    raise_for_fallback(result)  # first: a failed search's message carries the table of what was tried
    raise_for_parity(result)

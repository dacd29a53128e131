"""Per-layer parity: where does a converted model start to diverge from its reference?

| candidate | reference       | how intermediate values are matched                   | module                    |
|-----------|-----------------|-------------------------------------------------------|---------------------------|
| .tflite   | Keras model     | tensor names carry the Keras layer scopes             | edgekit.layers_keras      |
| .tflite   | another .tflite | tensors of the same name and shape                    | edgekit.layers_tflite     |
| .tflite   | PyTorch model   | litert-torch names tensors by module                  | edgekit.layers_torch      |
| .pte      | PyTorch model   | ETRecord debug handles → modules; ETDump outputs      | edgekit.layers_executorch |

This module is the entry point (check_supported, compare_layers) and the verdict over the rows
(summarize). The .tflite candidate is read by edgekit.layers_tflite.TFLiteProbe, PyTorch
references by edgekit.layers_torch.TorchTap; a candidate tensor is read in the reference's
layout by edgekit.layers_layout.Matched. Metrics are edgekit.metrics, accumulated over samples
(metrics.Running).
"""

from __future__ import annotations

from pathlib import Path

from .artifacts import format_of
from .errors import BadInput
from .layers_keras import MEMORY_BUDGET, keras_attribution, vs_keras  # noqa: F401  (re-exported)
from .layers_layout import CLEARLY_BETTER, LAYOUTS, Matched, readings  # noqa: F401  (re-exported)
from .layers_tflite import TFLiteProbe, friendly, vs_tflite  # noqa: F401  (re-exported)
from .layers_torch import ACTIVATIONS, TorchTap, module_of, torch_attribution, vs_torch  # noqa: F401

WORST = 5  # how many layers `worst_layers` names


def check_supported(reference, cand_path: Path) -> None:
    """Refuse an unsupported pair before any work, naming what is supported.

    Args:
        reference: the REFERENCE as given (a model spec, an artifact path or a model object).
        cand_path: the candidate artifact.

    Raises:
        BadInput (exit 2): the candidate's format has no per-layer support, or a .pte has no
            ETRecord beside it.
    """
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
    """Compare the candidate with the reference layer by layer.

    Args:
        ref: an edgekit.validation.Reference (a loaded model or artifact).
        cand_path: the candidate artifact (.tflite, _edgetpu.tflite or .pte).
        samples: edgekit.data Samples keyed by the reference's input names.
        in_map: reference input name → candidate TensorSpec (validation.match_inputs).
        thresholds: the output-level thresholds; min_psnr_db and min_cosine apply per layer.
        progress: optional callable(done, total) called after each sample.

    Returns:
        summarize's dict {layers, first_divergence, worst_layers, not_observable,
        per_layer_samples} (+ `executorch` details for a .pte candidate).

    Raises:
        BadInput (exit 2): the pair is not supported, or no layer could be matched.
        MissingDependency (exit 3): the runtime or framework needed is not installed.
    """
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
        rows, unmatched = vs_keras(ref.native, probe, samples, in_map, progress)
    elif ref.kind == "artifact" and ref.format in ("tflite", "edgetpu"):
        rows, unmatched = vs_tflite(TFLiteProbe(ref.path), probe, samples, in_map, progress)
    elif ref.kind == "model" and ref.framework in ("torch", "torch-exported"):
        rows, unmatched = vs_torch(TorchTap(ref.native), probe, samples, in_map, progress)
    else:
        raise BadInput(
            f"--per-layer cannot match the {ref.framework or ref.format} reference with a .tflite candidate yet.",
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
    """The per-layer verdict: each row is marked `diverged` when below a threshold.

    Args:
        rows: per-layer rows in computation order (layer, op_type, shape, psnr_db, cosine,
            max_abs, ...); each gets `index` and `diverged` added in place.
        unmatched: the not observable layers, returned as they are.
        thresholds: min_psnr_db (dB) and min_cosine, each optional (the output-level preset's,
            edgekit.parity.PRESETS).
        n: how many samples were compared.

    Returns:
        {layers, first_divergence (the first diverged row's summary with `reason`, or None),
        worst_layers (the WORST lowest by PSNR then cosine), not_observable, per_layer_samples}.
    """
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

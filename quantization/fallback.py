"""Did a quantization recipe do what its name says? The verdict that makes a float or hybrid
`--quantize int8` build exit 1 unless the user accepts it (`--allow-float-fallback`).

`assess` reads the `quantization` dict a converter returned (TFLite: `quantization.tflite.summarize`;
ExecuTorch: `quantization.pt2e.summarize_graph` under "pt2e") and says which of these happened:

| status          | meaning                                                                   |
|-----------------|---------------------------------------------------------------------------|
| `float`         | the recipe did not run at all (no weight became int8 / fp16)               |
| `hybrid`        | an integer recipe left compute ops (conv, linear, add, ELU, ...) in float |
| `selective`     | ops were left float on purpose by the accuracy-aware search              |
| `full`          | every compute op is in the recipe's type                                 |
| `not-applicable`| `--quantize none`                                                         |
"""

from __future__ import annotations

INTEGER_RECIPES = ("int8", "int16x8")


def assess(recipe: str, quant: dict, allow: bool) -> dict:
    """The fallback verdict of one build.

    Args:
        recipe: the `--quantize` name.
        quant: the artifact's `quantization` dict (keys `effective`, `float_ops_by_type`, and for
            PT2E `pt2e.float_ops_by_type`; `float_layers` when the search kept layers float).
        allow: the user's `--allow-float-fallback`.

    Returns {"status", "float_ops": {op type: count}, "accepted": bool, "passed": bool,
    "reason": str|None}; `passed` is False when the build fell back to float (or hybrid) and
    the user did not accept it, and when an accuracy-aware search (`quant["search"]`) met no
    configuration (--allow-float-fallback does not accept that). Never raises.
    """
    if recipe == "none":
        return {"status": "not-applicable", "float_ops": {}, "accepted": allow, "passed": True, "reason": None}
    search = quant.get("search")
    if search is not None and not search.get("met"):
        n = len(quant.get("float_layers") or [])
        return {"status": "selective", "float_ops": {}, "accepted": False, "passed": False,
                "reason": f"no configuration met the bar ({search.get('bar')}) in the accuracy-aware search; "
                          f"the best one tried ({n} layer(s) float) was written"}
    float_ops = dict(quant.get("float_ops_by_type") or (quant.get("pt2e") or {}).get("float_ops_by_type") or {})
    if quant.get("effective") is False:
        status = "float"
        reason = f"--quantize {recipe} had no effect: " + (quant.get("note") or "the artifact is the float model")
    elif recipe in INTEGER_RECIPES and float_ops and quant.get("float_layers"):
        status, reason = "selective", None  # the accuracy-aware search asked for these
    elif recipe in INTEGER_RECIPES and float_ops:
        listed = ", ".join(f"{k} ×{v}" for k, v in sorted(float_ops.items(), key=lambda kv: -kv[1]))
        status = "hybrid"
        reason = f"--quantize {recipe} left {sum(float_ops.values())} compute op(s) in float ({listed})"
    else:
        status, reason = "full", None
    failed = status in ("float", "hybrid")
    return {"status": status, "float_ops": float_ops, "accepted": bool(allow and failed),
            "passed": not failed or allow, "reason": reason}


def raise_for_fallback(result: dict) -> None:
    """Raise CheckFailed (exit 1) when a convert RESULT's `quantization.fallback` did not pass;
    the artifact and manifest are already written, so the message says so. No-op otherwise."""
    from edgekit.errors import CheckFailed

    quant = result.get("quantization") or {}
    fb = quant.get("fallback") or {}
    if fb and not fb.get("passed", True) and quant.get("search") is not None:
        from .search import table_text

        raise CheckFailed(f"{fb['reason']} (files written: {result.get('artifact')}).\nWhat was tried (search split):\n"
                          + table_text(quant["search"]),
                          "Relax the bar, give more (or more representative) calibration data, or use --quantize "
                          "int16x8 / fp16.")
    if fb and not fb.get("passed", True):
        raise CheckFailed(
            f"{fb.get('reason') or 'The recipe fell back to float'} (files written: {result.get('artifact')}).",
            "Pass --allow-float-fallback to accept a float or hybrid build knowingly (edgekit.yaml: "
            "allow_float_fallback: true), choose another --to format or recipe, or replace the ops named above.",
        )

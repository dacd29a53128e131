"""`validate --per-layer` on an int8 .pte: every quantized layer is listed with its error (the
program's quantized graph, from its ETRecord, run in eager PyTorch), not one delegate row."""

from __future__ import annotations

import math


def test_per_layer_on_int8_pte_lists_every_quantized_layer(cli, torch_digits, tmp_path):
    pte = tmp_path / "digits_int8.pte"
    model, _, weights, _, shape = torch_digits["args"]
    r = cli("convert", *torch_digits["args"], "--to", "executorch", "--quantize", "int8", "--calibration",
            torch_digits["calib"], "--no-validate", "--etrecord", "-o", pte)
    assert r.exit_code == 0, r
    r = cli("validate", model, pte, "--weights", weights, "--input-shape", shape, "--data", torch_digits["test"],
            "--samples", "8", "--per-layer", "--preset", "int8", "--json")
    assert r.exit_code in (0, 1), r
    rows = {row["layer"]: row for row in r.json()["layers"]}
    assert set(rows) == {"conv1", "conv2", "fc1", "fc2"}, r.json()["layers"]
    # the delegate's last layer is observed in the .pte itself; the ones inside it in the int8 graph
    assert {k: v["observed"] for k, v in rows.items()} == {"conv1": "int8 graph (eager)", "conv2": "int8 graph (eager)",
                                                           "fc1": "int8 graph (eager)", "fc2": "pte"}
    for row in rows.values():
        assert math.isfinite(row["psnr_db"]) and 10 < row["psnr_db"] < 100, row  # int8: close, not exact

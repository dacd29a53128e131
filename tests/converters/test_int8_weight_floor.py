"""int8 of a model whose folded convolutions have small weights (issue 14: PP-OCRv4's detector
had cosine 0.12 as a .pte): the PT2E quantizers' eps = 2**-12 floors every per-channel weight
scale, so a channel whose weights are all below 127 · 2**-12 ≈ 0.031 is stored in steps coarser
than its values. edgekit lowers that floor for weights (edgekit.quantization.pt2e_floor); the
.pte of such a conv is then as close to the float model as a conv with ordinary weights."""

from __future__ import annotations

import numpy as np
import pytest


def _small_weight_conv():
    """A 1x1 conv, 8 → 8 channels, every weight in ±0.001 (a BatchNorm with a small gamma folded
    into it looks like this), bias 0; and 16 inputs of standard deviation 30 (activations of a
    folded backbone reach hundreds), so the output range, not the eps of its own observer, sets its step."""
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 8, 1)
    with torch.no_grad():
        conv.weight.uniform_(-0.001, 0.001)
        conv.bias.zero_()
    rng = np.random.default_rng(0)
    xs = [torch.from_numpy((30 * rng.standard_normal((1, 8, 6, 6))).astype(np.float32)) for _ in range(16)]
    return conv.eval(), xs


def _sqnr_db(conv, xs, unfloor: bool) -> float:
    """SQNR (dB) of the PT2E-simulated int8 conv against float, XNNPACK's quantizer."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgekit.quantization import RECIPES, pt2e, pt2e_floor

    q = pt2e.quantizer_for("xnnpack", RECIPES["int8"])
    if unfloor:
        q = pt2e_floor.unfloored(q)
    prepared = prepare_pt2e(torch.export.export(conv, (xs[0],)).module(), q)
    with torch.no_grad():
        for x in xs:
            prepared(x)
        converted = convert_pt2e(prepared)
        ref = torch.cat([conv(x) for x in xs]).double()
        out = torch.cat([converted(x) for x in xs]).double()
    return float(10 * torch.log10((ref ** 2).mean() / ((ref - out) ** 2).mean()))


def test_small_weights_keep_their_precision_only_without_the_floor():
    conv, xs = _small_weight_conv()
    floored, unfloored = _sqnr_db(conv, xs, False), _sqnr_db(conv, xs, True)
    assert floored < 25, f"the upstream floor should cost precision here ({floored:.1f} dB)"
    assert unfloored > 35 and unfloored > floored + 10, (floored, unfloored)


def test_unfloor_changes_weight_specs_only():
    """Weights get eps 2**-23; activation specs keep the quantizer's own eps (2**-12)."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from edgekit.quantization import RECIPES, pt2e, pt2e_floor

    conv, xs = _small_weight_conv()
    gm = torch.export.export(conv, (xs[0],)).module()
    q = pt2e.quantizer_for("xnnpack", RECIPES["int8"])
    gm = q.transform_for_annotation(gm)
    q.annotate(gm)
    assert pt2e_floor.unfloor_weights(gm) == 1
    node = next(n for n in gm.graph.nodes if n.meta.get("quantization_annotation") and "conv" in str(n.target))
    specs = node.meta["quantization_annotation"].input_qspec_map
    eps = {str(s.qscheme): s.observer_or_fake_quant_ctr.p.keywords.get("eps") for s in specs.values() if s is not None}
    assert eps == {"torch.per_channel_symmetric": pytest.approx(2.0 ** -23),
                   "torch.per_tensor_affine": pytest.approx(2.0 ** -12)}, eps


@pytest.mark.parametrize("to, suffix", [("executorch", ".pte"), ("tflite", ".tflite")])
def test_int8_of_small_weight_conv_matches_float(cli, tmp_path, to, suffix):
    """The real paths: edgekit convert --to executorch|tflite --quantize int8 (PT2E with XNNPACK's
    or litert-torch's quantizer) of the same conv (a factory file), parity against PyTorch on
    held-out data."""
    conv, xs = _small_weight_conv()
    import torch

    torch.save(conv.state_dict(), tmp_path / "w.pt")
    (tmp_path / "net.py").write_text("import torch\n\ndef net():\n    m = torch.nn.Conv2d(8, 8, 1)\n"
                                     f"    m.load_state_dict(torch.load({str(tmp_path / 'w.pt')!r}, weights_only=True))\n"
                                     "    return m.eval(), (torch.zeros(1, 8, 6, 6),)\n")
    np.save(tmp_path / "calib.npy", np.concatenate([x.numpy() for x in xs]))
    rng = np.random.default_rng(1)
    np.save(tmp_path / "check.npy", (30 * rng.standard_normal((8, 8, 6, 6))).astype(np.float32))
    r = cli("convert", f"{tmp_path / 'net.py'}:net", "--to", to, "--quantize", "int8", "--calibration",
            tmp_path / "calib.npy", "--data", tmp_path / "check.npy", "-o", tmp_path / f"c{suffix}", "--json")
    assert r.exit_code == 0, r
    assert r.json()["parity"]["outputs"][0]["psnr_db"] > 40  # measured 48.0 both; .tflite floored: 30.3

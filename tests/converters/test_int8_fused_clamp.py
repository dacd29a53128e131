"""int8 by default (issue 11): a conv → ReLU6 pair is quantized as one pattern, its int8 range
the ReLU6's [0, 6] and not the conv's pre-activation range, for both PT2E quantizers; with
litert-torch every residual add is int8 too, so a CNN's `.tflite` is full-integer. The
accuracy this buys on EfficientNet-Lite0 is asserted in test_torch_efficientnet.py (slow)."""

from __future__ import annotations

import numpy as np
import pytest


def _prepared(backend: str, fused: bool = True):
    """Relu6Residual prepared with edgekit's quantizer for BACKEND (or, with fused=False, the
    upstream quantizer class alone) and calibrated on 16 random samples."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from edgekit.quantization import RECIPES, pt2e
    from tests.converters import torch_nets

    model, example = torch_nets.relu6_residual()
    q = pt2e.quantizer_for(backend, RECIPES["int8"])
    if not fused:
        q = type(q).__mro__[1]().set_global(q.global_config)
    prepared = prepare_pt2e(torch.export.export(model, example).module(), q)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(16):
            prepared(torch.from_numpy(rng.standard_normal((1, 3, 16, 16)).astype(np.float32)))
    return prepared


def _observer_after(gm, node):
    users = [u for u in node.users if u.op == "call_module" and "activation_post_process" in u.target]
    return gm.get_submodule(users[0].target) if users else None


def _is(node, *names) -> bool:
    return node.op == "call_function" and str(getattr(node.target, "__name__", "")).split(".")[0] in names


@pytest.mark.parametrize("backend", ["xnnpack", "litert"])
def test_relu6_after_a_conv_is_observed_over_its_own_range(backend):
    gm = _prepared(backend)
    clamps = [n for n in gm.graph.nodes if _is(n, "hardtanh", "relu6") and _is(n.args[0], "conv2d")]
    assert len(clamps) == 3  # nn.ReLU6 (aten.hardtanh), F.relu6 (aten.relu6), Hardtanh(-1, 1)
    for n in clamps:
        assert _observer_after(gm, n.args[0]) is None, "the conv's output must not be quantized before the clamp"
        obs = _observer_after(gm, n)
        lo, hi = (-1.0, 1.0) if n.args[1:] == (-1.0, 1.0) else (0.0, 6.0)
        assert obs is not None and lo <= float(obs.min_val) and float(obs.max_val) <= hi


@pytest.mark.parametrize("backend", ["xnnpack", "litert"])
def test_upstream_quantizer_observes_the_conv_range_the_fix_replaces(backend):
    """The measured cause: without edgekit's fused-clamp annotation the conv's output observer
    spans the pre-activation range (here well outside [0, 6]) and ReLU6 shares it."""
    gm = _prepared(backend, fused=False)
    relu6 = next(n for n in gm.graph.nodes if _is(n, "hardtanh") and n.args[1:] == (0.0, 6.0))
    shared = relu6.args[0]  # the conv's output observer, which ReLU6 reads and shares
    assert shared.op == "call_module" and _is(shared.args[0], "conv2d")
    obs = gm.get_submodule(shared.target)
    assert float(obs.min_val) < -1.0 or float(obs.max_val) > 7.0


def test_litert_residual_add_is_annotated():
    gm = _prepared("litert")
    adds = [n for n in gm.graph.nodes if _is(n, "add")]
    assert len(adds) == 1
    add = adds[0]
    assert _observer_after(gm, add) is not None
    assert all(a.op == "call_module" and "activation_post_process" in a.target for a in add.args[:2])


@pytest.mark.parametrize("to,suffix", [("tflite", ".tflite"), ("executorch", ".pte")])
def test_relu6_residual_int8_is_full_integer(cli, nets, tmp_path, to, suffix):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.standard_normal((16, 3, 16, 16)).astype(np.float32))
    r = cli("convert", nets("relu6_residual"), "--to", to, "--quantize", "int8", "--calibration",
            tmp_path / "calib.npy", "--no-validate", "-o", tmp_path / f"r{suffix}", "--json")
    assert r.exit_code == 0, r
    res = r.json()
    q = res["quantization"]
    assert q["fallback"]["status"] == "full", q["fallback"]
    if to == "tflite":
        assert q["float_ops_by_type"] == {} and q["ops_by_type"]["ADD"] == 1
    else:  # the fused conv → clamp pairs and the add run inside XNNPACK
        assert not [o for o in res["delegation"]["not_delegated"] if o.split(".")[1].startswith(("conv", "hardtanh", "add"))]


def test_float_layer_after_a_fused_relu6_still_lowers_to_xnnpack():
    """The accuracy-aware search keeps `project` float; it reads the depthwise conv → F.relu6
    pair, whose int8 output nothing else reads. Left int8, the depthwise conv would fall outside
    the delegate with int8 weights and lowering would fail (no out variant of
    dequantize_per_channel); `quantize_lowerable` keeps it float too."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgekit.quantization import RECIPES, search_pt2e
    from tests.converters import torch_nets

    model, example = torch_nets.relu6_residual()
    rng = np.random.default_rng(0)
    calib = [(torch.from_numpy(rng.standard_normal((1, 3, 16, 16)).astype(np.float32)),) for _ in range(8)]
    exported = torch.export.export(model, example)
    plain, _ = search_pt2e.quantize(exported.module(), example, RECIPES["int8"], calib, float_layers=["project"])
    assert search_pt2e.stranded(plain)  # the producer of project's input is left int8 in, float out
    converted, used = search_pt2e.quantize_lowerable(exported, example, RECIPES["int8"], calib, ["project"])
    assert "project" in used and len(used) > 1 and not search_pt2e.stranded(converted)
    edge = to_edge_transform_and_lower(torch.export.export(converted, example), partitioner=[XnnpackPartitioner()])
    left = [n for n in edge.exported_program().graph_module.graph.nodes
            if n.op == "call_function" and "dequantize_per_channel" in str(n.target)]
    assert not left
    edge.to_executorch()

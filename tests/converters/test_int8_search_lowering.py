"""The accuracy-aware .pte search's float layers must lower: an int8 conv whose output only float
layers read would leave XNNPACK with an int8 conv and a float output, which it does not run, and
the conv (with its per-channel weights) would fall outside the delegate. `quantize_lowerable`
keeps such a producer float too. Plumbing on a small random net (real PT2E, real lowering)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("executorch")


class Chain(nn.Module):
    """conv_a → ReLU6 → conv_b → ReLU6 → conv_c → pooled linear head, on 1x3x16x16."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 8, 3, padding=1)
        self.conv_b = nn.Conv2d(8, 8, 3, padding=1)
        self.conv_c = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 4)

    def forward(self, image):
        x = nn.functional.relu6(self.conv_a(image))
        x = nn.functional.relu6(self.conv_b(x))
        return self.head(nn.functional.adaptive_avg_pool2d(self.conv_c(x), 1).flatten(1))


@pytest.fixture(scope="module")
def chain():
    torch.manual_seed(0)
    net = Chain().eval()
    example = (torch.randn(1, 3, 16, 16),)
    calib = [(torch.randn(1, 3, 16, 16),) for _ in range(8)]
    return net, torch.export.export(net, example), example, calib


def _lower(gm, example):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgekit.converters.torch_to_executorch import delegation_info

    edge = to_edge_transform_and_lower(torch.export.export(gm, example), partitioner=[XnnpackPartitioner()])
    info = delegation_info(edge)
    edge.to_executorch()
    return info


def test_a_float_layer_strands_the_int8_conv_before_it(chain):
    from edgekit.quantization import RECIPES
    from edgekit.quantization import search_pt2e as sp

    net, ep, example, calib = chain
    gm, _ = sp.quantize(ep.module(), example, RECIPES["int8"], calib, ("conv_b",))
    assert sp.stranded(gm) == ["conv_a"]  # its ReLU6 output is read by float conv_b only


def test_quantize_lowerable_keeps_the_stranded_producer_float_and_lowers(chain):
    from edgekit.quantization import RECIPES
    from edgekit.quantization import search_pt2e as sp

    net, ep, example, calib = chain
    gm, used = sp.quantize_lowerable(ep, example, RECIPES["int8"], calib, ("conv_b",))
    assert used == ["conv_a", "conv_b"]
    assert sp.stranded(gm) == []
    with torch.no_grad():  # conv_a and conv_b float: the result stays close to the float net
        x = calib[0][0]
        assert torch.nn.functional.cosine_similarity(gm(x).flatten(), net(x).flatten(), 0) > 0.99
    info = _lower(gm, example)
    assert info["not_delegated"] == [], info  # no int8 conv left outside XNNPACK


def test_a_float_layer_with_an_int8_reader_strands_nothing(chain):
    from edgekit.quantization import RECIPES
    from edgekit.quantization import search_pt2e as sp

    net, ep, example, calib = chain
    gm, used = sp.quantize_lowerable(ep, example, RECIPES["int8"], calib, ("conv_a",))
    assert used == ["conv_a"]  # conv_a's input is the image; conv_b (int8) reads its output
    assert _lower(gm, example)["not_delegated"] == []

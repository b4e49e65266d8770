"""The PSENet gamma-map network, exactly as the official code builds it.

A 15,251-parameter UNet of MobileNet-style blocks (no normalisation, LeakyReLU 0.01,
reflect-padded depthwise convs, an ungated squeeze-excite on the first and last blocks).
It predicts r, and the gamma map is gamma = |r + 1|, one value per pixel and colour
channel; the enhanced image is Y = 1 - (1 - I) ** gamma.

Module and parameter names follow the official checkpoints (``conv.0`` expand, ``conv.2``
depthwise, ``conv.3.fc`` squeeze-excite, ``conv.5`` project) so those load strictly.
The official checkpoints load into it strictly and give the same output (tests/unit/test_model.py),
which pins each of these choices.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from psenet_stream.ops import apply_gamma

LEAKY_SLOPE = 0.01  # official code: nn.LeakyReLU() default; the 0.1 in the checkpoint hparams is unused


class SqueezeExcite(nn.Module):
    """Global average pool -> 1x1 -> ReLU -> 1x1 -> multiply. No sigmoid gate, reduction 1."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


class Bottleneck(nn.Module):
    """1x1 expand -> act -> 3x3 depthwise (reflect) -> SE? -> act -> 1x1 project (+ residual)."""

    def __init__(self, inp: int, out: int, expand: int, stride: int = 1, se: bool = False):
        super().__init__()
        self.residual = stride == 1 and inp == out
        self.conv = nn.Sequential(
            nn.Conv2d(inp, expand, 1),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(expand, expand, 3, stride, 1, groups=expand, padding_mode="reflect"),
            SqueezeExcite(expand) if se else nn.Identity(),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(expand, out, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


class ExposureHead(nn.Module):
    """An optional global exposure head (259 parameters, 1.7 % of the network).

    From global statistics of the frame the network sees (per-channel means, the luma's spread
    and the share of luma above and below fixed levels: how much is near white or near black)
    a two-layer MLP gives one log-gamma offset per channel, so gamma becomes
    |r + 1| * exp(offset). The last layer starts at zero: a network given a fresh head answers
    exactly as before, and fine-tuning only the head teaches it a global exposure correction.
    """

    HIGH = (0.5, 0.7, 0.85, 0.95, 0.99)
    LOW = (0.05, 0.15, 0.3)
    FEATURES = 3 + 1 + len(HIGH) + len(LOW)

    def __init__(self, hidden: int = 16):
        super().__init__()
        self.fc1 = nn.Linear(self.FEATURES, hidden)
        self.fc2 = nn.Linear(hidden, 3)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, FEATURES); no gradient flows to x through the shares."""
        mean = x.mean(dim=(2, 3))
        y = 0.2126 * x[:, 0] + 0.7152 * x[:, 1] + 0.0722 * x[:, 2]
        spread = y.flatten(1).std(dim=1, keepdim=True)
        high = [(y > t).to(x.dtype).mean(dim=(1, 2)) for t in self.HIGH]
        low = [(y < t).to(x.dtype).mean(dim=(1, 2)) for t in self.LOW]
        return torch.cat([mean, spread, torch.stack(high + low, dim=1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 3, 1, 1) log-gamma offsets."""
        h = F.leaky_relu(self.fc1(self.features(x)), LEAKY_SLOPE)
        return self.fc2(h)[:, :, None, None]


class PSENet(nn.Module):
    """The official ``UnetTMO``. ``forward`` returns ``(Y, gamma)`` for RGB input in [0, 1].
    ``head=True`` adds the optional ``ExposureHead`` (not in the official checkpoints)."""

    def __init__(self, base: int = 16, head: bool = False):
        super().__init__()
        b = base
        self.first_conv = Bottleneck(3, 3, 6, se=True)
        self.conv1 = Bottleneck(3, b, 24, stride=2)
        self.conv2 = Bottleneck(b, b, 24)
        self.conv3 = Bottleneck(b, 2 * b, 48, stride=2)
        self.conv5 = Bottleneck(2 * b, 2 * b, 48)
        self.conv6 = Bottleneck(2 * b, b, 48)
        self.conv7 = Bottleneck(2 * b, b, 48)
        self.conv8 = Bottleneck(b, 3, 24)
        self.last_conv = Bottleneck(6, 3, 9, se=True)
        self.head = ExposureHead() if head else None

    def gamma(self, x: torch.Tensor) -> torch.Tensor:
        """The gamma map |r + 1| for x (N, 3, H, W) in [0, 1]; any H, W >= 2."""
        x1 = self.first_conv(x)
        d2 = self.conv2(self.conv1(x1))
        r = self.conv6(self.conv5(self.conv3(d2)))
        r = F.interpolate(r, size=d2.shape[2:], mode="bilinear", align_corners=True)
        r = self.conv8(self.conv7(torch.cat([d2, r], dim=1)))
        r = F.interpolate(r, size=x.shape[2:], mode="bilinear", align_corners=True)
        r = self.last_conv(torch.cat([x1, r], dim=1))
        g = torch.abs(r + 1)
        return g if self.head is None else g * torch.exp(self.head(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.gamma(x)
        return apply_gamma(x, g), g


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class GammaOnly(nn.Module):
    """A PSENet whose forward returns only the gamma map: what ONNX export and TensorRT compile."""

    def __init__(self, model: PSENet):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.gamma(x)

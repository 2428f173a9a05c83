"""The image transformation network of Johnson et al. 2016, with instance normalization.

Reflection padding (no border artefacts), instance norm (Ulyanov et al.: contrast normalization per
image is what makes feed-forward stylization work), residual blocks, and nearest-neighbour upsample
followed by a convolution instead of transposed convolutions (no checkerboard artefacts).

Normalization layers are pluggable: `InstanceNorm` learns one scale and shift per channel (one
style); `ConditionalInstanceNorm` (Dumoulin et al. 2017) holds one scale/shift pair per style and
takes the pair, or a blend of pairs, from the `style` argument. Every norm layer reads its
parameters from a `NormParams` object, so the style-prediction network can supply them directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TransformerConfig:
    width: int = 32  # channels of the first layer; 16 is the light (fast) network
    num_residual: int = 5
    num_styles: int = 1  # > 1: conditional instance norm with one (scale, shift) per style

    def to_dict(self) -> dict:
        return {"width": self.width, "num_residual": self.num_residual, "num_styles": self.num_styles}

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        return cls(**{k: int(d[k]) for k in ("width", "num_residual", "num_styles") if k in d})


class ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: int = 1):
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x):
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv(self.pad(x))


class InstanceNorm(nn.Module):
    """Instance norm whose affine parameters may be supplied per call (N x C each) or learned."""

    def __init__(self, channels: int, num_styles: int = 1):
        super().__init__()
        self.channels = channels
        self.num_styles = num_styles
        # One row per style; with a single style this is the ordinary affine instance norm.
        self.scale = nn.Parameter(torch.ones(num_styles, channels))
        self.shift = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x, style=None):
        """`style`: None (style 0), N x num_styles blend weights, or a (scale, shift) pair of N x C."""
        x = F.instance_norm(x)
        if isinstance(style, tuple):
            scale, shift = style
        elif style is None:
            scale, shift = self.scale[:1], self.shift[:1]
        else:
            weights = style.to(self.scale.dtype)
            scale, shift = weights @ self.scale, weights @ self.shift
        return x * scale[:, :, None, None].to(x.dtype) + shift[:, :, None, None].to(x.dtype)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.norm1 = InstanceNorm(channels, num_styles)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.norm2 = InstanceNorm(channels, num_styles)

    def forward(self, x, styles):
        y = F.relu(self.norm1(self.conv1(x), next(styles)))
        y = self.norm2(self.conv2(y), next(styles))
        return x + y


class StyleTransferNet(nn.Module):
    """RGB [0, 1] in, RGB [0, 1] out, any size (multiples of 4 avoid a resize at the end)."""

    def __init__(self, config: TransformerConfig = TransformerConfig()):
        super().__init__()
        self.config = config
        w, s = config.width, config.num_styles
        self.conv1, self.norm1 = ConvLayer(3, w, 9), InstanceNorm(w, s)
        self.conv2, self.norm2 = ConvLayer(w, 2 * w, 3, stride=2), InstanceNorm(2 * w, s)
        self.conv3, self.norm3 = ConvLayer(2 * w, 4 * w, 3, stride=2), InstanceNorm(4 * w, s)
        self.residuals = nn.ModuleList(ResidualBlock(4 * w, s) for _ in range(config.num_residual))
        self.up1, self.norm4 = ConvLayer(4 * w, 2 * w, 3, upsample=2), InstanceNorm(2 * w, s)
        self.up2, self.norm5 = ConvLayer(2 * w, w, 3, upsample=2), InstanceNorm(w, s)
        self.out = ConvLayer(w, 3, 9)

    def norm_layers(self) -> list[InstanceNorm]:
        """All norm layers in the order `forward` uses them (the order of a flat `NormParams` list)."""
        return [m for m in self.modules() if isinstance(m, InstanceNorm)]

    def norm_param_count(self) -> int:
        """Scalars a style-prediction network must produce: a scale and a shift per channel."""
        return sum(2 * n.channels for n in self.norm_layers())

    def forward(self, x: torch.Tensor, style=None) -> torch.Tensor:
        """`style`: None; N x num_styles blend weights; or a list of (scale, shift) per norm layer."""
        if style is None or torch.is_tensor(style):
            styles = iter([style] * len(self.norm_layers()))
        else:
            styles = iter(style)
        h, w = x.shape[2:]
        y = F.relu(self.norm1(self.conv1(x), next(styles)))
        y = F.relu(self.norm2(self.conv2(y), next(styles)))
        y = F.relu(self.norm3(self.conv3(y), next(styles)))
        for block in self.residuals:
            y = block(y, styles)
        y = F.relu(self.norm4(self.up1(y), next(styles)))
        y = F.relu(self.norm5(self.up2(y), next(styles)))
        y = self.out(y)
        if y.shape[2:] != (h, w):  # sizes not divisible by 4 come back a few pixels off
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        # A sigmoid-free output range: the network learns [0, 1] directly; clamp only at the boundary.
        return y


def split_norm_params(net: StyleTransferNet, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """N x norm_param_count() -> per-layer (scale, shift) pairs, in forward order."""
    out, i = [], 0
    for layer in net.norm_layers():
        c = layer.channels
        out.append((flat[:, i : i + c], flat[:, i + c : i + 2 * c]))
        i += 2 * c
    return out

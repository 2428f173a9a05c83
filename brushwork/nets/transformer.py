"""The image transformation network of Johnson et al. 2016, with instance normalization.

Reflection padding (no border artefacts), instance norm (Ulyanov et al.: contrast normalization per
image is what makes feed-forward stylization work), residual blocks, and nearest-neighbour upsample
followed by a convolution instead of transposed convolutions (no checkerboard artefacts).

Normalization layers hold one (scale, shift) row per style (conditional instance norm, Dumoulin et
al. 2017, when there are several) and take a row, a blend of rows, or a pair supplied per call (so a
style-prediction network can supply them directly).

The same module also describes Magenta's trained networks (`brushwork.nets.magenta`), which differ
only in a few switches of `TransformerConfig`: their own channel counts per layer, contracting layers
without a norm (Ghiasi et al.'s network folds a batch norm into those convolutions' biases), a norm
after the last convolution and a sigmoid output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

OUTPUT_ACTIVATIONS = ("none", "sigmoid")
MAX_RESIDUAL_BLOCKS = 64  # the networks trained here have 5


@dataclass(frozen=True)
class TransformerConfig:
    width: int = 32  # channels of the first layer; 16 is the light (fast) network
    num_residual: int = 5
    num_styles: int = 1  # > 1: conditional instance norm with one (scale, shift) per style
    # Channels of (conv1, conv2, conv3 and the residual blocks, up1, up2); None: (w, 2w, 4w, 2w, w).
    channels: tuple[int, int, int, int, int] | None = None
    contract_norm: bool = True  # False: conv1-conv3 are followed by their bias and a ReLU only
    output_norm: bool = False  # True: a norm after the last convolution
    output_activation: str = "none"  # or "sigmoid"

    @property
    def layer_channels(self) -> tuple[int, int, int, int, int]:
        w = self.width
        return tuple(self.channels) if self.channels is not None else (w, 2 * w, 4 * w, 2 * w, w)

    def to_dict(self) -> dict:
        d = {"width": self.width, "num_residual": self.num_residual, "num_styles": self.num_styles}
        # The switches are written only when set, so the networks trained here keep their configs as they were.
        if self.channels is not None:
            d["channels"] = list(self.channels)
        if not self.contract_norm:
            d["contract_norm"] = False
        if self.output_norm:
            d["output_norm"] = True
        if self.output_activation != "none":
            d["output_activation"] = self.output_activation
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        kw = {k: int(d[k]) for k in ("width", "num_residual", "num_styles") if k in d}
        # A config read from a file is outside input: each residual block is Python objects, built before
        # any tensor in the file can be compared with it (see build_for_model), so their number is bounded.
        width, blocks, styles = kw.get("width", 1), kw.get("num_residual", 0), kw.get("num_styles", 1)
        if width < 1 or styles < 1 or not 0 <= blocks <= MAX_RESIDUAL_BLOCKS:
            raise ValueError(f"width {width}, {blocks} residual blocks, {styles} styles (expected at least 1, "
                             f"0 to {MAX_RESIDUAL_BLOCKS}, at least 1)")
        if d.get("channels") is not None:
            channels = tuple(int(c) for c in d["channels"])
            if len(channels) != 5 or min(channels) < 1:
                raise ValueError(f"channels must be 5 positive numbers, got {d['channels']}")
            kw["channels"] = channels
        for key in ("contract_norm", "output_norm"):
            if key in d:
                if not isinstance(d[key], bool):
                    raise ValueError(f"{key} must be true or false, got {d[key]!r}")
                kw[key] = d[key]
        if "output_activation" in d:
            if d["output_activation"] not in OUTPUT_ACTIVATIONS:
                raise ValueError(f"unknown output activation {d['output_activation']!r}")
            kw["output_activation"] = d["output_activation"]
        return cls(**kw)


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
        s = config.num_styles
        c1, c2, c3, u1, u2 = config.layer_channels

        def contract_norm(c):
            return InstanceNorm(c, s) if config.contract_norm else None

        self.conv1, self.norm1 = ConvLayer(3, c1, 9), contract_norm(c1)
        self.conv2, self.norm2 = ConvLayer(c1, c2, 3, stride=2), contract_norm(c2)
        self.conv3, self.norm3 = ConvLayer(c2, c3, 3, stride=2), contract_norm(c3)
        self.residuals = nn.ModuleList(ResidualBlock(c3, s) for _ in range(config.num_residual))
        self.up1, self.norm4 = ConvLayer(c3, u1, 3, upsample=2), InstanceNorm(u1, s)
        self.up2, self.norm5 = ConvLayer(u1, u2, 3, upsample=2), InstanceNorm(u2, s)
        self.out = ConvLayer(u2, 3, 9)
        self.norm_out = InstanceNorm(3, s) if config.output_norm else None

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
        y = x
        for conv, norm in ((self.conv1, self.norm1), (self.conv2, self.norm2), (self.conv3, self.norm3)):
            y = conv(y)
            y = F.relu(norm(y, next(styles)) if norm is not None else y)
        for block in self.residuals:
            y = block(y, styles)
        y = F.relu(self.norm4(self.up1(y), next(styles)))
        y = F.relu(self.norm5(self.up2(y), next(styles)))
        y = self.out(y)
        if self.norm_out is not None:
            y = self.norm_out(y, next(styles))
        if self.config.output_activation == "sigmoid":
            y = torch.sigmoid(y)
        if y.shape[2:] != (h, w):  # sizes not divisible by 4 come back a few pixels off
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        # The networks trained here have no output activation: they learn [0, 1] directly; clamp only at the boundary.
        return y


def split_norm_params(net: StyleTransferNet, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """N x norm_param_count() -> per-layer (scale, shift) pairs, in forward order."""
    out, i = [], 0
    for layer in net.norm_layers():
        c = layer.channels
        out.append((flat[:, i : i + c], flat[:, i + c : i + 2 * c]))
        i += 2 * c
    return out

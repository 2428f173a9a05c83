"""Decoders that invert the VGG-19 encoder: features at a named layer back to an RGB image.

The decoder mirrors the encoder (Huang and Belongie 2017; Li et al. 2017): the encoder's
convolutions in reverse order, each mapping its output channels back to its input channels, with
ReLUs in between and no normalization. Where the encoder pooled, the decoder upsamples (nearest
neighbour) before the next convolution, and every convolution pads by reflection: the
upsample-then-convolve `ConvLayer` of the transformation network, which avoids checkerboard and
border artefacts.

`width` scales every hidden channel count (0.5: a quarter of the work, for CPU training); the first
convolution still takes the encoder's full channel count and the last still gives 3 channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from brushwork.errors import BrushworkError
from brushwork.features.vgg import LAYER_NAMES, layer_channels
from brushwork.nets.transformer import ConvLayer

# The layers a decoder may start from: the first ReLU of each block (the layers AdaIN and WCT use).
DECODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# Typical size (root mean square) of the bundled Caffe VGG-19's activations for photos in [0, 1],
# measured on 27 of the training photos (every 100th of ../shared/data/content; each photo within a
# factor of 2 of these). A decoder trained by brushwork divides its input by this, so that its first
# convolution sees values of order one. Fed raw, a fresh shallow decoder's outputs start in the tens; CPU
# training at lr 1e-3 then diverged at relu1_1 (pixel MSE 10, outputs of +-30) and died at relu2_1
# (an all-black output), which made every WCT result a flat colour.
FEATURE_RMS = {"relu1_1": 46.0, "relu2_1": 207.0, "relu3_1": 257.0, "relu4_1": 881.0, "relu5_1": 128.0}


def _encoder_convs(layer: str) -> list[tuple[str, int, int]]:
    """(conv name, in channels, out channels) of the encoder's convolutions up to `layer`, in order."""
    convs, channels = [], 3
    for name in LAYER_NAMES[: LAYER_NAMES.index(layer) + 1]:
        if name.startswith("conv"):
            out = layer_channels(name)
            convs.append((name, channels, out))
            channels = out
    return convs


def pooling_factor(layer: str) -> int:
    """How much smaller than the image the features at `layer` are (2 per pooling before it)."""
    return 2 ** sum(1 for n in LAYER_NAMES[: LAYER_NAMES.index(layer)] if n.startswith("pool"))


@dataclass(frozen=True)
class DecoderConfig:
    layer: str = "relu4_1"
    width: float = 1.0  # multiplier of the hidden channel counts
    input_scale: float = 1.0  # the features are multiplied by this first (see FEATURE_RMS; 1: decoders saved before)

    def __post_init__(self):
        if self.layer not in DECODER_LAYERS:
            raise BrushworkError(f"decoders start at one of {', '.join(DECODER_LAYERS)}, got {self.layer!r}")
        if not 0.05 <= float(self.width) <= 4:
            raise BrushworkError(f"decoder width must be between 0.05 and 4, got {self.width}")

    def channels(self, c: int) -> int:
        return max(1, round(c * float(self.width)))

    def to_dict(self) -> dict:
        return {"layer": self.layer, "width": float(self.width), "input_scale": float(self.input_scale)}

    @classmethod
    def from_dict(cls, d: dict) -> "DecoderConfig":
        return cls(layer=str(d.get("layer", "relu4_1")), width=float(d.get("width", 1.0)),
                   input_scale=float(d.get("input_scale", 1.0)))

    @classmethod
    def for_training(cls, layer: str, width: float = 1.0) -> "DecoderConfig":
        """A new decoder's config: its input scaled to order one (FEATURE_RMS)."""
        return cls(layer=layer, width=width, input_scale=1.0 / FEATURE_RMS[layer])


class Decoder(nn.Module):
    """Features of `config.layer` (N x C x h x w) -> RGB N x 3 x (h * f) x (w * f), f = pooling_factor."""

    def __init__(self, config: DecoderConfig = DecoderConfig()):
        super().__init__()
        self.config = config
        convs = _encoder_convs(config.layer)
        layers = []
        upsample = 1
        for index, (name, cin, cout) in enumerate(reversed(convs)):
            source = cout if index == 0 else config.channels(cout)  # the encoder's features come in at full width
            target = 3 if name == "conv1_1" else config.channels(cin)
            layers.append(ConvLayer(source, target, 3, upsample=upsample))
            # The encoder pooled just before the first convolution of blocks 2-5 (conv2_1 ...): the
            # decoder undoes that pooling by upsampling just before the convolution after this one.
            upsample = 2 if name.endswith("_1") and name != "conv1_1" else 1
        self.convs = nn.ModuleList(layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features * self.config.input_scale if self.config.input_scale != 1.0 else features
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = torch.relu(x)
        return x

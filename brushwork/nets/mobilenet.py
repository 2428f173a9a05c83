"""The style-prediction network of Ghiasi et al. 2017 in its MobileNet-v2 form (Magenta's distilled
version of their Inception-v3 predictor): a painting -> a 100-number style embedding -> every
normalization parameter of a `StyleTransferNet`.

The trunk is MobileNet-v2 (Sandler et al. 2018) up to its last 1 x 1 convolution (1280 channels),
with its batch norms folded into the convolutions' biases and ReLU6 activations; its mean over the
image goes through a 1 x 1 convolution to the embedding (the "bottleneck"). `to_params` maps the
embedding to each norm layer's (scale, shift) in `split_norm_params`' order: Magenta's network has
one 1 x 1 convolution per norm parameter vector, which together are this one linear map.

TensorFlow's "SAME" padding is kept: a stride-2 convolution pads its bottom and right edges by one
pixel more than its top and left ones on even sizes (`same_pad`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from brushwork.imaging import painting_views

# (expansion factor, output channels, repeats, stride of the first) per stage: MobileNet-v2's table.
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
TOP_CHANNELS = 1280


@dataclass(frozen=True)
class MobileNetPredictorConfig:
    norm_params: int  # what the transformer needs: StyleTransferNet.norm_param_count()
    embedding_size: int = 100
    image_size: int = 256  # the square the painting is cropped and resized to

    def to_dict(self) -> dict:
        return {"type": "mobilenet_v2", "norm_params": self.norm_params, "embedding_size": self.embedding_size,
                "image_size": self.image_size}

    @classmethod
    def from_dict(cls, d: dict) -> "MobileNetPredictorConfig":
        return cls(**{k: int(d[k]) for k in ("norm_params", "embedding_size", "image_size") if k in d})


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's SAME padding: output size ceil(size / stride), the odd pixel of padding at the end."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
        total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class SameConv(nn.Conv2d):
    """A convolution with TensorFlow's SAME padding (and a bias: the folded batch norm)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=True)

    def forward(self, x):
        return super().forward(same_pad(x, self.kernel_size[0], self.stride[0]))


class InvertedResidual(nn.Module):
    """Expand (1 x 1, ReLU6; absent when the factor is 1), depthwise 3 x 3 (ReLU6), project (1 x 1, linear),
    plus the input when the shapes allow."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        self.expand = SameConv(cin, hidden, 1) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, 3, stride=stride, groups=hidden)
        self.project = SameConv(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.project(F.relu6(self.depthwise(y)))
        return x + y if self.residual else y


class MobileNetStylePredictor(nn.Module):
    """RGB [0, 1] paintings (N x 3 x S x S) -> embeddings (`embed`) -> flat norm parameters (`norm_params`);
    `embed_painting` takes a whole painting of any shape."""

    def __init__(self, config: MobileNetPredictorConfig):
        super().__init__()
        self.config = config
        self.stem = SameConv(3, STEM_CHANNELS, 3, stride=2)
        blocks, cin = [], STEM_CHANNELS
        for expansion, cout, repeats, stride in MOBILENET_V2_STAGES:
            for r in range(repeats):
                blocks.append(InvertedResidual(cin, cout, expansion, stride if r == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.top = SameConv(cin, TOP_CHANNELS, 1)
        self.bottleneck = nn.Linear(TOP_CHANNELS, config.embedding_size)
        self.to_params = nn.Linear(config.embedding_size, config.norm_params)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.stem(images))
        y = F.relu6(self.top(self.blocks(y)))
        return self.bottleneck(y.mean(dim=(2, 3)))

    def embed_painting(self, painting: torch.Tensor) -> torch.Tensor:
        """1 x 3 x H x W painting of any shape -> 1 x embedding: the mean embedding of its square views
        (`painting_views`). Against the centre square alone, on the 8 held-out photo x painting pairs of
        benchmarks/any_style.py and 16 pairs of 8 other paintings, it lowered the style loss (201,794 ->
        200,690; 73,185 -> 72,558) and the palette distance (3.55 -> 3.49; 3.64 -> 3.30) and kept more of
        the subject (structure 0.772 -> 0.779; 0.822 -> 0.839)."""
        return self.embed(painting_views(painting, self.config.image_size)).mean(0, keepdim=True)

    def norm_params(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.to_params(embedding)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.norm_params(self.embed(images))


class TrainableEmbedding(nn.Module):
    """A style embedding as a parameter, mapped to norm parameters by a style predictor's frozen `to_params`:
    training it moves the style only within what the predictor can express (`brushwork train --kind adapt
    --adapt-params embedding`)."""

    def __init__(self, embedding: torch.Tensor, to_params: nn.Linear):
        super().__init__()
        self.embedding = nn.Parameter(embedding.detach().clone())
        self.to_params = to_params
        self.to_params.requires_grad_(False)

    def forward(self) -> torch.Tensor:
        """1 x norm parameters."""
        return self.to_params(self.embedding)

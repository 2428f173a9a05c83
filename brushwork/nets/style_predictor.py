"""The style-prediction network (after Ghiasi et al. 2017): a style image -> a compact embedding ->
every normalization parameter of a `StyleTransferNet`.

Ghiasi et al. feed the style image through a pretrained Inception-v3. Here the trunk is the loss
network the project already ships, VGG-19 (frozen), summarized by the channel-wise mean and standard
deviation of its activations at relu1_1 ... relu4_1 (the statistics AdaIN transfers: they carry
colour, texture and stroke, and are independent of where things are in the image). Only a small head
learns: statistics -> hidden layer -> the embedding (about 100 numbers) -> a linear map to the
transformer's (scale, shift) vector. This module holds the head and the statistics function; it
takes the VGG as an argument, so it holds no weights of its own beyond the head.

The last linear layer starts with its bias at the transformer's current norm parameters and small
weights, so an untrained predictor makes the transformer behave as it did before (for example a
reconstruction-pretrained network), and training moves away from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Layers whose channel statistics describe a style (AdaIN's set); 64 + 128 + 256 + 512 channels.
STATISTICS_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
STATISTICS_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}
OUTPUT_INIT_STD = 1e-3  # small: the predictor starts as the transformer's own norm parameters


@dataclass(frozen=True)
class PredictorConfig:
    norm_params: int  # what the transformer needs: StyleTransferNet.norm_param_count()
    embedding_size: int = 100
    hidden: int = 512
    statistics_size: int = 2 * sum(STATISTICS_CHANNELS.values())  # mean and std per channel

    def to_dict(self) -> dict:
        return {"norm_params": self.norm_params, "embedding_size": self.embedding_size, "hidden": self.hidden,
                "statistics_size": self.statistics_size}

    @classmethod
    def from_dict(cls, d: dict) -> "PredictorConfig":
        return cls(**{k: int(d[k]) for k in ("norm_params", "embedding_size", "hidden", "statistics_size") if k in d})


def style_statistics(vgg, images: torch.Tensor, features: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """N x statistics_size: log(1 + mean) and log(1 + std) of each channel at `STATISTICS_LAYERS`.

    `features` may hold those layers' activations already (a caller that also needs other layers
    runs VGG once). The log compresses the activations' wide range (Caffe-scale inputs give means
    from ~0.1 to ~100) into something a linear layer can use.
    """
    if features is None:
        features = vgg(images, STATISTICS_LAYERS)
    parts = []
    for name in STATISTICS_LAYERS:
        f = features[name].float().flatten(2)
        parts.append(torch.log1p(f.mean(-1)))
        parts.append(torch.log1p(f.std(-1, unbiased=False)))
    return torch.cat(parts, dim=1)


class StylePredictor(nn.Module):
    """Style statistics -> embedding (`embed`) -> flat norm parameters (`norm_params`)."""

    def __init__(self, config: PredictorConfig):
        super().__init__()
        self.config = config
        # Fixed standardization of the statistics, set from data once (`set_input_statistics`).
        self.register_buffer("input_mean", torch.zeros(config.statistics_size))
        self.register_buffer("input_std", torch.ones(config.statistics_size))
        self.encoder = nn.Sequential(
            nn.Linear(config.statistics_size, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.embedding_size),
        )
        self.to_params = nn.Linear(config.embedding_size, config.norm_params)
        nn.init.normal_(self.to_params.weight, std=OUTPUT_INIT_STD)

    def set_input_statistics(self, statistics: torch.Tensor) -> None:
        """Standardize inputs by the mean and spread of these statistics (rows: images)."""
        with torch.no_grad():
            self.input_mean.copy_(statistics.float().mean(0))
            self.input_std.copy_(statistics.float().std(0, unbiased=False).clamp_min(1e-3)
                                 if statistics.shape[0] > 1 else torch.ones_like(self.input_std))

    def set_output_bias(self, flat_params: torch.Tensor) -> None:
        """Make an embedding of zeros-influence start at these norm parameters (1-D, norm_params long)."""
        with torch.no_grad():
            self.to_params.bias.copy_(flat_params.reshape(-1).to(self.to_params.bias))

    def embed(self, statistics: torch.Tensor) -> torch.Tensor:
        return self.encoder((statistics.float() - self.input_mean) / self.input_std)

    def norm_params(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.to_params(embedding)

    def forward(self, statistics: torch.Tensor) -> torch.Tensor:
        return self.norm_params(self.embed(statistics))


def flat_norm_params(layers, row: int = 0) -> torch.Tensor:
    """One style's (scale, shift) per layer, flattened in `split_norm_params`' order: row `row` of each
    layer (a multi-style network has one row per style)."""
    parts = []
    for layer in layers:
        parts += [layer.scale[row].detach().float(), layer.shift[row].detach().float()]
    return torch.cat(parts)

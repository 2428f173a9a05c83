"""Perceptual losses on loss-network features.

Every loss here takes features (and targets computed once by the caller) and returns a scalar.
The normalizations follow the classic Gatys setup as used by the pastiche tool, so that default
weights and reported numbers mean the same thing across methods and benchmarks:

- content: mean squared error of the activations;
- style: Gram matrices divided by H*W (size independent, so a style image may be any size), compared
  by mean squared error and divided by C**2 so deep and shallow layers weigh alike;
- total variation: mean absolute difference of neighbouring pixels.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F


def _fp32_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Outside autocast: bf16 autocast (the GPU recipes, bf16 runs on the CPU) casts bmm's inputs back to
    # bf16 whatever their dtype, and a Gram matrix rounded to bf16 is off by up to ~0.4% of its largest
    # entry, noise of the size of what a trained network is still missing from a good style loss.
    with torch.autocast(device_type=a.device.type, enabled=False):
        return torch.bmm(a.float(), b.float())


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """N x C x C Gram matrices of N x C x H x W features, divided by H*W; float32, also under autocast."""
    n, c, h, w = features.shape
    flat = features.float().reshape(n, c, h * w)
    return _fp32_bmm(flat, flat.transpose(1, 2)) / (h * w)


def masked_gram_matrix(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Gram matrix over the pixels where `mask` (N x 1 x h x w in [0, 1]) is on, divided by its area; float32."""
    n, c, h, w = features.shape
    m = F.interpolate(mask.float(), size=(h, w), mode="bilinear", align_corners=False)
    flat = (features.float() * m).reshape(n, c, h * w)
    area = m.reshape(n, 1, h * w).sum(-1, keepdim=True).clamp_min(1.0)
    return _fp32_bmm(flat, flat.transpose(1, 2)) / area


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(features.float(), target.float())


def gram_style_loss(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Squared Gram difference, mean over entries, divided by C**2 (see module docstring)."""
    c = gram.shape[-1]
    return F.mse_loss(gram, target_gram.expand_as(gram)) / (c * c)


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-wise mean and standard deviation over space, each N x C x 1 x 1 (float32)."""
    f = features.float()
    mean = f.mean(dim=(2, 3), keepdim=True)
    std = (f.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return mean, std


def mean_std_style_loss(features: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor) -> torch.Tensor:
    """AdaIN's style loss: distance of channel means and standard deviations."""
    mean, std = mean_std(features)
    return F.mse_loss(mean, target_mean.expand_as(mean)) + F.mse_loss(std, target_std.expand_as(std))


def total_variation_loss(image: torch.Tensor) -> torch.Tensor:
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    return dx + dy


def weighted_content_loss(
    features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], layer_weights: Mapping[str, float]
) -> torch.Tensor:
    return sum(w * content_loss(features[name], targets[name]) for name, w in layer_weights.items())


def weighted_style_loss(
    features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor], layer_weights: Mapping[str, float]
) -> torch.Tensor:
    return sum(w * gram_style_loss(gram_matrix(features[name]), target_grams[name])
               for name, w in layer_weights.items())


# The reference measurement every benchmark reports: Gatys' layers, the normalizations above.
METRIC_CONTENT_LAYERS = {"relu4_2": 1.0}
METRIC_STYLE_LAYERS = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0}


@torch.no_grad()
def measure_losses(vgg, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
    """Content and style losses of `output` against `content` and `style`, in fp32, for comparisons.

    `output` and `content` must have the same size; the style image is used at its given size.
    """
    layers = set(METRIC_CONTENT_LAYERS) | set(METRIC_STYLE_LAYERS)
    out_f = vgg(output.float(), layers)
    content_f = vgg(content.float(), METRIC_CONTENT_LAYERS)
    style_f = vgg(style.float(), METRIC_STYLE_LAYERS)
    grams = {k: gram_matrix(v) for k, v in style_f.items()}
    # Per layer too: which layers a method leaves unmatched (relu4_1 dominates these sums).
    by_layer = {k: float(weighted_style_loss(out_f, grams, {k: w})) for k, w in METRIC_STYLE_LAYERS.items()}
    return {
        "content_loss": float(weighted_content_loss(out_f, content_f, METRIC_CONTENT_LAYERS)),
        "style_loss": sum(by_layer.values()),
        "style_loss_by_layer": by_layer,
    }

"""Style transfer by feature statistics as pure functions on VGG features (AdaIN and WCT).

Huang and Belongie's AdaIN gives each channel of the content features the style's mean and standard
deviation; Li et al.'s WCT whitens the content features (their covariance made the identity) and colours
them with the style's covariance and mean. Both are affine maps of each feature vector,
y = A (x - mu_c) + mu_s, kept here as `AffineMap`s: blends of several styles, the content-style
trade-off `alpha` and region masks are then maps too (see `brushwork.methods.feature_transfer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from brushwork.imaging.color import MeanCov, sym_power

STD_EPS = 1e-5
# Covariance regularization, relative to the mean variance of the channels: VGG features have many
# (nearly) dead channels, whose tiny eigenvalues would otherwise be blown up by the whitening.
COV_EPS = 1e-5


def feature_columns(features: torch.Tensor, weight: torch.Tensor | None):
    """1 x C x h x w features (and 1 x 1 x h x w weights) as the C x N columns (and N weights) of `MeanCov`."""
    return features[0].flatten(1), (None if weight is None else weight[0].flatten())


def mean_std_of(running: MeanCov, eps: float = STD_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel means and standard deviations (float32) from a `MeanCov(full=False)`."""
    mean, var = running.result()
    return mean.float(), (var.clamp_min(0.0) + eps).sqrt().float()


def weighted_mean_std(features: torch.Tensor, weight: torch.Tensor | None = None, eps: float = STD_EPS):
    """Channel means and standard deviations (each C, float32) of 1 x C x h x w features.

    `weight` (1 x 1 x h x w, >= 0) restricts them to a region (a soft one: a weighted average).
    """
    return mean_std_of(MeanCov(full=False).add(*feature_columns(features, weight)), eps)


def weighted_mean_cov(features: torch.Tensor, weight: torch.Tensor | None = None):
    """Channel means (C) and covariance (C x C) in float64 of 1 x C x h x w features, optionally weighted
    (a slice of pixels at a time: see `MeanCov`)."""
    return MeanCov().add(*feature_columns(features, weight)).result()


def _whitening_root(cov: torch.Tensor) -> torch.Tensor:
    """cov ** -1/2, regularized by COV_EPS of the mean variance (dead channels have variance 0)."""
    cov = cov.double()
    eps = COV_EPS * max(float(torch.diagonal(cov).mean()), 1e-12)
    return sym_power(cov + eps * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device), -0.5)


@dataclass
class AffineMap:
    """y = A x + shift on every feature vector x (C channels); A is diagonal (`scale`) or full (`matrix`)."""

    shift: torch.Tensor  # C
    scale: torch.Tensor | None = None  # C (AdaIN)
    matrix: torch.Tensor | None = None  # C x C (WCT)

    @classmethod
    def identity(cls, channels: int) -> "AffineMap":
        return cls(shift=torch.zeros(channels), scale=torch.ones(channels))

    def apply(self, features: torch.Tensor) -> torch.Tensor:
        f = features.float()
        shift = self.shift.float().to(f.device)[None, :, None, None]
        if self.matrix is None:
            return f * self.scale.float().to(f.device)[None, :, None, None] + shift
        # contiguous: einsum may return another memory layout, and convolutions then take another
        # kernel path, with different rounding.
        return (torch.einsum("dc,nchw->ndhw", self.matrix.float().to(f.device), f) + shift).contiguous()

    def dense(self) -> "AffineMap":
        return self if self.matrix is not None else AffineMap(self.shift, matrix=torch.diag(self.scale.double()))

    @staticmethod
    def blend(maps: list["AffineMap"], weights: list[float]) -> "AffineMap":
        """The map whose output is the weighted sum of the maps' outputs (weights sum to 1)."""
        if len(maps) == 1:
            return maps[0]
        shift = sum(w * m.shift.double() for m, w in zip(maps, weights))
        if all(m.matrix is None for m in maps):
            return AffineMap(shift, scale=sum(w * m.scale.double() for m, w in zip(maps, weights)))
        return AffineMap(shift, matrix=sum(w * m.dense().matrix.double() for m, w in zip(maps, weights)))

    def with_alpha(self, alpha: float) -> "AffineMap":
        """alpha * (A x + shift) + (1 - alpha) * x."""
        if alpha == 1.0:
            return self
        if self.matrix is None:
            return AffineMap(alpha * self.shift, scale=alpha * self.scale + (1 - alpha))
        eye = torch.eye(self.matrix.shape[0], dtype=self.matrix.dtype)
        return AffineMap(alpha * self.shift, matrix=alpha * self.matrix + (1 - alpha) * eye)


def adain_map(content_stats, style_stats) -> AffineMap:
    """AdaIN as a map: (x - mu_c) / sigma_c * sigma_s + mu_s, per channel."""
    (mc, sc), (ms, ss) = content_stats, style_stats
    scale = ss.double() / sc.double()
    return AffineMap(ms.double() - scale * mc.double(), scale=scale)


def wct_map(content_stats, style_stats) -> AffineMap:
    """Whitening then colouring: C_s^(1/2) C_c^(-1/2) (x - mu_c) + mu_s (symmetric roots, float64)."""
    (mc, cc), (ms, cs) = content_stats, style_stats
    matrix = sym_power(cs.double(), 0.5) @ _whitening_root(cc)
    return AffineMap(ms.double() - matrix @ mc.double(), matrix=matrix)


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Adaptive instance normalization of 1 x C x h x w content features to the style's channel statistics."""
    return adain_map(weighted_mean_std(content), weighted_mean_std(style)).apply(content)


def wct(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Whitening-colouring transform of 1 x C x h x w content features to the style's mean and covariance."""
    return wct_map(weighted_mean_cov(content), weighted_mean_cov(style)).apply(content)


def apply_region_maps(features: torch.Tensor, maps: list[AffineMap], weights: torch.Tensor | None) -> torch.Tensor:
    """Each region's map, weighted by that region's weight (N x R x h x w, summing to 1) per position."""
    if weights is None:
        return maps[0].apply(features)
    out = None
    for r, m in enumerate(maps):
        part = m.apply(features) * weights[:, r : r + 1].float()
        out = part if out is None else out + part
    return out


def region_masks(mask: torch.Tensor, num_styles: int) -> torch.Tensor:
    """Region weights (1 x R x H x W, summing to 1) from a grey 1 x 1 x H x W mask in [0, 1].

    One style: two regions, the content (black) and the style (white), softly in between.
    N styles: N regions by the nearest of N grey levels from black (the first style) to white (the last).
    """
    if num_styles == 1:
        return torch.cat([1 - mask, mask], 1)
    level = (mask * (num_styles - 1)).round().long().clamp_(0, num_styles - 1)
    return F.one_hot(level[:, 0], num_styles).permute(0, 3, 1, 2).float()

"""Two measures of a stylized image besides the perceptual losses: its palette and its structure.

A single number misleads: a washed-out output and a good one can score the same Gram-matrix style loss.
So the quality benchmarks score each output on three axes:

* texture: the Gram style loss against the painting and the content loss against the photo
  (`brushwork.losses.measure_losses`);
* palette (`palette_distance`): how far the output's colours are from the painting's, as a
  distribution: the sliced Wasserstein-1 distance between the two images' pixels in CIE Lab
  (in Lab units; 0 for the same distribution of colours, whatever their places);
* structure (`structure_correlation`): whether the photo's subject survives: the correlation of the
  gradient magnitudes of output and photo, both at `STRUCTURE_SIZE` px on the long side (about 0.15
  when the subject is gone, 0.5 and up when it is kept).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from brushwork.imaging.resize import fit_long_side, resize

STRUCTURE_SIZE = 256
PALETTE_PROJECTIONS = 64
PALETTE_QUANTILES = 256
PALETTE_SIZE = 256  # colours are compared on copies of this long side (the distribution barely changes)

# sRGB (D65) to XYZ, and the D65 white point.
_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W sRGB in [0, 1] -> CIE Lab (L in 0-100), float64."""
    c = rgb.double().clamp(0.0, 1.0)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ, linear) / _WHITE[None, :, None, None]
    delta = 6 / 29
    f = torch.where(xyz > delta ** 3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * delta ** 2) + 4 / 29)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def _small(image: torch.Tensor, long_side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    if max(h, w) <= long_side:
        return image.float()
    return resize(image.float(), fit_long_side(h, w, long_side)).clamp(0.0, 1.0)


def palette_distance(output: torch.Tensor, painting: torch.Tensor, *, projections: int = PALETTE_PROJECTIONS,
                     seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance between the colours (CIE Lab) of two 1 x 3 x H x W images in [0, 1].

    Each of `projections` fixed random directions in Lab projects both images' pixels onto a line, where
    the distance between the two distributions is the mean gap between their quantiles; the result is
    the mean over directions. The sizes of the two images may differ.
    """
    a = rgb_to_lab(_small(output, PALETTE_SIZE)).reshape(3, -1)
    b = rgb_to_lab(_small(painting, PALETTE_SIZE)).reshape(3, -1)
    gen = torch.Generator().manual_seed(seed)
    directions = torch.randn(projections, 3, generator=gen, dtype=torch.float64)
    directions /= directions.norm(dim=1, keepdim=True)
    q = torch.linspace(0.0, 1.0, PALETTE_QUANTILES, dtype=torch.float64)
    qa = torch.quantile(directions @ a, q, dim=1)
    qb = torch.quantile(directions @ b, q, dim=1)
    return float((qa - qb).abs().mean())


def _gradient_magnitude(image: torch.Tensor) -> torch.Tensor:
    grey = (0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2])[:, None].double()
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)
    kernels = torch.stack([sobel, sobel.t()])[:, None]
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    return g.pow(2).sum(1).sqrt()


def structure_correlation(output: torch.Tensor, photo: torch.Tensor, size: int = STRUCTURE_SIZE) -> float:
    """Pearson correlation of the gradient magnitudes of two 1 x 3 x H x W images (the photo is brought
    to the output's shape), both at `size` px on the long side."""
    h, w = output.shape[-2:]
    shape = fit_long_side(h, w, size)
    a = _gradient_magnitude(resize(output.float(), shape).clamp(0.0, 1.0)).flatten()
    b = _gradient_magnitude(resize(photo.float(), shape).clamp(0.0, 1.0)).flatten()
    a, b = a - a.mean(), b - b.mean()
    denominator = float(a.norm() * b.norm())
    return float(a @ b) / denominator if denominator > 0 else 0.0


__all__ = ["rgb_to_lab", "palette_distance", "structure_correlation", "STRUCTURE_SIZE"]

"""Colour transforms for colour preservation (Gatys et al. 2017, "Controlling Perceptual Factors
in Neural Style Transfer"): split luminance from chroma, or match colour statistics.

All functions take N x 3 x H x W RGB tensors in [0, 1].
"""

from __future__ import annotations

import torch

from brushwork.imaging.resize import resize

# NTSC RGB -> YIQ. Y is the luminance the paper transfers; I and Q carry the colour.
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)
# The exact inverse rather than the rounded textbook one, so RGB -> YIQ -> RGB is lossless.
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply_matrix(m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    _check_rgb(t)
    dtype = t.dtype if t.is_floating_point() else torch.float32
    return torch.einsum("ij,njhw->nihw", m.to(device=t.device, dtype=dtype), t.to(dtype))


def rgb_to_yiq(t: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB -> YIQ (Y in [0, 1], I and Q roughly in [-0.6, 0.6])."""
    return _apply_matrix(_RGB_TO_YIQ, t)


def yiq_to_rgb(t: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W YIQ -> RGB, unclamped (out-of-gamut values are left for the caller)."""
    return _apply_matrix(_YIQ_TO_RGB, t)


def transfer_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylized image's luminance with the content image's colours ("luminance" mode).

    `content` is resized to the stylized image's size when they differ; a single content image
    serves a whole batch. The result is clamped to [0, 1].
    """
    _check_rgb(stylized)
    _check_rgb(content)
    content = _match_batch(content, stylized.shape[0], "content")
    if content.shape[-2:] != stylized.shape[-2:]:
        content = resize(content, tuple(stylized.shape[-2:]))
    y = rgb_to_yiq(stylized)[:, :1]
    iq = rgb_to_yiq(content.to(device=stylized.device, dtype=y.dtype))[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp_(0.0, 1.0)


def match_color_statistics(
    source: torch.Tensor, reference: torch.Tensor, *, eps: float = 1e-5
) -> torch.Tensor:
    """Recolour `source` linearly so its RGB mean and covariance equal `reference`'s ("histogram" mode).

    x' = C_r^(1/2) C_s^(-1/2) (x - mu_s) + mu_r, with symmetric matrix square roots (the
    "image analogies" variant of the paper), which keeps the source's colour axes where the
    Cholesky variant would rotate them. `eps` regularizes a (nearly) singular source covariance,
    e.g. a grey image. Each image of a batch is matched on its own; a single reference serves
    them all. The result is clamped to [0, 1].
    """
    _check_rgb(source)
    _check_rgb(reference)
    reference = _match_batch(reference, source.shape[0], "reference")
    out = torch.empty_like(source)
    for i in range(source.shape[0]):
        # float64 for the statistics and the transform: covariances of [0, 1] pixels are small, and
        # their inverse square roots amplify float32 rounding enough to tint the result visibly.
        # Applying the 3 x 3 transform is exact enough in the image's own dtype.
        mu_s, cov_s = mean_cov(source[i].reshape(3, -1))
        mu_r, cov_r = mean_cov(reference[i].reshape(3, -1))
        eye = torch.eye(3, dtype=torch.float64, device=mu_s.device)
        transform = sym_power(cov_r.to(eye.device), 0.5) @ sym_power(cov_s + eps * eye, -0.5)
        offset = mu_r.to(mu_s.device) - transform @ mu_s
        x, y = source[i].reshape(3, -1), out[i].reshape(3, -1)
        m, b = transform.to(source.dtype), offset.to(source.dtype)
        # In slices: a float64 copy of a 4096 x 4096 image is 400 MB, and the one-shot version made
        # five (1.5 GB on top of tiled stylization's 1.5 GB peak, measured).
        step = _chunk_columns(3)
        for start in range(0, x.shape[1], step):
            torch.addmm(b[:, None], m, x[:, start:start + step], out=y[:, start:start + step])
        out[i].clamp_(0.0, 1.0)
    return out


_CHUNK_ELEMENTS = 1 << 22  # values per slice: 32 MB of float64


def _chunk_columns(rows: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(rows, 1))


class MeanCov:
    """Running mean and covariance, in float64, of C x N columns added in any number of parts.

    `add(x, weight)` takes C x N values (any dtype, any device) and optionally N weights >= 0 (a soft
    region, or a tile's share of each pixel); `result()` gives the (weighted) mean (C) and covariance
    (C x C), or with `full=False` the variances (C) only. Parts are processed a slice at a time, so
    that memory stays flat: shared by colour matching (C = 3 pixels) and WCT / AdaIN (C = 64 ... 512
    VGG features; one float64 copy of relu1_1 features at 2 megapixels is 1 GB, and the one-shot
    formula made four of them).
    """

    def __init__(self, full: bool = True):
        self.full = full
        self.shift = None
        self.total = self.products = None
        self.mass = 0.0

    def add(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> "MeanCov":
        rows, n = x.shape
        if self.shift is None:
            # Centred on a first estimate, so that E[dd^T] - E[d]E[d]^T does not cancel catastrophically.
            self.shift = x[:, :4096].double().mean(dim=1)
            self.total = torch.zeros(rows, dtype=torch.float64, device=x.device)
            self.products = torch.zeros((rows, rows) if self.full else (rows,), dtype=torch.float64, device=x.device)
        w = None if weight is None else weight.reshape(-1)
        step = _chunk_columns(rows)
        for start in range(0, n, step):
            d = x[:, start:start + step].double() - self.shift[:, None]
            dw = d if w is None else d * w[start:start + step].to(device=x.device, dtype=torch.float64)
            self.total += dw.sum(dim=1)
            self.products += dw @ d.T if self.full else (dw * d).sum(dim=1)
            self.mass += d.shape[1] if w is None else float(w[start:start + step].double().sum())
        return self

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.shift is None:
            raise ValueError("no values were added")
        mass = max(self.mass, 1e-8)
        mean_d = self.total / mass
        spread = self.products / mass - (torch.outer(mean_d, mean_d) if self.full else mean_d * mean_d)
        return self.shift + mean_d, spread


def mean_cov(x: torch.Tensor, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (C) and covariance (C x C), in float64, of the N columns of C x N values (see `MeanCov`)."""
    return MeanCov().add(x, weight).result()


def sym_power(m: torch.Tensor, p: float) -> torch.Tensor:
    """m ** p for a symmetric positive semi-definite matrix, by eigendecomposition (in m's dtype).

    Rounding can leave a tiny negative eigenvalue on a PSD matrix; its true value is 0. A negative
    power of a (nearly) singular matrix needs the caller's regularization (add eps x I first).
    """
    evals, evecs = torch.linalg.eigh(m)
    evals = evals.clamp(min=0.0 if p > 0 else torch.finfo(m.dtype).tiny)
    return (evecs * evals.pow(p)) @ evecs.T


def _match_batch(t: torch.Tensor, n: int, what: str) -> torch.Tensor:
    if t.shape[0] == n:
        return t
    if t.shape[0] == 1:
        return t.expand(n, *t.shape[1:])
    raise ValueError(f"{what} batch of {t.shape[0]} does not match a batch of {n}")


def _check_rgb(t: torch.Tensor) -> None:
    if t.dim() != 4 or t.shape[1] != 3:
        raise ValueError(f"expected an N x 3 x H x W tensor, got shape {tuple(t.shape)}")

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
        mu_s, cov_s = _mean_cov(source[i].reshape(3, -1))
        mu_r, cov_r = _mean_cov(reference[i].reshape(3, -1))
        eye = torch.eye(3, dtype=torch.float64, device=mu_s.device)
        transform = _sym_power(cov_r.to(eye.device), 0.5) @ _sym_power(cov_s + eps * eye, -0.5)
        offset = mu_r.to(mu_s.device) - transform @ mu_s
        x, y = source[i].reshape(3, -1), out[i].reshape(3, -1)
        m, b = transform.to(source.dtype), offset.to(source.dtype)
        # In slices: a float64 copy of a 4096 x 4096 image is 400 MB, and the one-shot version made
        # five (1.5 GB on top of tiled stylization's 1.5 GB peak, measured).
        for start in range(0, x.shape[1], _CHUNK):
            torch.addmm(b, m, x[:, start:start + _CHUNK], out=y[:, start:start + _CHUNK])
        out[i].clamp_(0.0, 1.0)
    return out


_CHUNK = 1 << 20  # pixels per slice: 24 MB of float64


def _mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (3 x 1) and covariance (3 x 3) of 3 x N pixels, in float64, a slice at a time."""
    total = torch.zeros(3, 1, dtype=torch.float64, device=x.device)
    products = torch.zeros(3, 3, dtype=torch.float64, device=x.device)
    # Centred on a first estimate, so that E[dd^T] - E[d]E[d]^T does not cancel catastrophically.
    shift = x[:, :4096].double().mean(dim=1, keepdim=True)
    for start in range(0, x.shape[1], _CHUNK):
        d = x[:, start:start + _CHUNK].double() - shift
        total += d.sum(dim=1, keepdim=True)
        products += d @ d.T
    n = x.shape[1]
    mean_d = total / n
    return shift + mean_d, products / n - mean_d @ mean_d.T


def _sym_power(m: torch.Tensor, p: float) -> torch.Tensor:
    evals, evecs = torch.linalg.eigh(m)
    # Rounding can leave a tiny negative eigenvalue on a PSD matrix; its true value is 0.
    evals = evals.clamp(min=0.0 if p > 0 else torch.finfo(m.dtype).tiny)
    return evecs @ torch.diag(evals.pow(p)) @ evecs.T


def _match_batch(t: torch.Tensor, n: int, what: str) -> torch.Tensor:
    if t.shape[0] == n:
        return t
    if t.shape[0] == 1:
        return t.expand(n, *t.shape[1:])
    raise ValueError(f"{what} batch of {t.shape[0]} does not match a batch of {n}")


def _check_rgb(t: torch.Tensor) -> None:
    if t.dim() != 4 or t.shape[1] != 3:
        raise ValueError(f"expected an N x 3 x H x W tensor, got shape {tuple(t.shape)}")

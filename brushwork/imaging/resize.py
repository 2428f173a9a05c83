"""Resizing image tensors (N x C x H x W, any C, so alpha masks go through the same path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from brushwork.errors import BrushworkError


def fit_long_side(height: int, width: int, long_side: int) -> tuple[int, int]:
    """The (h, w) with the same aspect ratio as (height, width) whose longer side is `long_side`."""
    long_side = int(long_side)
    if long_side < 1:
        raise BrushworkError(f"image size must be at least 1 pixel, got {long_side}")
    if height < 1 or width < 1:
        raise BrushworkError(f"cannot resize an empty image ({width}x{height})")
    scale = long_side / max(height, width)
    # The long side is set exactly so that "--size 512" never comes out as 511.
    if height >= width:
        return long_side, max(1, int(width * scale + 0.5))
    return max(1, int(height * scale + 0.5)), long_side


def resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of an N x C x H x W (or C x H x W) float tensor to `size` = (h, w).

    Antialiased when shrinking: plain bilinear sampling skips pixels and aliases fine texture,
    which is exactly what style transfer is sensitive to. Returns `t` itself when the size matches.
    """
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise BrushworkError(f"image size must be at least 1x1 pixel, got {w}x{h}")
    if t.dim() == 3:
        return resize(t.unsqueeze(0), (h, w)).squeeze(0)
    if t.dim() != 4:
        raise ValueError(f"expected an N x C x H x W or C x H x W tensor, got shape {tuple(t.shape)}")
    in_h, in_w = t.shape[-2:]
    if (in_h, in_w) == (h, w):
        return t
    dtype = t.dtype
    x = t if t.is_floating_point() else t.float()
    # The antialiased kernel is missing for half types on some backends.
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    shrinking = h < in_h or w < in_w
    out = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrinking)
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        out = out.round().clamp(info.min, info.max)
    return out.to(dtype)


def resize_long_side(t: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize so the longer of H and W is `long_side`, keeping the aspect ratio."""
    h, w = t.shape[-2:]
    return resize(t, fit_long_side(int(h), int(w), long_side))


def painting_views(t: torch.Tensor, size: int) -> torch.Tensor:
    """A 1 x C x H x W painting as the `size` x `size` views a network trained on square crops sees it whole
    by (Magenta's style predictor, which averages their embeddings): the whole painting squashed to a square
    (Magenta's own usage) and the three squares at the start, middle and end of its long side, so no part
    is left out and none is distorted alone. V x C x size x size; a square painting is one view."""
    h, w = t.shape[-2:]
    if h == w:
        return resize(t, (size, size)).clamp(0.0, 1.0)
    side = min(h, w)
    views = [resize(t, (size, size))]
    for top, left in ((0, 0), ((h - side) // 2, (w - side) // 2), (h - side, w - side)):
        views.append(resize(t[..., top:top + side, left:left + side], (size, size)))
    return torch.cat(views).clamp(0.0, 1.0)

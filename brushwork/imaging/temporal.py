"""Temporal smoothing of stylized video frames: less flicker where the scene stands still.

A one-pass stylizer paints each frame on its own. Where the input barely changes from one frame to the
next (a still background under sensor noise and compression), small input differences still come out
as different strokes, and the painting shimmers. `TemporalSmoother` keeps a running average of the
painted frames, but only where the input stood still: each pixel's weight on the previous output is

    strength * exp(-(d / tolerance)^2)

with d the pixel's change in the input (mean over the channels, averaged over a 5x5 neighbourhood so
one noisy pixel does not decide). A pixel that moved (d well above `tolerance`) takes the newly painted
frame as it is, so moving things leave no trails, and a scene cut resets the whole frame by itself.
Without optical flow this cannot steady strokes on moving things; it steadies what stands still.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from brushwork.errors import BrushworkError

DEFAULT_TOLERANCE = 6.0 / 255.0  # input change, in 0-1 units, at which a pixel's weight on the past falls to 1/e
NEIGHBOURHOOD = 5  # pixels: the change is averaged over this square, so noise does not decide alone


class TemporalSmoother:
    """Feed it (input frame, painted frame) pairs in order; it returns the smoothed painted frames.

    Frames are N x 3 x H x W tensors in [0, 1]; the input and the painted frame must have the same size
    (a size change, such as a new clip, starts over). `strength` 0 returns every painted frame as it is;
    towards 1 a still pixel averages over more frames (about 1 / (1 - strength) of them).
    """

    def __init__(self, strength: float, tolerance: float = DEFAULT_TOLERANCE):
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength < 1.0:
            raise BrushworkError(f"temporal smoothing must be at least 0 and below 1, got {strength!r}")
        if not tolerance > 0:
            raise BrushworkError(f"temporal smoothing's tolerance must be positive, got {tolerance!r}")
        self.strength = float(strength)
        self.tolerance = float(tolerance)
        self._previous_input: torch.Tensor | None = None
        self._previous_output: torch.Tensor | None = None

    def __call__(self, frame: torch.Tensor, painted: torch.Tensor) -> torch.Tensor:
        if frame.shape[-2:] != painted.shape[-2:]:
            raise ValueError(f"input frame {tuple(frame.shape[-2:])} and painted frame "
                             f"{tuple(painted.shape[-2:])} differ in size")
        if self.strength == 0.0:
            return painted  # nothing to average: keep no copies of the frames
        previous_in, previous_out = self._previous_input, self._previous_output
        self._previous_input = frame.detach().float()
        if previous_in is None or previous_in.shape != self._previous_input.shape:
            self._previous_output = painted.detach().float()
            return painted
        change = (self._previous_input - previous_in).abs().mean(1, keepdim=True)
        change = F.avg_pool2d(change, NEIGHBOURHOOD, stride=1, padding=NEIGHBOURHOOD // 2, count_include_pad=False)
        keep = self.strength * torch.exp(-(change / self.tolerance) ** 2)
        smoothed = torch.lerp(painted.float(), previous_out, keep)
        self._previous_output = smoothed
        return smoothed.to(painted.dtype)

"""Temporal smoothing: still pixels average over frames, moving pixels keep the new painting."""

import pytest
import torch

from brushwork.errors import BrushworkError
from brushwork.imaging.temporal import TemporalSmoother


def _frames(n, moving_box=None, seed=0):
    """n input frames (a fixed random image, plus a bright square at a new place each frame when
    moving_box is given) and n painted frames: a fixed painting plus fresh noise each frame."""
    g = torch.Generator().manual_seed(seed)
    still = torch.rand(1, 3, 32, 32, generator=g)
    painting = torch.rand(1, 3, 32, 32, generator=g)
    inputs, painted = [], []
    for i in range(n):
        x = still.clone()
        if moving_box:
            x[..., 4:12, 8 * i:8 * i + 8] = 1.0
        inputs.append(x)
        painted.append((painting + 0.1 * torch.randn(1, 3, 32, 32, generator=g)).clamp(0, 1))
    return inputs, painted


def _frame_to_frame_change(frames, region=(slice(None), slice(None))):
    return torch.stack([(b - a)[..., region[0], region[1]].abs().mean() for a, b in zip(frames, frames[1:])]).mean()


def test_still_pixels_flicker_less_the_stronger_the_smoothing():
    inputs, painted = _frames(12)
    changes = []
    for strength in (0.0, 0.5, 0.8):
        smoother = TemporalSmoother(strength)
        changes.append(float(_frame_to_frame_change([smoother(x, y) for x, y in zip(inputs, painted)])))
    assert changes[0] == pytest.approx(float(_frame_to_frame_change(painted)))  # 0: the painted frames as they are
    assert changes[0] > 1.5 * changes[1] > 1.5 * 1.2 * changes[2]


def test_moving_pixels_take_the_new_painting_and_the_first_frame_is_untouched():
    inputs, painted = _frames(4, moving_box=True)
    smoother = TemporalSmoother(0.9)
    out = [smoother(x, y) for x, y in zip(inputs, painted)]
    assert torch.equal(out[0], painted[0])
    # Frame 2's square (columns 16..23) and where frame 1's square was (8..15) changed in the input:
    # well inside them, the output is the fresh painting; far from them, mostly the past.
    assert torch.allclose(out[2][..., 5:11, 10:22], painted[2][..., 5:11, 10:22], atol=1e-4)
    far = (slice(20, 32), slice(0, 32))
    assert (out[2] - painted[2])[..., far[0], far[1]].abs().mean() > 0.03


def test_a_new_size_starts_over_and_bad_values_are_refused():
    smoother = TemporalSmoother(0.5)
    smoother(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    fresh = torch.rand(1, 3, 16, 16)
    assert torch.equal(smoother(torch.rand(1, 3, 16, 16), fresh), fresh)
    for bad in (-0.1, 1.0, 2, "0.5", True):
        with pytest.raises(BrushworkError, match="temporal smoothing must be at least 0 and below 1"):
            TemporalSmoother(bad)
    with pytest.raises(ValueError, match="differ in size"):
        smoother(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 16, 16))

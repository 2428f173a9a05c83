"""Optical flow, warping and the flow stabilizer on synthetic frames whose motion is known."""

import numpy as np
import pytest
import torch

pytest.importorskip("cv2")

from brushwork.errors import BrushworkError  # noqa: E402
from brushwork.imaging.flow import (  # noqa: E402
    FlowEstimator,
    FlowStabilizer,
    forward_backward_consistent,
    reliability,
    texture_preserving_blend,
    warp,
)

H, W = 48, 64


def _texture(seed=0, h=H + 16, w=W + 16):
    """A smooth random texture (blurred noise), larger than the frames so shifted crops stay inside it."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((h, w)).astype(np.float32)
    return (cv2.GaussianBlur(noise, (0, 0), 1.5) * 255).clip(0, 255)


def _crop(texture, dx, dy):
    """The frame a camera sees when the scene has moved by (dx, dy) px (whole pixels)."""
    return np.ascontiguousarray(texture[8 - dy:8 - dy + H, 8 - dx:8 - dx + W])


def _normalized(grey):
    t = grey - grey.min()
    return (t / t.max() * 255).astype(np.uint8)


def test_flow_finds_a_known_shift_and_the_warp_undoes_it():
    texture = _normalized(_texture())
    previous, current = _crop(texture, 0, 0), _crop(texture, 3, 2)  # the scene moved 3 px right, 2 down
    flow = FlowEstimator()(current, previous)
    inner = (slice(8, -8), slice(8, -8))
    # current(p) = previous(p - (3, 2)): the flow from current to previous is (-3, -2).
    assert np.median(flow[inner][..., 0]) == pytest.approx(-3, abs=0.2)
    assert np.median(flow[inner][..., 1]) == pytest.approx(-2, abs=0.2)
    warped = warp(previous.astype(np.float32), flow)
    assert np.abs(warped - current)[inner].mean() < 2.0  # 0-255: near zero, against the unwarped frames':
    assert np.abs(previous.astype(np.float32) - current)[inner].mean() > 10


def test_pixels_that_came_into_view_fail_the_forward_backward_check():
    # A true shift of 4 px left: the columns at the right edge were outside the previous frame.
    forward = np.zeros((H, W, 2), np.float32)
    forward[..., 0] = 4.0
    backward = -forward
    ok = forward_backward_consistent(forward, backward)
    assert ok[:, :W - 5].all() and not ok[:, W - 3:].any()
    # An occlusion: the backward flow disagrees where something covered the pixel in the other frame.
    backward[10:20, 10:20] = 0.0
    assert not forward_backward_consistent(forward, backward)[12:18, 7:14].any()  # they land on 11..17


def _frames(n, seed=0):
    texture = _normalized(_texture(seed))
    return [np.repeat(_crop(texture, i, 0)[..., None], 3, -1) for i in range(n)]


def _tensor(image):
    return torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]


def test_the_stabilizer_carries_the_painting_along_the_motion():
    inputs = _frames(6)
    g = torch.Generator().manual_seed(0)
    # A "painting" that follows the scene plus fresh strokes (noise) each frame: the flicker to remove.
    painted = [(_tensor(x) * 0.8 + 0.2 * torch.rand(1, 3, H, W, generator=g)).clamp(0, 1) for x in inputs]
    stabilizer = FlowStabilizer(0.8)
    out = [stabilizer(_tensor(x), y) for x, y in zip(inputs, painted)]
    assert torch.equal(out[0], painted[0])  # nothing to carry yet
    inner = (slice(6, -6), slice(6, -6))

    def change(frames):  # frame t against frame t-1 moved 1 px right (the known motion)
        return np.mean([(frames[t][0, :, inner[0], 7:-6] - frames[t - 1][0, :, inner[0], 6:-7]).abs().mean()
                        for t in range(2, len(frames))])

    assert change(out) < 0.5 * change(painted)
    assert stabilizer.scene_cuts == 0


def test_a_scene_cut_starts_over():
    first, cut = _frames(3, seed=0), _frames(1, seed=7)
    stabilizer = FlowStabilizer(0.9)
    for x in first:
        stabilizer(_tensor(x), _tensor(x))
    painted = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(stabilizer(_tensor(cut[0]), painted), painted, atol=1e-6)
    assert stabilizer.scene_cuts == 1


def test_reliability_is_high_on_a_clean_shift_and_low_across_a_cut():
    a, b = _frames(2)
    estimator = FlowEstimator()
    _, trust = reliability(b[..., 0], a[..., 0], estimator)
    assert trust[8:-8, 8:-8].mean() > 0.8
    _, trust = reliability(_frames(1, seed=5)[0][..., 0], a[..., 0], estimator)
    assert trust.mean() < 0.3


def test_the_blend_keeps_the_detail_of_uncorrelated_strokes():
    rng = np.random.default_rng(0)
    a, b = (rng.random((H, W, 3)).astype(np.float32) for _ in range(2))
    keep = np.full((H, W), 0.8, np.float32)
    assert np.allclose(texture_preserving_blend(a, a, keep), a, atol=1e-5)  # aligned strokes: unchanged
    plain = a + 0.8 * (b - a)
    kept = texture_preserving_blend(a, b, keep)
    assert kept.std() > 1.15 * plain.std()  # the plain average loses contrast ...
    assert kept.std() == pytest.approx(a.std(), rel=0.2)  # ... the blend keeps about the painting's


def test_stability_zero_is_the_painting_and_bad_values_are_refused():
    frame, painted = _tensor(_frames(1)[0]), torch.rand(1, 3, H, W)
    stabilizer = FlowStabilizer(0.0)
    assert stabilizer(frame, painted) is painted and stabilizer(frame, painted) is painted
    for bad in (-0.1, 1.0, 2, "0.5", True):
        with pytest.raises(BrushworkError, match="stability must be at least 0 and below 1"):
            FlowStabilizer(bad)
    with pytest.raises(ValueError, match="differ in size"):
        FlowStabilizer(0.5)(frame, torch.rand(1, 3, 8, 8))

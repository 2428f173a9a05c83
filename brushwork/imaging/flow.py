"""Optical flow between video frames, warping along it, and where to trust it: temporal consistency for
stylized video (Ruder et al., "Artistic style transfer for videos", 2016, and its 2018 journal version).

A one-pass stylizer paints each frame on its own, so the strokes on anything that moves (or that the
camera pans over) change from frame to frame and the painting shimmers. `FlowStabilizer` carries the
previous painted frame along the motion of the *input* frames and blends it into the new painting, but
only where that motion is trustworthy:

    out_t = lerp(painted_t, warp(out_{t-1}, flow_t), stability * reliable_t)

* Flow: OpenCV's DIS optical flow (Kroeger et al. 2016): no learned weights, a few milliseconds per
  frame on a CPU. It runs on a grey copy of the input at most `flow_size` px on its long side (its
  vectors scaled up), since motion fields are smooth; what this costs in quality on larger frames has
  not been measured (the benchmark's 480x320 clip is not downscaled).
* Reliable where (a) the forward and backward flows agree (a pixel seen in both frames maps there and
  back to itself; occluded and dis-occluded pixels do not), (b) the flow has no sharp edge (motion
  boundaries, where one pixel straddles two motions), and (c) the previous input frame warped along
  the flow matches the current one (catches flow errors and lighting changes). (a) and (b) are Ruder
  et al.'s tests, with their constants.
* A scene cut (little of the frame reliable) starts over: the new painting is taken as it is.

Because the blend feeds its own output forward, a stroke persists over about 1 / (1 - stability)
frames wherever the flow holds, and fades out where it does not. Only the previous frame is kept,
so memory does not grow with the video's length.

OpenCV (`opencv-python-headless`) is an optional dependency, imported where it is used.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from brushwork.errors import BrushworkError

DEFAULT_FLOW_SIZE = 480  # px, long side of the copy the flow is computed on
# Ruder et al.'s forward-backward test: |w + w'|^2 > FB_RELATIVE * (|w|^2 + |w'|^2) + FB_ABSOLUTE (px^2),
# and their motion-boundary test: |grad u|^2 + |grad v|^2 > MB_RELATIVE * |w|^2 + MB_ABSOLUTE.
FB_RELATIVE, FB_ABSOLUTE = 0.01, 0.5
MB_RELATIVE, MB_ABSOLUTE = 0.01, 0.002
# Input change (0-1, grey) after warping at which a pixel's trust falls to 1/e: above compression and
# sensor noise, below the change of a flow that lands on the wrong thing.
PHOTOMETRIC_TOLERANCE = 0.06
# The texture-preserving blend: detail is what a Gaussian of DETAIL_SIGMA px removes, its energy is
# measured over a Gaussian window of ENERGY_SIGMA px, and its contrast is raised at most MAX_DETAIL_GAIN times.
# Measured on benchmarks/video_flicker.py's pan clip at stability 0.8: detail below 1 px (with Lanczos
# warps) kept the most texture (style loss 3.0x frame by frame's, against 5.1x for a plain blend).
DETAIL_SIGMA = 1.0
ENERGY_SIGMA = 4.0
MAX_DETAIL_GAIN = 3.0
# A frame with less than this share of reliable pixels is a new scene: the stabilizer starts over.
SCENE_CUT_RELIABLE = 0.3


def _cv2():
    try:
        import cv2
    except ImportError:
        raise BrushworkError("video stabilization needs OpenCV: pip install opencv-python-headless "
                             "(or pass --stability 0)") from None
    return cv2


def to_grey(frame: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB (uint8 or float in [0, 1]) -> H x W uint8 luma, the input DIS flow takes."""
    if frame.dtype != np.uint8:
        frame = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return _cv2().cvtColor(np.ascontiguousarray(frame), _cv2().COLOR_RGB2GRAY)


def downscale(grey: np.ndarray, long_side: int) -> np.ndarray:
    """`grey` shrunk (area-averaged, so fine texture does not alias) to at most `long_side` px long."""
    h, w = grey.shape[:2]
    factor = long_side / max(h, w)
    if factor >= 1:
        return grey
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    return _cv2().resize(grey, size, interpolation=_cv2().INTER_AREA)


class FlowEstimator:
    """DIS optical flow: `flow(a, b)` is the H x W x 2 (x, y) displacement with a(p) ~ b(p + flow(p))
    for two uint8 grey frames of one size. One estimator per video (it holds OpenCV's state)."""

    def __init__(self, preset: str = "medium"):
        cv2 = _cv2()
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self.dis = cv2.DISOpticalFlow_create(presets[preset])

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.dis.calc(a, b, None)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flow field brought to (height, width), its vectors scaled with it."""
    h, w = flow.shape[:2]
    if (h, w) == tuple(size):
        return flow
    out = _cv2().resize(flow, (size[1], size[0]), interpolation=_cv2().INTER_LINEAR)
    out[..., 0] *= size[1] / w
    out[..., 1] *= size[0] / h
    return out


@functools.lru_cache(maxsize=4)
def _pixel_grid(h: int, w: int) -> np.ndarray:
    """2 x H x W float32 (row, column) of every pixel: built once per frame size, read three times a frame."""
    grid = np.mgrid[0:h, 0:w].astype(np.float32)
    grid.setflags(write=False)
    return grid


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(p) = image(p + flow(p)), Lanczos: the painting's finest strokes are what the style
    loss measures most (a 0.7 px blur raised a frame's style loss 6x), and bilinear or bicubic resampling
    blurs them more with each frame the blend carries forward. Points outside take the nearest edge."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    grid = _pixel_grid(h, w)
    map_x, map_y = grid[1] + flow[..., 0], grid[0] + flow[..., 1]
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)


def forward_backward_consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Bool H x W: where `forward` (t -> t-1) and `backward` (t-1 -> t), followed there and back, return
    to the start (Ruder et al.'s test). Pixels hidden in the other frame, or mapped outside it, fail."""
    back_at_target = warp(backward, forward)
    sum_sq = ((forward + back_at_target) ** 2).sum(-1)
    ok = sum_sq <= FB_RELATIVE * ((forward ** 2).sum(-1) + (back_at_target ** 2).sum(-1)) + FB_ABSOLUTE
    h, w = forward.shape[:2]
    y, x = _pixel_grid(h, w)
    tx, ty = x + forward[..., 0], y + forward[..., 1]
    return ok & (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)


def smooth_motion(flow: np.ndarray) -> np.ndarray:
    """Bool H x W: where the flow has no motion boundary (Ruder et al.'s gradient test)."""
    cv2 = _cv2()
    grad = np.zeros(flow.shape[:2], np.float32)
    for c in range(2):
        grad += cv2.Sobel(flow[..., c], cv2.CV_32F, 1, 0, ksize=1) ** 2 + cv2.Sobel(flow[..., c], cv2.CV_32F, 0, 1,
                                                                                      ksize=1) ** 2
    # Sobel with ksize 1 is a central difference without the 1/2: a quarter of the squared gradient.
    return grad / 4 <= MB_RELATIVE * (flow ** 2).sum(-1) + MB_ABSOLUTE


def photometric_weight(current: np.ndarray, warped_previous: np.ndarray) -> np.ndarray:
    """Float H x W in (0, 1]: how well the previous grey frame warped to this one matches it."""
    d = np.abs(current.astype(np.float32) - warped_previous.astype(np.float32)) / 255.0
    d = _cv2().blur(d, (3, 3))  # one noisy pixel does not decide
    return np.exp(-(d / PHOTOMETRIC_TOLERANCE) ** 2)


def reliability(current: np.ndarray, previous: np.ndarray, estimator: FlowEstimator) -> tuple[np.ndarray, np.ndarray]:
    """(flow from `current` to `previous`, trust in it in [0, 1]) for two uint8 grey frames of one size."""
    forward = estimator(current, previous)
    backward = estimator(previous, current)
    trust = (forward_backward_consistent(forward, backward) & smooth_motion(forward)).astype(np.float32)
    # Soften the mask's edges a little: a hard seam between blended and fresh strokes would show.
    trust = _cv2().blur(_cv2().erode(trust, np.ones((3, 3), np.uint8)), (3, 3))
    return forward, trust * photometric_weight(current, warp(previous, forward))


def texture_preserving_blend(painted: np.ndarray, warped: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """lerp(painted, warped, keep) for H x W x 3 images and an H x W weight, with the detail's contrast kept.

    Where the new strokes and the warped old ones do not line up, a plain average of two textures has
    less contrast than either ((1 - k)^2 + k^2 of the energy for uncorrelated ones: 0.68 at k = 0.8), and
    the painting fades towards a blur (a middle frame's style loss rose 5x at stability 0.8). So the
    blend is split into a smooth base and its detail; the detail is scaled back, locally, to the energy
    the two inputs' details had (mixed by the same weights). Where they line up the gain is 1.
    """
    cv2 = _cv2()
    k = keep[..., None].astype(np.float32)
    base_p = cv2.GaussianBlur(painted, (0, 0), DETAIL_SIGMA)
    base_w = cv2.GaussianBlur(warped, (0, 0), DETAIL_SIGMA)
    detail_p, detail_w = painted - base_p, warped - base_w
    detail = detail_p + k * (detail_w - detail_p)

    def energy(x):
        return cv2.GaussianBlur((x * x).sum(-1), (0, 0), ENERGY_SIGMA)

    e_p, e_w = energy(detail_p), energy(detail_w)
    target = e_p + keep * (e_w - e_p)
    gain = np.sqrt(target / np.maximum(energy(detail), 1e-8)).clip(1.0, MAX_DETAIL_GAIN)[..., None]
    return base_p + k * (base_w - base_p) + gain * detail


class FlowStabilizer:
    """Feed it (input frame, painted frame) pairs in order; it returns the stabilized painted frames.

    Frames are 1 x 3 x H x W tensors in [0, 1] of one size (the input is resized by the caller). Use
    `track(frame)` then `blend(painted)` when the painting itself should start from the warped past
    (optimization): `track` returns the previous output warped to this frame and the per-pixel trust
    (None on the first frame and after a scene cut). `stability` 0 returns every painted frame as it is.
    """

    def __init__(self, stability: float, flow_size: int = DEFAULT_FLOW_SIZE, preset: str = "medium"):
        if isinstance(stability, bool) or not isinstance(stability, (int, float)) or not 0.0 <= stability < 1.0:
            raise BrushworkError(f"stability must be at least 0 and below 1, got {stability!r}")
        if not (isinstance(flow_size, int) and flow_size >= 16):
            raise BrushworkError(f"flow size must be a whole number of at least 16 px, got {flow_size!r}")
        self.stability = float(stability)
        self.flow_size = flow_size
        self.estimator = FlowEstimator(preset) if self.stability > 0 else None
        self.scene_cuts = 0
        self._previous_grey: np.ndarray | None = None  # the last input frame, grey, at the flow's size
        self._previous_output: np.ndarray | None = None  # the last output, H x W x 3 float32
        self._warped: np.ndarray | None = None
        self._trust: np.ndarray | None = None

    def reset(self) -> None:
        self._previous_grey = self._previous_output = self._warped = self._trust = None

    def track(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        self._warped = self._trust = None
        if self.stability == 0.0:
            return None
        rgb = frame[0].permute(1, 2, 0).float().cpu().numpy()
        grey = downscale(to_grey(rgb), self.flow_size)
        previous, self._previous_grey = self._previous_grey, grey
        if previous is None or previous.shape != grey.shape or self._previous_output is None:
            return None
        h, w = frame.shape[-2:]
        if self._previous_output.shape[:2] != (h, w):
            return None
        flow, trust = reliability(grey, previous, self.estimator)
        if float(trust.mean()) < SCENE_CUT_RELIABLE:
            self.scene_cuts += 1
            return None
        flow = resize_flow(flow, (h, w))
        trust = _cv2().resize(trust, (w, h), interpolation=_cv2().INTER_LINEAR) if trust.shape != (h, w) else trust
        self._warped = np.clip(warp(self._previous_output, flow), 0.0, 1.0)
        self._trust = trust
        return (torch.from_numpy(self._warped).permute(2, 0, 1)[None],
                torch.from_numpy(np.ascontiguousarray(trust))[None, None])

    def blend(self, painted: torch.Tensor) -> torch.Tensor:
        if self.stability == 0.0:
            return painted
        out = painted[0].permute(1, 2, 0).float().cpu().numpy()
        if self._warped is not None:
            out = texture_preserving_blend(out, self._warped, self.stability * self._trust)
        self._previous_output = np.ascontiguousarray(out, dtype=np.float32)
        self._warped = self._trust = None
        return torch.from_numpy(self._previous_output).permute(2, 0, 1)[None].to(painted.dtype)

    def __call__(self, frame: torch.Tensor, painted: torch.Tensor) -> torch.Tensor:
        if frame.shape[-2:] != painted.shape[-2:]:
            raise ValueError(f"input frame {tuple(frame.shape[-2:])} and painted frame "
                             f"{tuple(painted.shape[-2:])} differ in size")
        self.track(frame)
        return self.blend(painted)

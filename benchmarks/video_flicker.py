"""Flicker of stylized video: optical-flow stabilization (`--stability`) and `--temporal-smoothing`.

Two clips, both made here so the figures are reproducible:

* `pan` (the default): a camera pan and zoom over a photo (coffee.jpg) with a second photo
  (chelsea.jpg, a square) moving across the frame on its own path, light sensor noise, H.264 at CRF 18;
  40 frames of 480x320. Each setting stylizes it through `brushwork.stylize_video` (the product path,
  lossless output) and is measured on:
  - warping error (Lai et al. 2018): for each frame t, the stylized frame t-1 warped to frame t along
    the flow from input frame t to t-1, the mean absolute difference (0-255, over the three channels)
    over the pixels where forward and backward flow agree. The flow is the clip's *ground truth*: the
    clip is drawn from known camera and object motion, so each pixel's place in the frame before is
    computed exactly, and a pixel counts only where it is visible in both frames (hidden by the moving
    square in one of them, or outside the frame, it does not). Nothing here uses the stabilizer's own
    flow (DIS); the warp is torch's bilinear `grid_sample`, not the stabilizer's OpenCV remap. A
    second column repeats the measure with an estimated flow that is not the stabilizer's either
    (OpenCV's Farneback, with Ruder et al.'s forward-backward check), as the issue's metric is stated.
  - long-term warping error: the same with frame t-10 and the true flow from t to t-10: whether strokes
    stay on the scene over many frames or drift and change (Ruder et al.'s long-term consistency).
  - style kept on the middle frame against the same frame painted on its own: texture (Gram style
    loss against the painting, `brushwork.losses.measure_losses`), palette
    (`brushwork.imaging.quality.palette_distance`) and structure
    (`brushwork.imaging.quality.structure_correlation` against the input frame).
  - frames per second of the whole `stylize_video` call (decode, paint, flow, encode), and, with
    `--hd-frames N`, the same at 1280x720 on an N-frame clip.
* `still` (`--clip still`): a still photo under fresh sensor noise with a square gliding across
  (24 frames of 320x240): flicker where the input stood still, and the lag on the moving square.

    python benchmarks/video_flicker.py
    python benchmarks/video_flicker.py --stability 0 0.5 0.8 0.9 --smoothing 0.8 --hd-frames 12
    python benchmarks/video_flicker.py --style starry-night --method predict
    python benchmarks/video_flicker.py --clip still --smoothing 0 0.3 0.6 0.8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "brushwork/assets/examples"
MARGIN = 8  # px around the moving square that do not count as still
LONG_GAP = 10  # frames between the two of the long-term warping error
DEFAULT_CRF = 0  # lossless output: its own compression would hide flicker and blur the lag


def _h264_stream(container, width: int, height: int):
    """A near-lossless 24 fps H.264 stream: the benchmark's clips are its input, not its output."""
    stream = container.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": "18"}
    stream.time_base = Fraction(1, 24)
    return stream


def make_still_clip(path: Path, width: int, height: int, frames: int, noise: float, seed: int = 0):
    """Writes the still clip; returns the square's (x, y, side) in each frame."""
    import av
    from PIL import Image

    rng = np.random.default_rng(seed)
    still = np.asarray(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB").resize((width, height)), np.float32)
    side = height // 3
    patch = np.asarray(Image.open(EXAMPLES / "chelsea.jpg").convert("RGB").resize((side, side)), np.float32)
    boxes = []
    with av.open(str(path), "w") as out:
        stream = _h264_stream(out, width, height)
        for i in range(frames):
            x = round((width - side) * i / max(1, frames - 1))
            y = (height - side) // 2
            image = still.copy()
            image[y:y + side, x:x + side] = patch
            image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 24)
            for packet in stream.encode(frame):
                out.mux(packet)
            boxes.append((x, y, side))
        for packet in stream.encode(None):
            out.mux(packet)
    return boxes


def read_frames(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float32)


def box_mask(shape, box, margin: int) -> np.ndarray:
    x, y, side = box
    mask = np.zeros(shape, bool)
    mask[max(0, y - margin):y + side + margin, max(0, x - margin):x + side + margin] = True
    return mask


def still_benchmark(args) -> None:
    from brushwork.video import stylize_video

    smoothing = args.smoothing or [0.0, 0.3, 0.6, 0.8]
    if 0.0 not in smoothing:
        smoothing = [0.0] + smoothing  # the reference
    width, height, n = args.width or 320, args.height or 240, args.frames or 24
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        boxes = make_still_clip(clip, width, height, n, args.noise)
        shape = (height, width)
        moving = [box_mask(shape, b, MARGIN) for b in boxes]
        still = [~(moving[i] | moving[i - 1]) for i in range(1, len(boxes))]
        inner = [box_mask(shape, b, -MARGIN) for b in boxes]  # well inside the square
        source = read_frames(clip)
        source_flicker = np.mean([np.abs(source[i] - source[i - 1])[still[i - 1]].mean()
                                  for i in range(1, len(source))])
        outputs = {}
        for s in smoothing:
            out = Path(tmp) / f"out-{s}.mp4"
            stylize_video(clip, out, args.style, temporal_smoothing=s, stability=0.0, audio=False,
                          quality=DEFAULT_CRF)
            outputs[s] = read_frames(out)

    plain = outputs[0.0]
    print(f"\n{n} frames of {width}x{height}, model {args.style}; the input's own change in "
          f"still pixels: {source_flicker:.2f}/255 (noise and compression)\n")
    print("| temporal smoothing | still flicker (0-255) | vs plain | moving lag (0-255) |")
    print("|---:|---:|---:|---:|")
    base = None
    for s, frames in outputs.items():
        flicker = np.mean([np.abs(frames[i] - frames[i - 1])[still[i - 1]].mean() for i in range(1, len(frames))])
        lag = np.mean([np.abs(frames[i] - plain[i])[inner[i]].mean() for i in range(len(frames))])
        base = flicker if base is None else base
        label = f"{s:g}{' (plain, the reference)' if s == 0 else ''}"
        print(f"| {label} | {flicker:.2f} | {flicker / base:.2f}x | {lag:.2f} |")


# --- the pan clip -------------------------------------------------------------------------------------

def _camera(i: int, n: int, width: int, height: int):
    """Frame i's camera: (zoom, centre x, centre y in world px). A pan right and down, zooming in."""
    u = i / max(1, n - 1)
    return 1.0 + 0.25 * u, width * (0.55 + 0.5 * u), height * (0.75 + 0.1 * u)


def _object(i: int, n: int, width: int, height: int, side: int):
    """Top-left corner (x, y) of the moving square in frame i, in frame px (subpixel)."""
    u = i / max(1, n - 1)
    return width * 0.05 + (width * 0.9 - side) * u, height / 2 - side / 2 + 0.15 * height * np.sin(2 * np.pi * u)


def true_flow(now: tuple, before: tuple, width: int, height: int, side: int):
    """(where each pixel of a frame was in an earlier one, as a flow H x W x 2, and where that holds: visible in
    both), from the two frames' (zoom, centre x, centre y, square x, square y). The square moves on its own,
    the rest with the camera; pixels within 1.5 px of the square's edge are mixtures of both and count nowhere."""
    zoom, cx, cy, ox, oy = now
    pzoom, pcx, pcy, pox, poy = before
    centre = np.array([width / 2, height / 2])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    inside = (xs >= ox + 1.5) & (xs < ox + side - 1.5) & (ys >= oy + 1.5) & (ys < oy + side - 1.5)
    edge = (xs >= ox - 1.5) & (xs < ox + side + 1.5) & (ys >= oy - 1.5) & (ys < oy + side + 1.5) & ~inside
    wx, wy = cx + (xs - centre[0]) / zoom, cy + (ys - centre[1]) / zoom
    bx, by = pzoom * (wx - pcx) + centre[0], pzoom * (wy - pcy) + centre[1]
    px, py = np.where(inside, xs - (ox - pox), bx), np.where(inside, ys - (oy - poy), by)
    was_inside = (px >= pox + 1.5) & (px < pox + side - 1.5) & (py >= poy + 1.5) & (py < poy + side - 1.5)
    was_near = (px >= pox - 1.5) & (px < pox + side + 1.5) & (py >= poy - 1.5) & (py < poy + side + 1.5)
    visible = np.where(inside, was_inside, ~was_near) & ~edge
    visible &= (px >= 0) & (px <= width - 1) & (py >= 0) & (py <= height - 1)
    return np.stack([px - xs, py - ys], -1).astype(np.float32), visible


def make_pan_clip(path: Path, width: int, height: int, frames: int, noise: float, seed: int = 0,
                  truth: bool = True, gap: int = 1):
    """Writes the pan clip; returns, for frames gap.., the true flow from frame t to t-gap (H x W x 2) and
    where it holds (visible in both frames), or None when `truth` is False."""
    import av
    import cv2
    from PIL import Image

    rng = np.random.default_rng(seed)
    world = np.asarray(Image.open(EXAMPLES / "coffee.jpg").convert("RGB").resize(
        (round(1.6 * width), round(1.6 * height)), Image.BICUBIC), np.float32)
    side = height // 3
    patch = np.asarray(Image.open(EXAMPLES / "chelsea.jpg").convert("RGB").resize((side, side), Image.BICUBIC),
                       np.float32)
    centre = np.array([width / 2, height / 2])
    views = []
    with av.open(str(path), "w") as out:
        stream = _h264_stream(out, width, height)
        for i in range(frames):
            zoom, cx, cy = _camera(i, frames, width, height)
            to_frame = np.array([[zoom, 0, centre[0] - zoom * cx], [0, zoom, centre[1] - zoom * cy]])
            image = cv2.warpAffine(world, to_frame, (width, height), flags=cv2.INTER_CUBIC)
            ox, oy = _object(i, frames, width, height, side)
            shift = np.array([[1.0, 0, ox], [0, 1.0, oy]])
            alpha = cv2.warpAffine(np.ones((side, side), np.float32), shift, (width, height))[..., None]
            image = image * (1 - alpha) + cv2.warpAffine(patch, shift, (width, height), flags=cv2.INTER_CUBIC) * alpha
            image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 24)
            for packet in stream.encode(frame):
                out.mux(packet)
            views.append((zoom, cx, cy, ox, oy))
        for packet in stream.encode(None):
            out.mux(packet)
    if not truth:
        return None
    return [true_flow(views[t], views[t - gap], width, height, side) for t in range(gap, frames)]


def warp_bilinear(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """image(p + flow(p)) by torch's bilinear grid_sample (the metric's own warp, not the stabilizer's)."""
    import torch
    import torch.nn.functional as F

    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    grid = np.stack([(xs + flow[..., 0]) / (w - 1) * 2 - 1, (ys + flow[..., 1]) / (h - 1) * 2 - 1], -1)
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None]
    out = F.grid_sample(x, torch.from_numpy(grid)[None], mode="bilinear", padding_mode="border", align_corners=True)
    return out[0].permute(1, 2, 0).numpy()


def farneback_flows(frames: np.ndarray) -> list:
    """Estimated flows t -> t-1 with Ruder et al.'s forward-backward check, by OpenCV's Farneback method (not
    the DIS flow the stabilizer uses): [(flow, where it holds)] for frames 1.."""
    import cv2

    grey = [cv2.cvtColor(f.astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in frames]
    h, w = grey[0].shape
    ys, xs = np.mgrid[0:h, 0:w]
    result = []
    for t in range(1, len(grey)):
        fwd = cv2.calcOpticalFlowFarneback(grey[t], grey[t - 1], None, 0.5, 4, 15, 3, 5, 1.2, 0)
        bwd = cv2.calcOpticalFlowFarneback(grey[t - 1], grey[t], None, 0.5, 4, 15, 3, 5, 1.2, 0)
        back = warp_bilinear(bwd, fwd)
        ok = ((fwd + back) ** 2).sum(-1) <= 0.01 * ((fwd ** 2).sum(-1) + (back ** 2).sum(-1)) + 0.5
        px, py = xs + fwd[..., 0], ys + fwd[..., 1]
        result.append((fwd, ok & (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)))
    return result


def warping_error(frames: np.ndarray, flows: list, gap: int = 1) -> float:
    """Mean over frames gap.. of |frame t - frame t-gap warped to t| (0-255) where the flow holds."""
    return float(np.mean([np.abs(frames[t] - warp_bilinear(frames[t - gap], flow))[ok].mean()
                          for t, (flow, ok) in enumerate(flows, start=gap)]))


def style_axes(vgg, frame: np.ndarray, content: np.ndarray, painting) -> dict:
    import torch

    from brushwork.imaging import resize_long_side
    from brushwork.imaging.quality import palette_distance, structure_correlation
    from brushwork.losses import measure_losses

    out = torch.from_numpy(frame / 255.0).permute(2, 0, 1)[None].float()
    photo = torch.from_numpy(content / 255.0).permute(2, 0, 1)[None].float()
    style_at_output = resize_long_side(painting, max(out.shape[2:])).clamp(0, 1)
    with torch.no_grad():
        texture = measure_losses(vgg, out, photo, style_at_output)["style_loss"]
    return {"texture": texture, "palette": palette_distance(out, painting),
            "structure": structure_correlation(out, photo)}


def pan_benchmark(args) -> None:
    from brushwork.features import load_vgg19
    from brushwork.imaging import load_image
    from brushwork.presets import resolve_style
    from brushwork.video import DEFAULT_STABILITY, DEFAULT_TEMPORAL_WEIGHT, stylize_video

    stabilities = args.stability if args.stability is not None else [0.0, 0.5, DEFAULT_STABILITY, 0.9]
    if 0.0 not in stabilities:
        stabilities = [0.0] + stabilities  # frame by frame: the reference
    width, height, n = args.width or 480, args.height or 320, args.frames or 40
    weights = args.temporal_weight if args.temporal_weight is not None else [DEFAULT_TEMPORAL_WEIGHT]
    if args.method != "optimize":
        weights = [DEFAULT_TEMPORAL_WEIGHT]  # the temporal loss is optimize's
    # (stability, temporal smoothing, temporal weight); the temporal loss needs the motion stability tracks.
    settings = [(s, 0.0, w) for s in stabilities for w in (weights if s > 0 else weights[:1])]
    settings += [(0.0, m, weights[0]) for m in (args.smoothing or []) if m > 0]
    options = {"method": args.method, **({"flow_size": args.flow_size} if args.flow_size else {})}
    if args.method == "optimize":  # every frame optimized, from the last one carried along the motion
        from brushwork.methods.optimize import OptimizeOptions

        options["optimize_options"] = OptimizeOptions(steps=args.optimize_steps)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "pan.mp4"
        truth = make_pan_clip(clip, width, height, n, args.noise)
        # The same clip again, for the flow from each frame to the one LONG_GAP frames before: drift.
        long_truth = make_pan_clip(clip, width, height, n, args.noise, gap=min(LONG_GAP, n - 1))
        source = read_frames(clip)
        estimated = farneback_flows(source)
        rows = [("input (the floor)", source, None, None)]
        for stability, smoothing, weight in settings:
            out = Path(tmp) / f"out-{stability}-{smoothing}-{weight}.mp4"
            result = stylize_video(clip, out, args.style, stability=stability, temporal_smoothing=smoothing,
                                   audio=False, quality=DEFAULT_CRF, temporal_weight=weight, **options)
            if stability == 0 and smoothing == 0:
                label = "frame by frame (`--stability 0`)"
            elif smoothing:
                label = f"`--stability 0 --temporal-smoothing {smoothing:g}`"
            else:
                label = f"`--stability {stability:g}`{' (default)' if stability == DEFAULT_STABILITY else ''}"
                if args.method == "optimize" and len(weights) > 1:
                    default = " (default)" if weight == DEFAULT_TEMPORAL_WEIGHT else ""
                    label += f" `--temporal-weight {weight:g}`{default}"
            rows.append((label, read_frames(out), result.frames / result.seconds, result.scene_cuts))
        hd = {}
        if args.hd_frames:
            clip_hd = Path(tmp) / "pan-hd.mp4"
            make_pan_clip(clip_hd, 1280, 720, args.hd_frames, args.noise, truth=False)
            for stability in (0.0, DEFAULT_STABILITY):
                result = stylize_video(clip_hd, Path(tmp) / "out-hd.mp4", args.style, stability=stability,
                                       audio=False, quality=DEFAULT_CRF, **options)
                hd[stability] = result.frames / result.seconds

    vgg = load_vgg19()
    painting = load_image(resolve_style(args.style))[0]
    middle = n // 2
    axes = {label: style_axes(vgg, frames[middle], source[middle], painting)
            for label, frames, fps, _ in rows[1:]}
    base_label = rows[1][0]
    base = axes[base_label]
    base_error = warping_error(rows[1][1], truth)
    print(f"\n{n} frames of {width}x{height} (camera pan and zoom, a square moving across), --style {args.style}, "
          f"--method {args.method}; style axes on frame {middle}, as ratios to frame by frame "
          f"(texture: style loss, lower is better; palette: distance to the painting's colours, lower is better; "
          f"structure: correlation with the input frame's edges, higher is better)\n")
    gap = min(LONG_GAP, n - 1)
    print(f"| setting | warping error, true flow (0-255) | vs frame by frame | warping error, Farneback flow "
          f"| long-term, t vs t-{gap} | texture | palette | structure | frames/s | scene cuts |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, frames, fps, cuts in rows:
        error = warping_error(frames, truth)
        cells = [label, f"{error:.2f}", f"{base_error / error:.2f}x lower", f"{warping_error(frames, estimated):.2f}",
                 f"{warping_error(frames, long_truth, gap):.2f}"]
        if label in axes:
            a = axes[label]
            cells += [f"{a['texture'] / base['texture']:.2f}", f"{a['palette'] / base['palette']:.2f}",
                      f"{a['structure'] / base['structure']:.2f}", f"{fps:.2f}", str(cuts)]
        else:
            cells += ["", "", "", "", ""]
        print("| " + " | ".join(cells) + " |")
    print(f"\nframe by frame, absolute: texture {base['texture']:.4g}, palette {base['palette']:.2f}, "
          f"structure {base['structure']:.3f}")
    if hd:
        print(f"\n1280x720, {args.hd_frames} frames: frame by frame {hd[0.0]:.2f} frames/s, "
              f"--stability {DEFAULT_STABILITY:g} {hd[DEFAULT_STABILITY]:.2f} frames/s "
              f"({hd[DEFAULT_STABILITY] / hd[0.0]:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", choices=("pan", "still"), default="pan")
    parser.add_argument("--style", "--model", dest="style", default="starry-night",
                        help="a shipped model or, with --method, a style (default: %(default)s)")
    parser.add_argument("--method", default="auto", help="a one-pass method, or optimize")
    parser.add_argument("--optimize-steps", type=int, default=30, help="--method optimize: steps per frame")
    parser.add_argument("--temporal-weight", type=float, nargs="+", default=None,
                        help="--method optimize: temporal loss weights to compare (default: the library's)")
    parser.add_argument("--stability", type=float, nargs="+", default=None,
                        help="pan clip: the strengths to measure (default: 0 0.5 DEFAULT 0.9)")
    parser.add_argument("--smoothing", type=float, nargs="+", default=None,
                        help="--temporal-smoothing values (pan clip: compared alongside; still clip: measured)")
    parser.add_argument("--flow-size", type=int, default=None, help="the stabilizer's flow size (default: its own)")
    parser.add_argument("--hd-frames", type=int, default=0, help="pan clip: also time an N-frame 1280x720 clip")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--noise", type=float, default=None,
                        help="sensor noise sigma, 0-255 (default: 2 on the pan clip, 4 on the still clip)")
    args = parser.parse_args()
    if args.noise is None:
        args.noise = 2.0 if args.clip == "pan" else 4.0
    (pan_benchmark if args.clip == "pan" else still_benchmark)(args)


if __name__ == "__main__":
    main()

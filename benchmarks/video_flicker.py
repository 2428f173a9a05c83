"""Flicker of stylized video, with and without `--temporal-smoothing`: prints a Markdown table.

The clip is made here, so the figures are reproducible: a still photo under fresh sensor noise every
frame (Gaussian, sigma 4/255 by default) with a square cut from another photo gliding across it, encoded with
H.264 at CRF 18 (so compression noise is real too). Each setting stylizes it through
`brushwork.stylize_video` (the product path) with a shipped model, and the output is measured:

- still flicker: the mean absolute change between consecutive output frames where the input stood
  still (pixels at least 8 px away from the moving square in both frames), in 0-255 units: what the
  eye sees as shimmer. The plain per-frame output (smoothing 0) is the reference.
- moving lag: where the square is, the mean absolute difference from the plain per-frame output,
  0-255: the trail that smoothing would leave on moving things (it should stay near the plain
  output's own noise).

    python benchmarks/video_flicker.py
    python benchmarks/video_flicker.py --model udnie --smoothing 0 0.5 0.8 --frames 36
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
DEFAULT_CRF = 0  # lossless output: its own compression would hide flicker and blur the lag


def make_clip(path: Path, width: int, height: int, frames: int, noise: float, seed: int = 0):
    """Writes the clip; returns the square's (x, y, side) in each frame."""
    import av
    from PIL import Image

    rng = np.random.default_rng(seed)
    still = np.asarray(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB").resize((width, height)), np.float32)
    side = height // 3
    patch = np.asarray(Image.open(EXAMPLES / "chelsea.jpg").convert("RGB").resize((side, side)), np.float32)
    boxes = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        stream.time_base = Fraction(1, 24)
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


def main() -> None:
    from brushwork.video import stylize_video

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="starry-night", help="a shipped feed-forward model (default: %(default)s)")
    parser.add_argument("--smoothing", type=float, nargs="+", default=[0.0, 0.3, 0.6, 0.8])
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--noise", type=float, default=4.0, help="sensor noise sigma, 0-255 (default: %(default)s)")
    args = parser.parse_args()
    if 0.0 not in args.smoothing:
        args.smoothing = [0.0] + args.smoothing  # the reference

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        boxes = make_clip(clip, args.width, args.height, args.frames, args.noise)
        shape = (args.height, args.width)
        moving = [box_mask(shape, b, MARGIN) for b in boxes]
        still = [~(moving[i] | moving[i - 1]) for i in range(1, len(boxes))]
        inner = [box_mask(shape, b, -MARGIN) for b in boxes]  # well inside the square
        source = read_frames(clip)
        source_flicker = np.mean([np.abs(source[i] - source[i - 1])[still[i - 1]].mean()
                                  for i in range(1, len(source))])
        outputs = {}
        for s in args.smoothing:
            out = Path(tmp) / f"out-{s}.mp4"
            stylize_video(clip, out, args.model, temporal_smoothing=s, audio=False, quality=DEFAULT_CRF)
            outputs[s] = read_frames(out)

    plain = outputs[0.0]
    print(f"\n{args.frames} frames of {args.width}x{args.height}, model {args.model}; the input's own change in "
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


if __name__ == "__main__":
    main()

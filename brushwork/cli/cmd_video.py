"""`brushwork video INPUT -o OUTPUT --style NAME|MODEL|IMAGE [--method ...]`: stylize every frame of a video."""

from __future__ import annotations

import sys

from brushwork.cli.cmd_stylize import add_stylize_flags, stylize_options
from brushwork.cli.common import add_common_flags
from brushwork.methods.optimize import OptimizeOptions
from brushwork.progress import ProgressBar
from brushwork.video import (
    DEFAULT_QUALITY,
    DEFAULT_STABILITY,
    DEFAULT_TEMPORAL_SMOOTHING,
    DEFAULT_TEMPORAL_WEIGHT,
    VIDEO_FORMATS,
    stylize_video,
)


def register(sub) -> None:
    p = sub.add_parser(
        "video",
        help="stylize every frame of a video (keeps its timing and sound)",
        description="Stylize each frame of a video with the one-pass method `brushwork stylize` would use for the same "
        "--style and --method (a trained model, or any style image through AdaIN, WCT or style prediction), and "
        "the same options. The frame timing is kept and the sound copied (or re-encoded when the output format "
        f"cannot hold it). The output format follows its suffix ({', '.join(VIDEO_FORMATS)}); it is written to a "
        "temporary file and renamed at the end, so a failed run never damages an existing file.",
    )
    p.add_argument("input", metavar="INPUT", help="a video file (any format FFmpeg reads)")
    p.add_argument("-o", "--output", required=True, help=f"output video file ({', '.join(VIDEO_FORMATS)})")
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="stylize only the first N frames (a quick preview; the sound stops with them)")
    p.add_argument("--quality", type=int, default=DEFAULT_QUALITY, metavar="CRF",
                   help="the encoder's constant-quality level, 0 (best, largest) to 51 (default: %(default)s)")
    p.add_argument("--stability", type=float, default=DEFAULT_STABILITY, metavar="S",
                   help="against flicker: keep this share of the previous painted frame, carried along the input's "
                   "optical flow, wherever the flow is reliable (occlusions, motion edges and scene cuts take the "
                   "new painting); 0 paints every frame on its own, towards 1 strokes persist longer "
                   "(default: %(default)s)")
    p.add_argument("--temporal-smoothing", type=float, default=DEFAULT_TEMPORAL_SMOOTHING, metavar="S",
                   help="against flicker: average each pixel's painting over the last frames where the input stood "
                   "still there, 0 (off) to below 1 (longer memory; 0.6 averages about 2.5 frames; "
                   "default: %(default)s)")
    p.add_argument("--no-audio", dest="audio", action="store_false", help="leave the sound out")
    add_stylize_flags(p, extra_methods={"optimize": "optimize every frame as `brushwork optimize` does, each from "
                                        "the last result carried along the motion (minutes per frame on a CPU)"})
    p.add_argument("--optimize-steps", type=int, default=OptimizeOptions().steps, metavar="N",
                   help="--method optimize: optimizer steps per frame after the first (which is optimized coarse to "
                   "fine, as `brushwork optimize` does; default: %(default)s)")
    p.add_argument("--temporal-weight", type=float, default=DEFAULT_TEMPORAL_WEIGHT, metavar="W",
                   help="--method optimize: weight of the temporal loss that holds each frame near the last result "
                   "carried along the motion, where the motion is reliable (Ruder et al. 2016; 0: only start from "
                   "it; default: %(default)s)")
    add_common_flags(p)
    p.set_defaults(run=run)


def run(args) -> int:
    options = stylize_options(args)
    bar = ProgressBar("video", quiet=args.quiet, unit="frame")
    try:
        optimize_options = OptimizeOptions(steps=args.optimize_steps, device=options.device,
                                           precision=options.precision) if options.method == "optimize" else None
        result = stylize_video(args.input, args.output, options=options, progress=bar, max_frames=args.max_frames,
                               quality=args.quality, audio=args.audio, temporal_smoothing=args.temporal_smoothing,
                               stability=args.stability, optimize_options=optimize_options,
                               temporal_weight=args.temporal_weight)
    finally:
        bar.close()
    if not args.quiet:
        s = result.stylizer
        print(f"wrote {result.path} ({result.frames} frame{'s' if result.frames != 1 else ''}, "
              f"{result.size[0]}x{result.size[1]}, sound {result.audio}, model {s.name}, {s.backend} on "
              f"{s.runtime.device.type}, stability {args.stability:g}, {result.scene_cuts} scene cut"
              f"{'s' if result.scene_cuts != 1 else ''}, {result.frames / result.seconds:.2f} frames/s)",
              file=sys.stderr)
    return 0

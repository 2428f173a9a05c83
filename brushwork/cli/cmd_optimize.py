"""`brushwork optimize CONTENT STYLE [STYLE ...] -o OUT` (or `--style STYLE`, as `brushwork stylize` takes it)."""

from __future__ import annotations

import sys

from brushwork.cli.common import add_common_flags, check_output_path
from brushwork.cli.options import add_dataclass_flags, dataclass_from_args
from brushwork.errors import BrushworkError
from brushwork.imaging import save_image
from brushwork.methods.optimize import OptimizeOptions, run_optimization
from brushwork.presets import resolve_style
from brushwork.progress import ProgressBar


def register(sub) -> None:
    p = sub.add_parser(
        "optimize",
        help="stylize by optimizing the image itself (Gatys et al.; slow, best quality)",
        description="Optimize the output image so its VGG-19 features match the content image and its "
        "Gram matrices match the style image(s). STYLE is an image file or a preset name (brushwork models).",
    )
    p.add_argument("content", help="content image (the photo)")
    p.add_argument("styles", nargs="*", metavar="style", help="style image(s) or preset name(s)")
    # The spelling `brushwork stylize` and `video` use; without it argparse read `--style` as an ambiguous
    # abbreviation of --style-weight, --style-layers, ...
    p.add_argument("--style", action="append", default=[], dest="style_flags", metavar="STYLE",
                   help="a style image or preset name, as a flag (repeat for several; added after the positional "
                   "ones)")
    p.add_argument("-o", "--output", required=True, help="output image file (.png, .jpg, .webp, ...)")
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="also save the image every N steps")
    add_dataclass_flags(p, OptimizeOptions)
    add_common_flags(p)
    p.set_defaults(run=run)


def run(args) -> int:
    output = check_output_path(args.output)
    if not args.styles and not args.style_flags:
        raise BrushworkError("give a style image or preset name after the content image (or with --style)")
    if args.save_every < 0:
        raise BrushworkError(f"--save-every must be zero or more, got {args.save_every}")
    options = dataclass_from_args(OptimizeOptions, args)
    styles = [resolve_style(s) for s in [*args.styles, *args.style_flags]]
    bar = ProgressBar("optimize", quiet=args.quiet)

    def progress(p):
        bar(p)
        if args.save_every and p.step % args.save_every == 0 and p.image is not None:
            save_image(p.image(), output.with_name(f"{output.stem}.step{p.step:05d}{output.suffix}"))

    try:
        result = run_optimization(args.content, styles, options, progress=progress)
    finally:
        bar.close()
    save_image(result.image, output, alpha=result.alpha)
    if result.interrupted:
        print(f"brushwork: interrupted after {result.steps} steps: saved the best image so far to {output}",
              file=sys.stderr)
        return 130
    if not args.quiet:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
        print(f"wrote {output} ({losses})", file=sys.stderr)
    return 0

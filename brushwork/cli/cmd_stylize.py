"""`brushwork stylize INPUT [INPUT ...] --style NAME|MODEL|IMAGE [--method auto|feedforward|adain|wct] -o OUT`."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from brushwork.cli.common import add_common_flags
from brushwork.cli.options import add_dataclass_flags, dataclass_from_args
from brushwork.distributed import launched_rank
from brushwork.errors import BrushworkError
from brushwork.imaging import save_image
from brushwork.imaging.io import IMAGE_SUFFIXES, SAVE_FORMATS
from brushwork.methods.dispatch import get_stylizer, method_names, registered_methods
from brushwork.methods.one_pass import DEFAULT_STYLE, StylizeOptions
from brushwork.progress import Progress, ProgressBar

# What a folder input picks up (non-recursive). Explicitly named files are tried whatever their name.


def register(sub) -> None:
    p = sub.add_parser(
        "stylize",
        help="stylize images instantly: a trained model, or any style image (AdaIN, WCT, style prediction)",
        description="Stylize photos with a trained feed-forward model (a shipped style name, see `brushwork models`, "
        "or a MODEL.safetensors file made by `brushwork train`; with --model MULTI, --style picks one of its styles "
        "or a blend A:0.3,B:0.7), or with any style image by AdaIN, WCT or style prediction (--method). Inputs "
        "are image files or folders (every image directly inside). With one input file, -o is the output file "
        "(or a folder); otherwise -o is a folder and outputs keep the inputs' names.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("-o", "--output", required=True, help="output image file (one input) or folder")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave outputs that exist as they are (to finish an interrupted folder: outputs are written "
                   "whole or not at all)")
    add_stylize_flags(p)
    add_common_flags(p)
    p.set_defaults(run=run)


def add_stylize_flags(p, extra_methods: dict[str, str] | None = None) -> None:
    """--style, --method and every `StylizeOptions` field: the flags of each one-pass front end.
    `extra_methods`: methods this front end takes besides the one-pass ones (name: description)."""

    p.add_argument("--style", action="append", default=None, metavar="STYLE",
                   help=f"a shipped model name or MODEL.safetensors file, or for adain, wct and predict a style image "
                   f"or preset name; repeat for several styles, weighted by --style-blend (default: {DEFAULT_STYLE})")
    extra = extra_methods or {}
    methods = "; ".join([f"{m.name}: {m.description}" for m in registered_methods()]
                        + [f"{name}: {description}" for name, description in extra.items()])
    p.add_argument("--method", default="auto", choices=["auto", *method_names(), *extra],
                   help="auto (default): a trained model when --style names one, else the first any-style method "
                   f"installed (style prediction with Magenta's network, then adain). {methods}")
    add_dataclass_flags(p, StylizeOptions, skip=("style", "method"))


def stylize_options(args):
    """The `StylizeOptions` of parsed `add_stylize_flags` flags, checked."""

    options = dataclass_from_args(StylizeOptions, args)
    styles = args.style or [DEFAULT_STYLE]
    options.style = styles[0] if len(styles) == 1 else styles
    options.validate()
    return options


def _collect_inputs(inputs: list[str]) -> tuple[list[Path], bool]:
    """(image files, whether the output must be a folder). Missing paths fail before any work."""

    files: list[Path] = []
    folder_given = False
    for text in inputs:
        p = Path(text).expanduser()
        if p.is_dir():
            folder_given = True
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES
                           and not q.name.startswith("."))
            if not found:
                raise BrushworkError(f"folder {text!r} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files += found
        elif p.exists():
            files.append(p)
        else:
            raise BrushworkError(f"input {text!r} not found")
    return files, folder_given or len(files) > 1


def _plan_outputs(files: list[Path], output: str, to_folder: bool) -> list[Path]:
    out = Path(output).expanduser()
    if not to_folder and not out.is_dir():
        if out.suffix.lower() not in SAVE_FORMATS:
            known = ", ".join(sorted(SAVE_FORMATS))
            raise BrushworkError(f"cannot write {output!r}: unknown image format {out.suffix or '(none)'!r} "
                                 f"(use {known}, or an existing folder)")
        targets = [out]
    else:
        if out.exists() and not out.is_dir():
            raise BrushworkError(f"output {output!r} is a file, but {len(files)} images need an output folder")
        if not out.exists() and out.suffix.lower() in SAVE_FORMATS:
            raise BrushworkError(f"output {output!r} looks like a file name, but several images need an output folder")
        targets = []
        for f in files:
            name = f.name if f.suffix.lower() in SAVE_FORMATS else f.stem + ".png"
            targets.append(out / name)
    seen: dict[Path, Path] = {}
    for src, dst in zip(files, targets):
        key = dst.resolve()
        if key in seen:
            raise BrushworkError(f"{str(src)!r} and {str(seen[key])!r} would both be written to {str(dst)!r}")
        if key == src.resolve():
            raise BrushworkError(f"output {str(dst)!r} would overwrite its input: choose another -o")
        seen[key] = src
    return targets


def run(args) -> int:
    options = stylize_options(args)
    files, to_folder = _collect_inputs(args.inputs)
    targets = _plan_outputs(files, args.output, to_folder)
    # Under torchrun (docs/distributed.md) each process paints every Nth image, on its own GPU with CUDA.
    rank, ranks, local_rank = launched_rank()
    if ranks > 1 and options.device == "auto" and torch.cuda.is_available():
        options.device = f"cuda:{local_rank}"
    work = list(zip(files, targets))[rank::ranks]
    if args.skip_existing:
        work = [(src, dst) for src, dst in work if not dst.exists()]
    files = [src for src, _ in work]
    stylizer = get_stylizer(options)  # bad model files or options fail here, before any image

    bar = ProgressBar("stylize", quiet=args.quiet, unit="image")
    failures = []
    try:
        for i, (src, dst) in enumerate(work, 1):
            try:
                image = stylizer.stylize(src, options)
                save_image(image, dst)
            except BrushworkError as exc:
                if len(targets) == 1:  # one image asked for: its error is the command's
                    raise
                failures.append(src)
                print(f"brushwork: error: {exc}", file=sys.stderr)
            bar(Progress(step=i, total=len(files)))
    finally:
        bar.close()
    done = len(files) - len(failures)
    if failures:
        print(f"brushwork: stylized {done} of {len(files)} images; {len(failures)} failed", file=sys.stderr)
        return 1
    if not args.quiet:
        where = targets[0] if len(targets) == 1 else targets[0].parent
        print(f"wrote {where} ({done} image{'s' if done != 1 else ''}, model {stylizer.name}, "
              f"{stylizer.backend} on {stylizer.runtime.device.type})", file=sys.stderr)
    return 0

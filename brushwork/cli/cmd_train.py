"""`brushwork train --style IMAGE --data DIR -o MODEL.safetensors [options]`."""

from __future__ import annotations

import sys

from brushwork.cli.common import add_common_flags
from brushwork.cli.options import add_dataclass_flags, dataclass_from_args
from brushwork.distributed import launched_rank
from brushwork.progress import ProgressBar
from brushwork.training import train
from brushwork.training.kinds import get_kind, kind_names
from brushwork.training.options import TrainOptions


def register(sub) -> None:
    kinds = "; ".join(f"{k}: {get_kind(k).description}" for k in kind_names())
    p = sub.add_parser(
        "train",
        help="train a style network on a folder of photos",
        description="Train a network (--kind) on a folder of photos. Progress goes to the terminal; a JSON-lines "
        "log, preview images and checkpoints go to --run-dir, and --resume continues an interrupted run exactly. "
        f"Kinds: {kinds}.",
    )
    p.add_argument("-o", "--output", dest="output", default=None, metavar="MODEL.safetensors",
                   help="model file to write (.safetensors)")
    add_dataclass_flags(p, TrainOptions, skip=("output",))
    add_common_flags(p)
    p.set_defaults(run=run)


def run(args) -> int:
    options = dataclass_from_args(TrainOptions, args)
    # Under torchrun (docs/distributed.md) rank 0 alone shows progress and the summary.
    args.quiet = args.quiet or launched_rank()[0] != 0
    bar = ProgressBar(f"train {options.kind}", quiet=args.quiet)
    try:
        result = train(options, progress=bar)
    finally:
        bar.close()
    loop = result.loop
    if result.interrupted:
        print(f"brushwork: interrupted at step {loop.step} of {loop.total}: checkpoint saved in {loop.run_dir}; "
              "run the same command with --resume to continue", file=sys.stderr)
        return 130
    if not args.quiet:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in loop.losses.items())
        stopped = f" of {loop.total}, stopped by --time-limit" if loop.time_limited else ""
        print(f"wrote {result.output} ({loop.step} steps{stopped}, {loop.wall_time:.0f} s; {losses}); "
              f"log, previews and checkpoints in {loop.run_dir}", file=sys.stderr)
    return 0

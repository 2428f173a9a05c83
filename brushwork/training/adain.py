"""The AdaIN decoder's objective (Huang and Belongie 2017).

For a batch of photos and a batch of style crops, the photos' relu4_1 features are given the
styles' channel statistics (t = AdaIN(f(c), f(s))) and the decoder g turns t into an image. Its loss:
- content: the decoded image's relu4_1 features against t itself (not the photo's features: the
  decoder must produce images whose features carry the new statistics);
- style: distance of channel means and standard deviations (`mean_std_style_loss`) at relu1_1,
  relu2_1, relu3_1 and relu4_1, against the style crop's.
Each term is relative: divided by the mean square of its target (t for the content; the style's
means and standard deviations for each style layer). VGG-19's Caffe-scale activations grow with
depth (measured on a painting: channel statistics of rms ~30 at relu1_1, ~700 at relu4_1), so raw
squared errors would let relu4_1 outweigh relu1_1 by ~400x and the decoder would ignore fine texture;
Huang's VGG was normalized to comparable activations per layer, and relative errors restore that
balance, so his style weight (10) means about what it meant there.

The styles are a folder of images, each resized once to `style_size` on its short side and cropped
at random (`image_size`) per step; which style and which crop is a function of the seed and the
step number alone, so a resumed run samples exactly what an uninterrupted one would.
"""

from __future__ import annotations

from pathlib import Path

import torch

from brushwork.distributed import mean_over_ranks_tensor, rank_and_size
from brushwork.errors import BrushworkError
from brushwork.features.transfer import adain
from brushwork.imaging import load_image, resize
from brushwork.losses import content_loss, mean_std, mean_std_style_loss
from brushwork.methods.wct import decoders_from_model
from brushwork.nets.decoder import Decoder, DecoderConfig
from brushwork.training.data import describe_data, seeded_rng
from brushwork.training.loop import Objective
from brushwork.training.options import TrainOptions
from brushwork.training.styles import list_training_styles

ADAIN_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


class StyleCrops:
    """Style images held in memory at `short_side`; `batch(step, n, size)` gives n random crops."""

    def __init__(self, spec: str, short_side: int, seed: int):
        # `--styles` means the same for every kind: a folder, or comma-separated files and preset names.
        self.files = [style.path for style in list_training_styles(spec)]
        if Path(spec).expanduser().is_dir():
            self.description = describe_data(spec, len(self.files))
        else:
            self.description = {"images": len(self.files), "list": spec}
        self.seed = seed
        self.images = []
        for path in self.files:
            image, _ = load_image(path)
            h, w = image.shape[2:]
            scale = short_side / min(h, w)
            self.images.append(resize(image, (max(short_side, round(h * scale)), max(short_side, round(w * scale))))
                               .clamp_(0.0, 1.0))

    def batch(self, step: int, count: int, size: int) -> torch.Tensor:
        rng = seeded_rng(self.seed, step, 3)
        # On several processes (brushwork.distributed) each draws the whole batch's crops and keeps its own
        # slice: the crops one process would pair with the same photos.
        rank, ranks = rank_and_size()
        crops = []
        for i in range(count * ranks):
            image = self.images[rng.randrange(len(self.images))]
            h, w = image.shape[2:]
            if min(h, w) < size:
                image = resize(image, (max(size, h), max(size, w)))
                h, w = image.shape[2:]
            top, left = rng.randint(0, h - size), rng.randint(0, w - size)
            if i // count == rank:
                crops.append(image[:, :, top : top + size, left : left + size])
        return torch.cat(crops, 0)


class AdaINObjective(Objective):
    kind = "adain"

    def __init__(self, options: TrainOptions, vgg, runtime):
        if not options.styles:
            raise BrushworkError("--styles is needed for --kind adain: a folder of style images, or comma-separated "
                                 "files and preset names")
        self.options = options
        self.rt = runtime
        self.vgg = vgg
        self.config = DecoderConfig.for_training(ADAIN_LAYER, options.network("decoder_width"))
        self.decoder = runtime.prepare_module(Decoder(self.config))
        self.modules = {"decoder": self.decoder}
        self.styles = StyleCrops(options.styles, max(options.style_size, options.image_size), options.seed)
        self.preview_style = self.styles.images[0]  # the whole first style image, at its training scale

    def loss(self, batch: torch.Tensor, step: int):
        o = self.options
        style = self.rt.prepare_input(self.styles.batch(step, batch.shape[0], batch.shape[-1]))
        with torch.no_grad():
            content_features = self.vgg(batch, [ADAIN_LAYER])[ADAIN_LAYER]
            style_features = self.vgg(style, STYLE_LAYERS)
            target = torch.cat([adain(content_features[i : i + 1], style_features[ADAIN_LAYER][i : i + 1])
                                for i in range(batch.shape[0])])
            style_targets = {k: mean_std(v) for k, v in style_features.items()}
            # The scales are means over the whole batch: on several processes, over every rank's share
            # (equal shares: the mean of the ranks' means), so each rank's loss is the one-process loss's.
            scales = mean_over_ranks_tensor(torch.stack(
                [target.pow(2).mean().float()]
                + [m.pow(2).mean() + sd.pow(2).mean() for m, sd in style_targets.values()])).clamp_min(1e-8)
            content_scale = scales[0]
            style_scales = dict(zip(style_targets, scales[1:]))
        output = self.decoder(target.to(content_features.dtype))
        feats = self.vgg(output, STYLE_LAYERS)
        c = content_loss(feats[ADAIN_LAYER], target) / content_scale
        s = sum(mean_std_style_loss(feats[k], *style_targets[k]) / style_scales[k] for k in STYLE_LAYERS)
        total = o.content_weight * c + o.style_weight * s
        return total, {"content": float(c.detach()), "style": float(s.detach()), "total": float(total.detach())}

    def preview(self, image: torch.Tensor) -> torch.Tensor:
        style = self.rt.prepare_input(self.preview_style)
        content_features = self.vgg(image, [ADAIN_LAYER])[ADAIN_LAYER]
        style_features = self.vgg(style, [ADAIN_LAYER])[ADAIN_LAYER]
        return self.decoder(adain(content_features, style_features).to(content_features.dtype)).clamp(0, 1)

    def load_model_state(self, model) -> None:
        """`--init` from an AdaIN decoder, or from the relu4_1 decoder of a WCT model: the same network,
        trained to invert the encoder, so AdaIN training starts from a reconstruction instead of noise
        (from noise, 450 CPU steps gave a decoder whose output kept no trace of the photo)."""
        if model.kind == "wct":
            decoder = decoders_from_model(model).get(ADAIN_LAYER)
            if decoder is None or decoder.config != self.config:
                raise BrushworkError(f"model {model.name!r} has no {ADAIN_LAYER} decoder like this run's "
                                     f"({self.config.to_dict()})")
            self.decoder.load_state_dict(decoder.state_dict())
            return
        super().load_model_state(model)

    def model_config(self) -> dict:
        return self.config.to_dict()

    def identity(self) -> dict:
        o = self.options
        return {
            "kind": self.kind,
            "styles": [str(p.resolve()) for p in self.styles.files],
            "image_size": o.image_size,
            "style_size": o.style_size,
            "content_weight": o.content_weight,
            "style_weight": o.style_weight,
            "network": self.config.to_dict(),
        }

    def card(self) -> dict:
        o = self.options
        return {
            # What `brushwork models` shows in its style column: this decoder serves any style image.
            "style": f"any style image (AdaIN decoder; {len(self.styles.files)} training paintings)",
            "styles": {**self.styles.description, "files": [p.name for p in self.styles.files]},
            "content_weight": o.content_weight,
            "style_weight": o.style_weight,
            "content_layer": ADAIN_LAYER,
            "style_layers": list(STYLE_LAYERS),
            "style_size": o.style_size,
            "network": self.config.to_dict(),
        }


def build_objective(options: TrainOptions, vgg, runtime) -> AdaINObjective:
    return AdaINObjective(options, vgg, runtime)


__all__ = ["AdaINObjective", "StyleCrops", "build_objective"]

"""The per-style objective (Johnson et al. 2016): one transformation network learns one style.

For a batch of photos x, the network's output y = f(x) is compared through VGG-19 with
- the photo, at the content layers (Johnson's relu2_2 by default: low enough to keep edges and
  detail, high enough to let colours and textures change);
- the style image, by Gram matrices at the style layers (relu1_2, relu2_2, relu3_3, relu4_3);
- itself, by total variation.
The style image's Gram matrices are computed once, at `style_size` (its long side), which fixes the
scale of the strokes the network learns, in pixels.

Default weights
---------------
Losses follow `brushwork.losses` (content: MSE of activations; style: Gram/HW, MSE/C^2), so the
numbers are not Johnson's. They were chosen by a short experiment (`optimize` with these layers and
weights on a photo, measured with the project's metric losses against `optimize`'s default result):
see DEFAULT_* in brushwork/training/options.py for the values and the reasons.
"""

from __future__ import annotations

from pathlib import Path

import torch

from brushwork.errors import BrushworkError
from brushwork.features import check_layer_names
from brushwork.imaging import load_image, resize_long_side
from brushwork.losses import content_loss, gram_matrix, gram_style_loss, total_variation_loss
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig
from brushwork.training.loop import Objective
from brushwork.training.options import TrainOptions


def style_credit(style: str) -> dict:
    """Artist and title of a preset style (by name or by its file), else the file's name."""
    from brushwork.presets import list_style_presets, resolve_style

    path = resolve_style(style).resolve()
    for preset in list_style_presets():
        if preset.path.resolve() == path:
            return {"preset": preset.name, "artist": preset.artist, "title": preset.title, "year": preset.year,
                    "file": path.name}
    return {"preset": None, "artist": None, "title": path.stem, "year": None, "file": path.name}


class FeedForwardObjective(Objective):
    kind = "feedforward"

    def __init__(self, options: TrainOptions, vgg, runtime):
        from brushwork.presets import resolve_style

        if not options.style:
            raise BrushworkError("--style is needed for --kind feedforward: a style image or preset name")
        content_layers = {k: float(v) for k, v in options.content_layers.items() if v > 0}
        style_layers = {k: float(v) for k, v in options.style_layers.items() if v > 0}
        if not content_layers and options.content_weight > 0:
            raise BrushworkError("at least one content layer with a positive weight is needed")
        if not style_layers:
            raise BrushworkError("at least one style layer with a positive weight is needed")
        check_layer_names(content_layers)
        check_layer_names(style_layers)
        for w in [*options.content_layers.values(), *options.style_layers.values()]:
            if not w >= 0:
                raise BrushworkError(f"layer weights must be zero or more, got {w}")

        self.options = options
        self.rt = runtime
        self.vgg = vgg
        self.content_layers = content_layers
        self.style_layers = style_layers
        # With a zero style weight (reconstruction pre-training) the style layers are not even computed.
        self.use_style = options.style_weight > 0
        self.output_layers = sorted((set(style_layers) if self.use_style else set())
                                    | (set(content_layers) if options.content_weight > 0 else set()))
        if not self.output_layers:
            raise BrushworkError("content and style weights are both zero: there is nothing to train")
        self.config = TransformerConfig(width=options.width, num_residual=options.num_residual, num_styles=1)
        self.net = runtime.prepare_module(StyleTransferNet(self.config))
        self.modules = {"net": self.net}

        self.style_path = resolve_style(options.style)
        self.credit = style_credit(options.style)
        style, _ = load_image(self.style_path)
        style = resize_long_side(style, options.style_size).clamp(0, 1)
        with torch.no_grad(), runtime.autocast():
            feats = vgg(runtime.prepare_input(style), style_layers)
        # fp32 Gram targets (gram_matrix always computes in fp32), 1 x C x C: they broadcast over the batch.
        self.style_targets = {k: gram_matrix(f).detach() for k, f in feats.items()}

    def loss(self, batch: torch.Tensor, step: int):
        o = self.options
        output = self.net(batch)
        feats = self.vgg(output, self.output_layers)
        total = 0.0
        losses = {}
        if o.content_weight > 0:
            with torch.no_grad():
                targets = self.vgg(batch, self.content_layers)  # only up to the deepest content layer
            c = sum(w * content_loss(feats[k], targets[k]) for k, w in self.content_layers.items())
            total = total + o.content_weight * c
            losses["content"] = float(c.detach())
        if self.use_style:
            s = sum(w * gram_style_loss(gram_matrix(feats[k]), self.style_targets[k])
                    for k, w in self.style_layers.items())
            ramp = min(1.0, step / o.style_ramp) if o.style_ramp else 1.0
            total = total + o.style_weight * ramp * s
            losses["style"] = float(s.detach())
        if o.tv_weight > 0:
            tv = total_variation_loss(output.float())
            total = total + o.tv_weight * tv
            losses["tv"] = float(tv.detach())
        losses["total"] = float(total.detach())
        return total, losses

    def preview(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image).clamp(0, 1)

    def model_state(self) -> dict[str, torch.Tensor]:
        return dict(self.net.state_dict())

    def model_config(self) -> dict:
        return self.config.to_dict()

    def identity(self) -> dict:
        o = self.options
        return {
            "kind": self.kind,
            "style": str(Path(self.style_path).resolve()),
            "image_size": o.image_size,
            "style_size": o.style_size,
            "content_weight": o.content_weight,
            "style_weight": o.style_weight,
            "tv_weight": o.tv_weight,
            "style_ramp": o.style_ramp,
            "content_layers": self.content_layers,
            "style_layers": self.style_layers,
            "network": self.config.to_dict(),
        }

    def card(self) -> dict:
        o = self.options
        return {
            "style": self.credit,
            "content_weight": o.content_weight,
            "style_weight": o.style_weight,
            "tv_weight": o.tv_weight,
            "style_ramp": o.style_ramp,
            "content_layers": self.content_layers,
            "style_layers": self.style_layers,
            "style_size": o.style_size,
            "network": self.config.to_dict(),
        }


def build_objective(options: TrainOptions, vgg, runtime) -> FeedForwardObjective:
    return FeedForwardObjective(options, vgg, runtime)


__all__ = ["FeedForwardObjective", "TrainOptions", "build_objective", "style_credit"]

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
from brushwork.presets import list_style_presets, resolve_style
from brushwork.training.loop import Objective
from brushwork.training.options import TrainOptions


def style_credit(style: str) -> dict:
    """Artist and title of a preset style (by name or by its file), else the file's name."""

    path = resolve_style(style).resolve()
    for preset in list_style_presets():
        if preset.path.resolve() == path:
            return {"preset": preset.name, "artist": preset.artist, "title": preset.title, "year": preset.year,
                    "file": path.name}
    return {"preset": None, "artist": None, "title": path.stem, "year": None, "file": path.name}


class PerceptualObjective(Objective):
    """The perceptual losses every transformation-network kind shares (feedforward, multi, arbitrary):
    content against the photo, Gram style against per-image targets, total variation, with the
    style ramp. Subclasses build the network and say which style each photo of a batch gets."""

    def setup_losses(self, options: TrainOptions, vgg, runtime) -> None:
        """Check and keep the loss settings; decide which VGG layers a step computes."""
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

    def style_grams(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """fp32 Gram targets (N x C x C) of style images already on the device, without gradients."""
        with torch.no_grad(), self.rt.autocast():
            feats = self.vgg(images, self.style_layers)
        return {k: gram_matrix(f).detach() for k, f in feats.items()}

    def perceptual_loss(self, batch: torch.Tensor, output: torch.Tensor, style_targets: dict[str, torch.Tensor],
                        step: int):
        """(total, logged losses) of `output` for photos `batch`; style targets are 1 x C x C or N x C x C."""
        o = self.options
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
            s = sum(w * gram_style_loss(gram_matrix(feats[k]), style_targets[k])
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

    def loss_settings(self) -> dict:
        """The loss settings, for `identity()` and the model card."""
        o = self.options
        return {
            "content_weight": o.content_weight,
            "style_weight": o.style_weight,
            "tv_weight": o.tv_weight,
            "style_ramp": o.style_ramp,
            "content_layers": self.content_layers,
            "style_layers": self.style_layers,
            "style_size": o.style_size,
        }


def load_style_image(style: str, size: int) -> torch.Tensor:
    """A style image (file or preset name) as 1 x 3 x H x W in [0, 1], long side `size`."""

    image, _ = load_image(resolve_style(style))
    return resize_long_side(image, size).clamp(0, 1)


class FeedForwardObjective(PerceptualObjective):
    kind = "feedforward"

    def __init__(self, options: TrainOptions, vgg, runtime):
        if not options.style:
            raise BrushworkError("--style is needed for --kind feedforward: a style image or preset name")
        self.setup_losses(options, vgg, runtime)
        self.config = TransformerConfig(width=options.network("width"), num_residual=options.network("num_residual"),
                                        num_styles=1)
        self.net = runtime.prepare_module(StyleTransferNet(self.config))
        self.modules = {"net": self.net}

        self.style_path = resolve_style(options.style)
        self.credit = style_credit(options.style)
        # 1 x C x C targets: they broadcast over the batch.
        style_image = load_style_image(options.style, options.style_size)
        self.style_targets = self.style_grams(runtime.prepare_input(style_image))

    def loss(self, batch: torch.Tensor, step: int):
        return self.perceptual_loss(batch, self.net(batch), self.style_targets, step)

    def preview(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image).clamp(0, 1)

    def model_config(self) -> dict:
        return self.config.to_dict()

    def identity(self) -> dict:
        o = self.options
        return {
            "kind": self.kind,
            "style": str(Path(self.style_path).resolve()),
            "image_size": o.image_size,
            **self.loss_settings(),
            "network": self.config.to_dict(),
        }

    def card(self) -> dict:
        return {"style": self.credit, **self.loss_settings(), "network": self.config.to_dict()}


def build_objective(options: TrainOptions, vgg, runtime) -> FeedForwardObjective:
    return FeedForwardObjective(options, vgg, runtime)


__all__ = ["FeedForwardObjective", "PerceptualObjective", "TrainOptions", "build_objective", "load_style_image",
           "style_credit"]

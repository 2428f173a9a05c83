"""The WCT decoders' objective (Li et al. 2017): five decoders that invert VGG-19.

For each of relu1_1 ... relu5_1 a decoder g_l learns to reconstruct a photo x from its features
f_l(x), with a pixel loss |g_l(f_l(x)) - x|^2 plus a feature loss |f_l(g_l(f_l(x))) - f_l(x)|^2. No
style image is involved: the decoders only invert the encoder, so WCT has no "unseen" styles.

All five decoders train in one run and are saved in one model file (tensors `LAYER.KEY`). Why one
run, not one per level: the photos' features at every level come from one encoder pass per batch,
there is one file, one card and one resume to manage, and since each decoder has its own parameters
and Adam is per-parameter, training them on the sum of their losses is exactly training each on its
own loss with the same photos and steps.

The feature loss is divided by the mean square of the target features at that level: VGG-19's
Caffe-scale activations are in the tens to hundreds and grow with depth, so a plain feature MSE
would swamp the pixel loss, by a different factor at each level; relative to the features' own
energy, both terms are of order one and `content_weight` (default 1) means the same at every level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from brushwork.distributed import mean_over_ranks_tensor
from brushwork.errors import BrushworkError
from brushwork.methods.wct import decoders_from_model
from brushwork.nets.decoder import DECODER_LAYERS, Decoder, DecoderConfig
from brushwork.training.loop import Objective
from brushwork.training.options import TrainOptions


class WCTDecodersObjective(Objective):
    kind = "wct"

    def __init__(self, options: TrainOptions, vgg, runtime):
        self.options = options
        self.rt = runtime
        self.vgg = vgg
        self.layers = DECODER_LAYERS
        self.width = float(options.network("decoder_width"))
        self.modules = {layer: runtime.prepare_module(Decoder(DecoderConfig.for_training(layer, self.width)))
                        for layer in self.layers}

    def loss(self, batch: torch.Tensor, step: int):
        weight = self.options.content_weight
        with torch.no_grad():
            targets = self.vgg(batch, self.layers)
            # Each level's mean square over the whole batch (on several processes, over every rank's share).
            scales = mean_over_ranks_tensor(torch.stack([targets[layer].float().pow(2).mean()
                                                         for layer in self.layers])).clamp_min(1e-8)
        total, losses = 0.0, {}
        for layer, scale in zip(self.layers, scales):
            output = self.modules[layer](targets[layer])
            pixel = F.mse_loss(output.float(), batch.float())
            target = targets[layer].float()
            feature = F.mse_loss(self.vgg(output, [layer])[layer].float(), target) / scale
            total = total + pixel + weight * feature
            level = layer[4]  # relu{level}_1
            losses[f"pixel{level}"] = float(pixel.detach())
            losses[f"feature{level}"] = float(feature.detach())
        losses["total"] = float(total.detach())
        return total, losses

    def preview(self, image: torch.Tensor) -> torch.Tensor:
        # The five reconstructions side by side, finest level first.
        feats = self.vgg(image, self.layers)
        return torch.cat([self.modules[layer](feats[layer]).clamp(0, 1) for layer in self.layers], 3)

    def load_model_state(self, model) -> None:
        if model.kind != self.kind:
            raise BrushworkError(f"cannot initialize WCT decoders from {model.name!r}, a {model.kind} model")
        loaded = decoders_from_model(model)
        for layer, module in self.modules.items():
            if layer not in loaded or loaded[layer].config != self.modules[layer].config:
                raise BrushworkError(f"model {model.name!r} has no {layer} decoder like this run's "
                                     f"({self.modules[layer].config.to_dict()})")
            module.load_state_dict(loaded[layer].state_dict())

    def model_config(self) -> dict:
        return {"layers": list(self.layers), "width": self.width,
                "input_scales": {layer: m.config.input_scale for layer, m in self.modules.items()}}

    def identity(self) -> dict:
        o = self.options
        return {"kind": self.kind, "image_size": o.image_size, "content_weight": o.content_weight,
                "network": self.model_config()}

    def card(self) -> dict:
        return {
            "style": "any style image (WCT decoders; no painting in training)",
            "loss": "pixel MSE + content_weight x feature MSE / mean square of the features, per level",
            "content_weight": self.options.content_weight,
            "network": self.model_config(),
        }


def build_objective(options: TrainOptions, vgg, runtime) -> WCTDecodersObjective:
    return WCTDecodersObjective(options, vgg, runtime)


__all__ = ["WCTDecodersObjective", "build_objective"]

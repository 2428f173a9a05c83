"""A new style in minutes (`--kind adapt`): train only the normalization parameters of a trained network.

Dumoulin et al. 2017 showed that a style lives in the instance norms' scales and shifts; Ghiasi et al.
2017 that a network trained on many paintings can predict them for any painting. So this kind starts
from Magenta's trained arbitrary-style network (`magenta-arbitrary`, `brushwork.nets.magenta`): its
convolutions stay frozen, its norm parameters start at what its style-prediction network predicts for
the painting (so the first preview already looks like the painting), and only those 694 numbers are
trained against the perceptual loss (`PerceptualObjective`) on the training photos. With
`--adapt-params embedding` the 100-number embedding they are predicted from is trained instead, through
the predictor's frozen linear map: fewer numbers, and a style that stays within what the predictor can
express (docs/performance.md compares the two).

The model file holds only those norm parameters and the name of the network they extend
(`config["base"]`): a few KB. It is a feed-forward model like any other (`load_network` rebuilds the
base network and sets them), so it works wherever a trained model works.
"""

from __future__ import annotations

from pathlib import Path

import torch

from brushwork.errors import BrushworkError
from brushwork.imaging import load_image
from brushwork.models.registry import ModelFile, find_model
from brushwork.nets.magenta import ARBITRARY_MODEL
from brushwork.nets.mobilenet import MobileNetPredictorConfig, MobileNetStylePredictor, TrainableEmbedding
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig, split_norm_params
from brushwork.presets import resolve_style
from brushwork.training.feedforward import PerceptualObjective, load_style_image, style_credit
from brushwork.training.options import ADAPT_PARAMS, TrainOptions, with_kind_defaults

BASE_MODEL = ARBITRARY_MODEL


def base_network(base: ModelFile) -> tuple[StyleTransferNet, MobileNetStylePredictor]:
    """The transformer and the style predictor of an arbitrary-style model with a MobileNet-v2 predictor."""
    if base.kind != "arbitrary" or base.config.get("predictor", {}).get("type") != "mobilenet_v2":
        raise BrushworkError(f"{base.name!r} cannot be adapted: --kind adapt extends {BASE_MODEL}")
    net = StyleTransferNet(TransformerConfig.from_dict(base.config))
    net.load_state_dict({k[len("net."):]: v for k, v in base.tensors.items() if k.startswith("net.")})
    predictor = MobileNetStylePredictor(MobileNetPredictorConfig.from_dict(base.config["predictor"]))
    predictor.load_state_dict({k[len("predictor."):]: v for k, v in base.tensors.items()
                               if k.startswith("predictor.")})
    return net.eval(), predictor.eval()


def norm_state(net: StyleTransferNet) -> dict[str, torch.Tensor]:
    """The norm parameters of a network by their state-dict names: what an adapted model file holds."""
    ids = {id(layer.scale) for layer in net.norm_layers()} | {id(layer.shift) for layer in net.norm_layers()}
    return {name: p.detach().clone() for name, p in net.named_parameters() if id(p) in ids}


class AdaptObjective(PerceptualObjective):
    kind = "feedforward"  # the file it writes: a feed-forward model that names its base network

    def __init__(self, options: TrainOptions, vgg, runtime):
        if not options.style:
            raise BrushworkError("--style is needed for --kind adapt: a painting (image file or preset name)")
        if options.adapt_params not in ADAPT_PARAMS:
            raise BrushworkError(f"--adapt-params must be {' or '.join(ADAPT_PARAMS)}, got {options.adapt_params!r}")
        self.setup_losses(with_kind_defaults(options), vgg, runtime)
        net, predictor = base_network(find_model(BASE_MODEL))
        self.config = net.config
        # The start: the style-prediction network's parameters for the painting.
        painting, _ = load_image(resolve_style(options.style))
        with torch.no_grad():
            embedding = predictor.embed_painting(painting)
        net.requires_grad_(False)
        self.embedding = None
        if options.adapt_params == "embedding":
            self.embedding = runtime.prepare_module(TrainableEmbedding(embedding, predictor.to_params))
            self._set_norms(net, self.embedding())
        else:
            self._set_norms(net, predictor.norm_params(embedding))
            for layer in net.norm_layers():
                layer.scale.requires_grad_(True)
                layer.shift.requires_grad_(True)
        self.net = runtime.prepare_module(net)
        self.modules = {"net": self.net} if self.embedding is None else {"embedding": self.embedding}
        self.style_path = resolve_style(options.style)
        self.credit = style_credit(options.style)
        self.style_targets = self.style_grams(runtime.prepare_input(load_style_image(options.style,
                                                                                     options.style_size)))

    @staticmethod
    def _set_norms(net: StyleTransferNet, flat: torch.Tensor) -> None:
        with torch.no_grad():
            for layer, (scale, shift) in zip(net.norm_layers(), split_norm_params(net, flat)):
                layer.scale.copy_(scale[0])
                layer.shift.copy_(shift[0])

    def stylized(self, batch: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            return self.net(batch)
        return self.net(batch, style=split_norm_params(self.net, self.embedding()))

    def loss(self, batch: torch.Tensor, step: int):
        return self.perceptual_loss(batch, self.stylized(batch), self.style_targets, step)

    def preview(self, image: torch.Tensor) -> torch.Tensor:
        return self.stylized(image).clamp(0, 1)

    def model_state(self) -> dict[str, torch.Tensor]:
        if self.embedding is not None:  # the file holds norm parameters either way
            self._set_norms(self.net, self.embedding().float())
        return norm_state(self.net)

    def load_model_state(self, model: ModelFile) -> None:
        """`--init` an adapted model (of the same base): start from its norm parameters."""
        if model.config.get("base") != BASE_MODEL:
            raise BrushworkError(f"cannot initialize --kind adapt from {model.name!r}: it does not extend {BASE_MODEL}")
        own = norm_state(self.net)
        if set(model.tensors) != set(own):
            raise BrushworkError(f"model {model.name!r} does not hold {BASE_MODEL}'s norm parameters")
        if self.embedding is not None:
            raise BrushworkError("--init with --adapt-params embedding: an adapted model holds norm parameters, "
                                 "not an embedding; continue it with --adapt-params norms")
        with torch.no_grad():
            for name, p in self.net.named_parameters():
                if name in own:
                    p.copy_(model.tensors[name].to(p))

    def model_config(self) -> dict:
        return {**self.config.to_dict(), "base": BASE_MODEL}

    def identity(self) -> dict:
        o = self.options
        return {"kind": "adapt", "base": BASE_MODEL, "style": str(Path(self.style_path).resolve()),
                "adapt_params": o.adapt_params, "image_size": o.image_size, **self.loss_settings()}

    def card(self) -> dict:
        return {"style": self.credit, **self.loss_settings(), "base": BASE_MODEL,
                "trained": "the norm parameters only (the base network's convolutions are frozen)" if self.embedding
                is None else "the style embedding only (the base network and the predictor's map are frozen)"}


def build_objective(options: TrainOptions, vgg, runtime) -> AdaptObjective:
    return AdaptObjective(options, vgg, runtime)


__all__ = ["AdaptObjective", "BASE_MODEL", "base_network", "build_objective", "norm_state"]

"""Arbitrary styles (Ghiasi et al. 2017), `--kind arbitrary`: a style-prediction network trained
jointly with one transformation network, so that any style image gives the transformer's norm
parameters in one pass.

Each step pairs every photo of the batch with a style image drawn afresh: a random crop of a
random training painting (a quarter to all of its short side, so stroke scale varies), flipped or
not, colour-jittered (brightness, contrast, saturation, per-channel gain); or, for a fraction
`--photo-styles` of the slots, another photo of the same batch, jittered the same way. The wide
variety is what lets the predictor generalize to paintings it never saw: with only a dozen
paintings it would otherwise learn a lookup table. The style image goes through the frozen VGG
once: its statistics feed the predictor, its Gram matrices are the style target.

All randomness of a step comes from a generator seeded by (seed, step), so resume stays exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from brushwork.distributed import gather_from_ranks, rank_and_size
from brushwork.errors import BrushworkError
from brushwork.imaging import resize
from brushwork.losses import gram_matrix
from brushwork.models.registry import ModelFile, load_state_strict
from brushwork.nets.style_predictor import (
    STATISTICS_LAYERS,
    PredictorConfig,
    StylePredictor,
    flat_norm_params,
    style_statistics,
)
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig, split_norm_params
from brushwork.presets import list_style_presets
from brushwork.training.feedforward import PerceptualObjective, load_style_image
from brushwork.training.options import TrainOptions
from brushwork.training.styles import list_training_styles

PREVIEW_STYLES = 3
MIN_CROP = 0.25  # smallest crop side, as a fraction of the painting's short side
PAINTING_SCALE = 2  # paintings are kept at this multiple of --style-size, so crops keep detail
FIT_CROPS = 12  # random crops per painting when the predictor is fitted to a multi-style model's table
FIT_STEPS = 400  # full-batch Adam steps of that fit (a few seconds: the inputs are computed once)


def jitter_draws(gen: torch.Generator) -> torch.Tensor:
    """The random numbers of one colour jitter (`apply_jitter`): saturation, contrast, brightness and the three
    channels' gains."""

    def uniform(low, high, n=1):
        return low + (high - low) * torch.rand(n, generator=gen)

    return torch.cat([uniform(0.6, 1.4), uniform(0.7, 1.3), uniform(0.8, 1.2), uniform(0.9, 1.1, 3)])


def apply_jitter(image: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """One 3 x H x W image in [0, 1] with the brightness, contrast, saturation and per-channel gain drawn."""
    grey = image.mean(0, keepdim=True)
    image = grey + (image - grey) * draws[0:1]  # saturation
    image = image.mean() + (image - image.mean()) * draws[1:2]  # contrast
    image = image * draws[2:3] * draws[3:6][:, None, None]  # brightness and colour cast
    return image.clamp(0, 1)


def crop_draws(height: int, width: int, gen: torch.Generator) -> tuple[int, int, int, bool]:
    """The random square (side, top, left) and flip of `random_crop` for an image of that size."""
    short = min(height, width)
    side = max(8, int(short * (MIN_CROP + (1 - MIN_CROP) * float(torch.rand(1, generator=gen)))))
    top = int(torch.randint(0, height - side + 1, (1,), generator=gen))
    left = int(torch.randint(0, width - side + 1, (1,), generator=gen))
    flip = float(torch.rand(1, generator=gen)) < 0.5
    return side, top, left, flip


def apply_crop(image: torch.Tensor, size: int, draws: tuple[int, int, int, bool]) -> torch.Tensor:
    """The square drawn by `crop_draws` of one 3 x H x W image, resized to size x size, maybe flipped."""
    side, top, left, flip = draws
    crop = resize(image[None, :, top:top + side, left:left + side], (size, size))[0]
    if flip:
        crop = crop.flip(-1)
    return crop.clamp(0, 1)


def random_crop(image: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """A random square crop (MIN_CROP to all of the short side), resized to size x size, maybe flipped."""
    return apply_crop(image, size, crop_draws(image.shape[1], image.shape[2], gen))


class ArbitraryStyleObjective(PerceptualObjective):
    kind = "arbitrary"

    def __init__(self, options: TrainOptions, vgg, runtime):
        if not options.styles:
            raise BrushworkError("--styles is needed for --kind arbitrary: a folder of style images or a list of them")
        self.setup_losses(options, vgg, runtime)
        self.styles = list_training_styles(options.styles)
        self.config = TransformerConfig(width=options.network("width"), num_residual=options.network("num_residual"),
                                        num_styles=1)
        self.net = runtime.prepare_module(StyleTransferNet(self.config))
        self.predictor_config = PredictorConfig(norm_params=self.net.norm_param_count(),
                                                embedding_size=options.network("embedding_size"))
        self.predictor = runtime.prepare_module(StylePredictor(self.predictor_config))
        self.modules = {"net": self.net, "predictor": self.predictor}
        self.predictor_fit = None  # set by init_from_multi: how the predictor was fitted, for the card
        self.paintings = [load_style_image(str(s.path), PAINTING_SCALE * options.style_size)[0] for s in self.styles]
        # The predictor's inputs are standardized by the training paintings' statistics (whole paintings).
        whole = torch.stack([resize(p[None], (options.style_size, options.style_size))[0] for p in self.paintings])
        with torch.no_grad():
            self.predictor.set_input_statistics(style_statistics(vgg, runtime.prepare_input(whole.clamp(0, 1))))
        self.predictor.set_output_bias(flat_norm_params(self.net.norm_layers()))

    def parameters(self):
        # The transformer's own norm rows are never used: the predictor supplies every norm parameter.
        own_norms = {id(layer.scale) for layer in self.net.norm_layers()} | {
            id(layer.shift) for layer in self.net.norm_layers()}
        return [p for p in super().parameters() if id(p) not in own_norms]

    def style_batch(self, photos: torch.Tensor, step: int) -> torch.Tensor:
        """N x 3 x S x S style images for step `step` (S: --style-size), on the photos' device.

        On several processes each draws the styles of the whole batch, as one process would, and makes its
        own share's: a style taken from a photo on another rank's share comes from all the ranks' photos."""
        o = self.options
        gen = torch.Generator().manual_seed(o.seed * 1_000_003 + step)
        rank, ranks = rank_and_size()
        n = photos.shape[0]
        total = n * ranks  # the whole batch (every rank's share is the same size)
        plans = []  # per photo of the whole batch: (photo index or None, painting index or None, draws)
        for i in range(total):
            if total > 1 and float(torch.rand(1, generator=gen)) < o.photo_styles:
                source = (i + 1 + int(torch.randint(0, total - 1, (1,), generator=gen))) % total
                plans.append((source, None, crop_draws(*photos.shape[-2:], gen), jitter_draws(gen)))
            else:
                painting = int(torch.randint(0, len(self.paintings), (1,), generator=gen))
                plans.append((None, painting, crop_draws(*self.paintings[painting].shape[-2:], gen),
                              jitter_draws(gen)))
        # Every rank sees every plan, so all agree on whether to gather (a collective call for all or none).
        crosses = any(source is not None and source // n != i // n for i, (source, *_) in enumerate(plans))
        sources, first = photos.detach().float(), rank * n
        if crosses:
            sources, first = gather_from_ranks(sources), 0
        sources = sources.cpu()
        out = []
        for source, painting, crop, jitter in plans[rank * n:(rank + 1) * n]:
            image = sources[source - first] if source is not None else self.paintings[painting]
            out.append(apply_jitter(apply_crop(image, o.style_size, crop), jitter))
        return self.rt.prepare_input(torch.stack(out))

    def predict_norm_params(self, styles: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(N x norm params, Gram targets) for style images; VGG runs once for both."""
        layers = set(self.style_layers) | set(STATISTICS_LAYERS)
        with torch.no_grad():
            feats = self.vgg(styles, layers)
            targets = {k: gram_matrix(feats[k]) for k in self.style_layers}
            statistics = style_statistics(self.vgg, styles, feats)
        return self.predictor(statistics), targets

    def loss(self, batch: torch.Tensor, step: int):
        params, targets = self.predict_norm_params(self.style_batch(batch, step))
        output = self.net(batch, split_norm_params(self.net, params))
        return self.perceptual_loss(batch, output, targets, step)

    def preview(self, image: torch.Tensor) -> torch.Tensor:
        outputs = []
        for painting in self.paintings[:PREVIEW_STYLES]:
            style = resize(painting[None], (self.options.style_size, self.options.style_size)).clamp(0, 1)
            params, _ = self.predict_norm_params(self.rt.prepare_input(style))
            outputs.append(self.net(image, split_norm_params(self.net, params)).clamp(0, 1))
        return torch.cat(outputs, dim=3)

    def load_model_state(self, model: ModelFile) -> None:
        """From an arbitrary model (both networks), or a single-style feed-forward model (the transformer;
        the predictor then starts at that model's norm parameters)."""
        if model.kind == "arbitrary":
            for name, module in self.modules.items():
                prefix = f"{name}."
                part = {k[len(prefix):]: v for k, v in model.tensors.items() if k.startswith(prefix)}
                load_state_strict(module, ModelFile(model.kind, model.config, model.card, part, model.path))
        elif model.kind == "feedforward":
            load_state_strict(self.net, model)
            self.predictor.set_output_bias(flat_norm_params(self.net.norm_layers()))
        elif model.kind == "multi":
            self.init_from_multi(model)
        else:
            raise BrushworkError(f"cannot initialize an arbitrary-style network from {model.name!r}, "
                                 f"a {model.kind} model")

    def init_from_multi(self, model: ModelFile) -> None:
        """Start from a multi-style model (Dumoulin et al.): Ghiasi et al.'s network is that network with
        its table of norm parameters replaced by the predictor. The convolutions are taken as they are;
        the predictor is fitted (mean square error on the norm parameters) to map random crops of each
        painting that both runs train on to that painting's row of the table. Why: trained from a single
        style, the predictor collapsed to one palette for every painting within the CPU recipe's steps;
        this way it starts out telling the paintings apart, and end-to-end training goes on from there.
        Crops are not colour-jittered here: the fit would learn to ignore colour, which the rows encode.
        """
        multi = StyleTransferNet(TransformerConfig.from_dict(model.config))
        load_state_strict(multi, model)
        own = self.net.state_dict()
        norm_keys = {k for k in own if k.endswith((".scale", ".shift"))}
        for k, v in multi.state_dict().items():
            if k not in norm_keys:
                if k not in own or own[k].shape != v.shape:
                    raise BrushworkError(f"multi-style model {model.name!r} has another architecture than this run "
                                         f"({k}): give --width and --num-residual as in its config")
                own[k] = v
        self.net.load_state_dict(own)

        rows = {name: i for i, name in enumerate(model.config.get("styles") or [])}
        shared = [(painting, style.name) for painting, style in zip(self.paintings, self.styles) if style.name in rows]
        if len(shared) < 2:
            raise BrushworkError(f"multi-style model {model.name!r} shares fewer than two paintings with --styles: "
                                 "nothing to fit the style predictor to")
        gen = torch.Generator().manual_seed(self.options.seed)
        size = self.options.style_size
        images, targets = [], []
        for painting, name in shared:
            images.append(resize(painting[None], (size, size))[0].clamp(0, 1))
            images += [random_crop(painting, size, gen) for _ in range(FIT_CROPS)]
            targets += [flat_norm_params(multi.norm_layers(), rows[name])] * (FIT_CROPS + 1)
        with torch.no_grad():
            statistics = torch.cat([style_statistics(self.vgg, self.rt.prepare_input(torch.stack(images[i:i + 16])))
                                    for i in range(0, len(images), 16)]).float().cpu()
        targets = torch.stack(targets)
        predictor = self.predictor
        device = predictor.to_params.bias.device
        statistics, targets = statistics.to(device), targets.to(device)
        predictor.set_output_bias(targets.mean(0))
        optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-3)
        with torch.enable_grad():
            for _ in range(FIT_STEPS):
                optimizer.zero_grad(set_to_none=True)
                loss = F.mse_loss(predictor(statistics), targets)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            residual = float(F.mse_loss(predictor(statistics), targets) / targets.var(0, unbiased=False).mean())
        self.predictor_fit = {"multi_model": model.name, "paintings": [name for _, name in shared],
                              "crops_per_painting": FIT_CROPS, "steps": FIT_STEPS,
                              "relative_residual": round(residual, 5)}

    def model_config(self) -> dict:
        return {**self.config.to_dict(), "predictor": self.predictor_config.to_dict(),
                "style_size": self.options.style_size}

    def identity(self) -> dict:
        o = self.options
        return {
            "kind": self.kind,
            "styles": [str(s.path) for s in self.styles],
            "image_size": o.image_size,
            "photo_styles": o.photo_styles,
            "predictor": self.predictor_config.to_dict(),
            **self.loss_settings(),
            "network": self.config.to_dict(),
        }

    def held_out_presets(self) -> list[str]:
        """The shipped style presets this run never trained on: fair tests of unseen styles."""

        trained = {s.path for s in self.styles}
        return [p.name for p in list_style_presets() if p.path.resolve() not in trained]

    def card(self) -> dict:
        return {
            **({"predictor_fit": self.predictor_fit} if self.predictor_fit else {}),
            "training_styles": [{"name": s.name, **s.credit} for s in self.styles],
            "held_out_presets": self.held_out_presets(),
            "photo_styles": self.options.photo_styles,
            **self.loss_settings(),
            "network": self.config.to_dict(),
            "predictor": self.predictor_config.to_dict(),
        }


def build_objective(options: TrainOptions, vgg, runtime) -> ArbitraryStyleObjective:
    return ArbitraryStyleObjective(options, vgg, runtime)

"""Many styles in one network (Dumoulin et al. 2017): conditional instance norm, `--kind multi`.

Every style shares the convolutions; each has its own row of (scale, shift) in every norm layer.
A batch spreads over the styles round-robin: photo i of step k gets style (k * batch + i) mod S, so
each step trains several styles' rows and the shared weights never chase one style for long, and
the choice is a function of the step alone (resume stays exact). The losses are the feed-forward
kind's (`PerceptualObjective`), with one Gram target per photo.

`--train-styles` restricts the round robin to some of the styles (the others' rows get no gradient) and
`--norm-only` trains nothing but the norm rows: together they improve some styles of a trained model
and leave every other one exactly as it was, which Dumoulin et al. also use to add a style.
`--style-repeat NAME:N` visits a style N times per round instead: a run that drew only four of ten
styles took those four 10-16% lower but doubled the style loss of two it left out (docs/training-
history.md, ninth continuation), so the shared weights must keep seeing every style, only the lagging
ones more often.

`--init` accepts a single-style feed-forward model (for example the reconstruction-pretrained
network of the CPU recipe): its one norm row is copied into every style's row, so each style
starts from the same reproduction of the photo.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from brushwork.distributed import rank_and_size
from brushwork.errors import BrushworkError
from brushwork.models.registry import ModelFile, load_state_strict
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig
from brushwork.training.feedforward import PerceptualObjective, load_style_image
from brushwork.training.options import TrainOptions
from brushwork.training.styles import list_training_styles

PREVIEW_STYLES = 4  # previews show the photo in this many of the styles, side by side
MAX_STYLE_REPEAT = 100  # --style-repeat's bound: a round of the round robin stays short


def weighted_round(counts: list[tuple[int, int]]) -> list[int]:
    """One round of a smooth weighted round robin: each (item, n) appears n times, its visits spread apart.

    Each turn every item gains its n, the item with the most credit (the earliest listed on a tie) is
    taken and pays the round's length; so a step of a few consecutive slots rarely holds one style twice.
    """
    total = sum(n for _, n in counts)
    credit = [0] * len(counts)
    out = []
    for _ in range(total):
        credit = [c + n for c, (_, n) in zip(credit, counts)]
        best = max(range(len(counts)), key=lambda i: (credit[i], -i))
        credit[best] -= total
        out.append(counts[best][0])
    return out


def expand_style_rows(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A single-style network's tensors fitted to a conditional one: each 1 x C norm row repeated per style."""
    out = {}
    for key, value in tensors.items():
        target = expected.get(key)
        if (target is not None and key.endswith((".scale", ".shift")) and value.dim() == 2 and value.shape[0] == 1
                and target.dim() == 2 and value.shape[1] == target.shape[1]):
            value = value.expand(target.shape[0], -1).clone()
        out[key] = value
    return out


class MultiStyleObjective(PerceptualObjective):
    kind = "multi"

    def __init__(self, options: TrainOptions, vgg, runtime):
        if not options.styles:
            raise BrushworkError("--styles is needed for --kind multi: a folder of style images or a list of them")
        self.setup_losses(options, vgg, runtime)
        self.styles = list_training_styles(options.styles)
        self.config = TransformerConfig(width=options.network("width"), num_residual=options.network("num_residual"),
                                        num_styles=len(self.styles))
        self.net = runtime.prepare_module(StyleTransferNet(self.config))
        self.modules = {"net": self.net}
        # S x C x C per layer: row s is style s's Gram target.
        per_style = [self.style_grams(runtime.prepare_input(load_style_image(str(s.path), options.style_size)))
                     for s in self.styles]
        self.style_targets = {k: torch.cat([g[k] for g in per_style]) for k in per_style[0]}
        # The styles the round robin visits (indices into self.styles): all, or --train-styles.
        self.trained = list(range(len(self.styles)))
        if options.train_styles:
            names = [n.strip() for n in options.train_styles.split(",") if n.strip()]
            unknown = [n for n in names if n not in self.style_names]
            if unknown or not names:
                what = f"names {unknown[0]!r}" if unknown else "names no style"
                raise BrushworkError(f"--train-styles {what}: it takes names among the --styles "
                                     f"({', '.join(self.style_names)})")
            self.trained = sorted({self.style_names.index(n) for n in names})
        self.repeats = self._parse_repeats(options.style_repeat)
        self.round = weighted_round([(s, self.repeats.get(s, 1)) for s in self.trained])
        if options.norm_only:  # no gradient for the shared weights: backward skips them
            self.net.requires_grad_(False)
            for layer in self.net.norm_layers():
                layer.requires_grad_(True)

    @property
    def style_names(self) -> list[str]:
        return [s.name for s in self.styles]

    def _parse_repeats(self, text: str | None) -> dict[int, int]:
        """--style-repeat NAME:N,... as {style index: N}, each name among the trained styles."""
        repeats: dict[int, int] = {}
        for item in (text or "").split(","):
            if not item.strip():
                continue
            name, _, count = item.strip().rpartition(":")
            name = name.strip()
            if not name or not count.strip().isdigit() or not 1 <= int(count) <= MAX_STYLE_REPEAT:
                raise BrushworkError(f"--style-repeat takes NAME:N with N a whole number from 1 to "
                                     f"{MAX_STYLE_REPEAT}, got {item.strip()!r}")
            if name not in self.style_names:
                raise BrushworkError(f"--style-repeat names {name!r}: it takes names among the --styles "
                                     f"({', '.join(self.style_names)})")
            index = self.style_names.index(name)
            if index not in self.trained:
                raise BrushworkError(f"--style-repeat names {name!r}, which --train-styles leaves out")
            repeats[index] = int(count)
        return repeats

    def styles_for_step(self, step: int, count: int) -> torch.Tensor:
        first = step * self.options.batch_size + rank_and_size()[0] * count  # this process's slice of the batch
        return torch.tensor([self.round[(first + i) % len(self.round)] for i in range(count)])

    def loss(self, batch: torch.Tensor, step: int):
        index = self.styles_for_step(step, batch.shape[0])
        weights = F.one_hot(index, len(self.styles)).float().to(batch.device)
        output = self.net(batch, weights)
        device_index = index.to(batch.device)
        targets = {k: v[device_index] for k, v in self.style_targets.items()}
        return self.perceptual_loss(batch, output, targets, step)

    def preview(self, image: torch.Tensor) -> torch.Tensor:
        shown = min(PREVIEW_STYLES, len(self.styles))
        outputs = []
        for s in range(shown):
            weights = F.one_hot(torch.tensor([s]), len(self.styles)).float().to(image.device)
            outputs.append(self.net(image, weights).clamp(0, 1))
        return torch.cat(outputs, dim=3)

    def load_model_state(self, model: ModelFile) -> None:
        if model.kind not in ("feedforward", "multi"):
            raise BrushworkError(f"cannot initialize a multi network from {model.name!r}, a {model.kind} model")
        expected = self.net.state_dict()
        fitted = ModelFile(kind=model.kind, config=model.config, card=model.card,
                           tensors=expand_style_rows(model.tensors, expected), path=model.path)
        load_state_strict(self.net, fitted)

    def model_config(self) -> dict:
        return {**self.config.to_dict(), "styles": self.style_names}

    def identity(self) -> dict:
        return {
            "kind": self.kind,
            "styles": [str(s.path) for s in self.styles],
            "image_size": self.options.image_size,
            **self.loss_settings(),
            "network": self.config.to_dict(),
            **self._partial_training(),
        }

    def card(self) -> dict:
        return {
            "styles": [{"name": s.name, **s.credit} for s in self.styles],
            **self.loss_settings(),
            "network": self.config.to_dict(),
            **self._partial_training(),
        }

    def _partial_training(self) -> dict:
        """What of the network this run trained, when not all of it (empty otherwise: older runs resume)."""
        out = {}
        if len(self.trained) < len(self.styles):
            out["trained_styles"] = [self.style_names[i] for i in self.trained]
        if any(n > 1 for n in self.repeats.values()):
            out["style_repeat"] = {self.style_names[i]: n for i, n in sorted(self.repeats.items()) if n > 1}
        if self.options.norm_only:
            out["norm_only"] = True
        return out


def build_objective(options: TrainOptions, vgg, runtime) -> MultiStyleObjective:
    return MultiStyleObjective(options, vgg, runtime)

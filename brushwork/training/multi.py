"""Many styles in one network (Dumoulin et al. 2017): conditional instance norm, `--kind multi`.

Every style shares the convolutions; each has its own row of (scale, shift) in every norm layer.
A batch spreads over the styles round-robin: photo i of step k gets style (k * batch + i) mod S, so
each step trains several styles' rows and the shared weights never chase one style for long, and
the choice is a function of the step alone (resume stays exact). The losses are the feed-forward
kind's (`PerceptualObjective`), with one Gram target per photo.

`--train-styles` restricts the round robin to some of the styles (the others' rows get no gradient) and
`--norm-only` trains nothing but the norm rows: together they improve some styles of a trained model
and leave every other one exactly as it was, which Dumoulin et al. also use to add a style.

`--teachers` replaces the perceptual losses by distillation: each style learns to reproduce, photo for
photo, the output of a trained network of that style (a single-style model, or a style of another
multi-style model). Why: a shared network sees each of its styles in a tenth of the steps a
single-style network gets, and a Gram target says far less per photo than a whole output image does;
a step without VGG features also costs about a third. The teachers' own outputs set the ceiling.

`--init` accepts a single-style feed-forward model (for example the reconstruction-pretrained
network of the CPU recipe): its one norm row is copied into every style's row, so each style
starts from the same reproduction of the photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from brushwork.errors import BrushworkError
from brushwork.methods.blend import style_name
from brushwork.models.registry import ModelFile, load_state_strict
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig
from brushwork.training.feedforward import PerceptualObjective, load_style_image
from brushwork.training.options import TrainOptions
from brushwork.training.styles import list_training_styles

PREVIEW_STYLES = 4  # previews show the photo in this many of the styles, side by side


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


@dataclass(frozen=True)
class Teacher:
    """A trained network that one style of the multi-style network learns from (`--teachers`)."""

    model: str  # the model's name
    steps: int | None  # its trained steps over every stage, for the card
    net: StyleTransferNet
    row: int | None  # the style's index in a multi-style teacher; None for a single-style one

    def stylize(self, photos: torch.Tensor) -> torch.Tensor:
        weights = None
        if self.row is not None:
            weights = F.one_hot(torch.full((photos.shape[0],), self.row), self.net.config.num_styles)
            weights = weights.float().to(photos.device)
        with torch.no_grad():
            return self.net(photos, weights).float().clamp(0, 1)  # what stylizing the photo gives


def load_teachers(spec: str, style_names: list[str], runtime) -> dict[str, Teacher]:
    """The teacher of each style name that one of `spec`'s models (comma-separated) can teach."""
    from brushwork.models.registry import find_model
    from brushwork.training.feedforward import style_credit

    teachers: dict[str, Teacher] = {}
    for source in (part.strip() for part in spec.split(",")):
        if not source:
            continue
        model = find_model(source)
        if model.kind not in ("feedforward", "multi"):
            raise BrushworkError(f"--teachers: {model.name!r} is a {model.kind} model, not a style network "
                                 "(feedforward or multi)")
        net = StyleTransferNet(TransformerConfig.from_dict(model.config))
        load_state_strict(net, model)
        net = runtime.prepare_module(net).eval().requires_grad_(False)
        if model.kind == "multi":
            taught = {name: row for row, name in enumerate(model.styles)}
        else:
            credit = model.card.get("style") or {}
            name = credit.get("preset") or style_name(Path(str(credit.get("file") or model.name)).stem)
            taught = {name: None}
        known = [name for name in taught if name in style_names]
        if not known:
            raise BrushworkError(f"--teachers: {model.name!r} teaches {', '.join(taught)}, none of the --styles "
                                 f"({', '.join(style_names)})")
        for name in known:
            teachers.setdefault(name, Teacher(model.name, model.trained_steps, net, taught[name]))
    return teachers


class MultiStyleObjective(PerceptualObjective):
    kind = "multi"

    def __init__(self, options: TrainOptions, vgg, runtime):
        if not options.styles:
            raise BrushworkError("--styles is needed for --kind multi: a folder of style images or a list of them")
        self.setup_losses(options, vgg, runtime)
        self.styles = list_training_styles(options.styles)
        self.config = TransformerConfig(width=options.width, num_residual=options.num_residual,
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
        self.teachers: dict[int, Teacher] = {}
        if options.teachers:
            by_name = load_teachers(options.teachers, self.style_names, runtime)
            missing = [self.style_names[i] for i in self.trained if self.style_names[i] not in by_name]
            if missing:
                raise BrushworkError(f"--teachers has no teacher for {', '.join(missing)}: every trained style needs "
                                     "one (a multi-style model listed last teaches the styles it has)")
            self.teachers = {i: by_name[n] for i, n in enumerate(self.style_names) if n in by_name}
        if options.norm_only:  # no gradient for the shared weights: backward skips them
            self.net.requires_grad_(False)
            for layer in self.net.norm_layers():
                layer.requires_grad_(True)

    @property
    def style_names(self) -> list[str]:
        return [s.name for s in self.styles]

    def styles_for_step(self, step: int, count: int) -> torch.Tensor:
        first = step * self.options.batch_size
        return torch.tensor([self.trained[(first + i) % len(self.trained)] for i in range(count)])

    def loss(self, batch: torch.Tensor, step: int):
        index = self.styles_for_step(step, batch.shape[0])
        weights = F.one_hot(index, len(self.styles)).float().to(batch.device)
        output = self.net(batch, weights)
        if self.teachers:
            return self.distillation_loss(batch, output, index)
        device_index = index.to(batch.device)
        targets = {k: v[device_index] for k, v in self.style_targets.items()}
        return self.perceptual_loss(batch, output, targets, step)

    def distillation_loss(self, batch: torch.Tensor, output: torch.Tensor, index: torch.Tensor):
        """Mean squared difference, over pixels in [0, 1], between the output and each photo's teacher's."""
        target = torch.empty(output.shape, dtype=torch.float32, device=output.device)
        for style in index.unique().tolist():
            rows = (index == style).nonzero().flatten().to(batch.device)
            target[rows] = self.teachers[style].stylize(batch[rows])
        loss = F.mse_loss(output.float(), target)
        return loss, {"distill": float(loss.detach()), "total": float(loss.detach())}

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
        """What of the network this run trained, when not all of it, and from what teachers (empty otherwise:
        older runs resume)."""
        out = {}
        if self.teachers:  # the card's loss settings then say nothing of what was trained
            out["teachers"] = {self.style_names[i]: {"model": t.model, "steps": t.steps}
                               for i, t in sorted(self.teachers.items()) if i in self.trained}
        if len(self.trained) < len(self.styles):
            out["trained_styles"] = [self.style_names[i] for i in self.trained]
        if self.options.norm_only:
            out["norm_only"] = True
        return out


def build_objective(options: TrainOptions, vgg, runtime) -> MultiStyleObjective:
    return MultiStyleObjective(options, vgg, runtime)

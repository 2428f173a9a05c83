"""Write a model whose weights are the mean of several runs continued from the same model ("model soup").

Runs continued side by side from one model (on the CPU: one per core, each with its own seed) end at
different points near one another; their mean removes part of each run's step noise, as the moving
average does within one run (docs/training-history.md, the multi-style model: the plain average of a model
and its continuation measured below the midpoint of the two). Averaging only makes sense for networks
that share their training up to the fork, so every model must be of one kind and shape, continued from
the same `init` (the card's record of the model each run started from), against the same objective. The
card is the first model's, with `averaged` listing each run (seed, steps, wall time, final losses) and
`steps` / `wall_time_s` the longest run's (the runs are parallel branches of one stage: the chain's step
count, `brushwork models`' trained steps, counts that stage once). Measure the result as any candidate:

    python recipes/average_models.py OUT.safetensors A.safetensors B.safetensors [...]
    python benchmarks/multi.py --multi A.safetensors B.safetensors OUT.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from brushwork.errors import BrushworkError
from brushwork.models.registry import ModelFile, read_model, save_model

# The card fields that say what a run optimized: runs that differ in one of them averaged under one card
# would misdescribe the model.
OBJECTIVE = ("content_weight", "style_weight", "tv_weight", "content_layers", "style_layers", "style_size",
             "image_size", "styles", "style")
# Which styles a multi-style run drew, how often, and which weights it trained: runs may differ in them
# (a run drawing the lagging styles more often beside a plain one), so each run's are listed, and the card
# keeps one at the top only where every run agrees.
SCHEDULE = ("trained_styles", "style_repeat", "norm_only")
# What each run contributes to the `averaged` list.
RUN_FIELDS = ("seed", "steps", "wall_time_s", "final_losses", "date", "ema_decay", "hardware", "precision",
              *SCHEDULE)


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _check_compatible(models: list[ModelFile]) -> None:
    first = models[0]
    if first.card.get("init") is None:
        raise BrushworkError(f"{str(first.path)!r} was not continued from a model (its card has no init): "
                             "only runs forked from one model can be averaged")
    for m in models[1:]:
        where = f"{str(m.path)!r} and {str(first.path)!r}"
        if m.kind != first.kind or not _same(m.config, first.config):
            raise BrushworkError(f"{where} are different networks (kind or config differ)")
        if m.tensors.keys() != first.tensors.keys():
            raise BrushworkError(f"{where} hold different tensors")
        for k, v in first.tensors.items():
            if m.tensors[k].shape != v.shape:
                raise BrushworkError(f"{where} differ in the shape of {k}")
            if not v.is_floating_point() and not torch.equal(m.tensors[k], v):
                raise BrushworkError(f"{where} differ in the integer tensor {k}")
        if not _same(m.card.get("init"), first.card.get("init")):
            raise BrushworkError(f"{where} were not continued from the same model (their cards' init differ)")
        for field in OBJECTIVE:
            if not _same(m.card.get(field), first.card.get(field)):
                raise BrushworkError(f"{where} trained against different objectives: {field} is "
                                     f"{m.card.get(field)!r} and {first.card.get(field)!r}")
        if m.card.get("seed") == first.card.get("seed") and m.card.get("steps") == first.card.get("steps"):
            raise BrushworkError(f"{where} are the same run (same seed and steps): nothing to average")


def average_models(out: str, paths: list[str]) -> str:
    if len(paths) < 2:
        raise BrushworkError("give at least two models to average")
    if Path(out).exists():
        raise BrushworkError(f"{out!r} exists; give a new file")
    models = [read_model(p) for p in paths]
    _check_compatible(models)
    first = models[0]
    state = {}
    for k, v in first.tensors.items():
        if v.is_floating_point():
            state[k] = torch.stack([m.tensors[k].float() for m in models]).mean(0).to(v.dtype)
        else:
            state[k] = v
    runs = [{"file": Path(m.path).name, **{f: m.card.get(f) for f in RUN_FIELDS}} for m in models]
    longest = max(models, key=lambda m: m.card.get("steps") or 0)
    losses = [m.card.get("final_losses") or {} for m in models]
    shared_keys = set.intersection(*(set(d) for d in losses))
    card = dict(first.card,
                steps=longest.card.get("steps"), wall_time_s=longest.card.get("wall_time_s"),
                planned_steps=longest.card.get("planned_steps"), seed=first.card.get("seed"),
                final_losses={k: round(sum(d[k] for d in losses) / len(losses), 6) for k in sorted(shared_keys)},
                weights=f"the mean of the weights of {len(models)} runs continued from the same model "
                        "(recipes/average_models.py); final_losses is the mean of theirs",
                averaged=runs)
    for field in SCHEDULE:
        if not all(_same(m.card.get(field), first.card.get(field)) for m in models):
            card.pop(field, None)
    save_model(out, first.kind, state, first.config, card)
    return f"{out}: the mean of {len(models)} models ({', '.join(r['file'] for r in runs)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="model file to write (.safetensors; must not exist)")
    parser.add_argument("models", nargs="+", help="two or more models continued from the same model")
    args = parser.parse_args(argv)
    try:
        print(average_models(args.out, args.models))
    except BrushworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

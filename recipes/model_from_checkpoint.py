"""Write a model file whose weights are a training run's checkpointed trained weights.

A run with --ema-decay writes the moving average of its weights as its model; its checkpoints also hold
the trained weights themselves (`model/net/...`). To measure what the average bought, this writes a copy
of the run's model with those weights instead, for `benchmarks/feedforward_quality.py --candidates` or
`benchmarks/multi.py --multi` (docs/training-history.md, the 256 px runs of 2026-12-01). With --step, an earlier
state of the run (one from before a loss jump): the card then gives that step's steps, wall time and losses (from the
run's log). Any kind of run. The run folder's card.json must be the model's card (name, seed, steps, wall time...):
another run's checkpoint with the same shapes is refused.

    python recipes/model_from_checkpoint.py MODEL.safetensors RUN_DIR OUT.safetensors [--step N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from brushwork.errors import BrushworkError
from brushwork.models.registry import read_model, save_model
from brushwork.training.loop import checkpoint_model_state, final_losses, list_checkpoints, read_log


def model_from_checkpoint(model_path: str, run_dir: str, out: str, step: int | None = None) -> str:
    if Path(out).exists():
        raise BrushworkError(f"{out!r} exists; give a new file")
    checkpoints = [c for c in list_checkpoints(run_dir) if step is None or c.step == step]
    if not checkpoints:
        raise BrushworkError(f"no complete checkpoint{'' if step is None else f' of step {step}'} in {run_dir!r}")
    checkpoint = checkpoints[0]  # newest first
    model = read_model(model_path)
    _check_same_run(model.card, Path(run_dir))
    trained = checkpoint_model_state(checkpoint)
    missing = [k for k in model.tensors if k not in trained]
    if missing:
        raise BrushworkError(
            f"{str(checkpoint.tensor_path)!r} has no trained weights for {len(missing)} of the model's tensors "
            f"(e.g. {missing[0]!r}): not a checkpoint of this model's run"
        )
    state = {k: trained[k].to(v.dtype) for k, v in model.tensors.items()}
    card = dict(model.card, ema_decay=0.0,
                weights=f"trained weights of checkpoint step {checkpoint.step}, not the run's moving average")
    if checkpoint.step != model.card.get("steps"):
        # An earlier state of the run (one from before a loss jump, say): the card says what these weights
        # had, not what the run went on to do. `brushwork models` sums `steps` over the init chain.
        card.update(steps=checkpoint.step, wall_time_s=round(float(checkpoint.meta["elapsed"]), 1),
                    final_losses={k: round(v, 6) for k, v in
                                  final_losses(read_log(run_dir, up_to_step=checkpoint.step)).items()},
                    stopped_by=f"an earlier checkpoint (step {checkpoint.step}) of a run that went on to step "
                               f"{model.card.get('steps')}")
    save_model(out, model.kind, state, model.config, card)
    return f"{out}: the trained weights of {checkpoint.tensor_path} (step {checkpoint.step})"


# What pins a card to one run: a run of the same style with the same options and shapes differs in these.
RUN_IDENTITY = ("name", "kind", "recipe", "seed", "steps", "date", "wall_time_s", "init")


def _check_same_run(model_card: dict, run_dir: Path) -> None:
    """The run folder's card (written beside the model when the run ended) must be the model's own: a
    checkpoint of another run with the same shapes would otherwise give a model under the wrong card."""
    try:
        run_card = json.loads((run_dir / "card.json").read_text())
    except (OSError, ValueError) as exc:
        raise BrushworkError(f"{str(run_dir)!r} has no readable card.json (a finished run writes one): {exc}") from None
    differing = [k for k in RUN_IDENTITY if json.dumps(run_card.get(k), sort_keys=True, default=str)
                 != json.dumps(model_card.get(k), sort_keys=True, default=str)]
    if differing:
        k = differing[0]
        raise BrushworkError(f"{str(run_dir)!r} is not this model's run: its card's {k} is {run_card.get(k)!r}, "
                             f"the model's {model_card.get(k)!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the run's model file (its config and card are kept)")
    parser.add_argument("run_dir", help="the run folder (its checkpoints/)")
    parser.add_argument("out", help="model file to write (.safetensors; must not exist)")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    args = parser.parse_args(argv)
    try:
        print(model_from_checkpoint(args.model, args.run_dir, args.out, args.step))
    except BrushworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

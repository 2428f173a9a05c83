"""`train(options)`: options in, a model file with a full card out (the CLI and Python entry point)."""

from __future__ import annotations

import datetime
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from brushwork import distributed
from brushwork.errors import BrushworkError
from brushwork.features import load_vgg19
from brushwork.imaging import load_image, resize_long_side
from brushwork.models.registry import find_model, save_model
from brushwork.options import with_overrides
from brushwork.progress import ProgressCallback
from brushwork.runtime import Runtime, resolve_runtime
from brushwork.training.data import PhotoDataset, describe_data, list_images
from brushwork.training.kinds import load_builder
from brushwork.training.loop import LoopOptions, LoopResult, PreviewCallback, Trainer, list_checkpoints
from brushwork.training.options import TrainOptions, network_settings, with_kind_defaults, with_network_of
from brushwork.version import __version__

DEFAULT_PREVIEW_PHOTO = "astronaut.jpg"


@dataclass
class TrainResult:
    output: Path | None  # the model written (None when interrupted)
    card: dict | None
    loop: LoopResult

    @property
    def interrupted(self) -> bool:
        return self.loop.interrupted


def hardware_description(rt: Runtime) -> str:
    """The CUDA device's name, or the CPU model and the threads torch uses."""
    if rt.device.type == "cuda":
        index = rt.device.index if rt.device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_name(index)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{model} ({threads} thread{'s' if threads != 1 else ''})"


def _preview_photo(options: TrainOptions) -> torch.Tensor:
    from importlib import resources

    source = options.preview_image or str(resources.files("brushwork") / "assets" / "examples" / DEFAULT_PREVIEW_PHOTO)
    image, _ = load_image(source)
    # Twice the training size, at most 512: shows how the strokes look on a larger photo.
    return resize_long_side(image, min(512, 2 * options.image_size)).clamp(0, 1)


def build_card(options: TrainOptions, objective, loop: LoopResult, data_desc: dict, rt: Runtime) -> dict:
    card = {
        "name": options.model_name(),
        "kind": objective.kind,
        "training_data": {**data_desc, "description": f"{data_desc['images']} photos from the folder "
                                                      f"'{data_desc['folder']}'"},
        "recipe": options.recipe,
        "steps": loop.step,
        "planned_steps": loop.total,
        "batch_size": options.batch_size,
        "image_size": options.image_size,
        "learning_rate": options.learning_rate,
        "warmup_steps": options.warmup_steps,
        "seed": options.seed,
        "precision": rt.precision,
        "final_losses": {k: round(v, 6) for k, v in loop.losses.items()},
        "hardware": hardware_description(rt),
        "wall_time_s": round(loop.wall_time, 1),
        "date": datetime.date.today().isoformat(),
        "brushwork_version": __version__,
    }
    if options.ema_decay:
        card["ema_decay"] = options.ema_decay  # the weights are an average (brushwork.training.loop)
    if options.clip_gradient:
        card["clip_gradient"] = options.clip_gradient
    if loop.time_limited:
        card["stopped_by"] = f"time limit ({options.time_limit:g} s of training in the last session)"
    card.update(objective.card())
    return card


def train(
    options: TrainOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    on_preview: PreviewCallback | None = None,
    vgg=None,
    **overrides,
) -> TrainResult:
    """Train a network of `options.kind` and write `options.output` with its model card.

    Fields of `TrainOptions` may also be given as keyword arguments. On Ctrl-C (or SIGTERM, or a
    KeyboardInterrupt from `progress`) a checkpoint is saved in the run folder, no model is written,
    and the result has `interrupted` set; `resume=True` continues from there.
    """
    options = with_kind_defaults(with_overrides(options or TrainOptions(), overrides, "train"))
    options.validate()
    threads_before = torch.get_num_threads()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    try:
        return _train(options, progress, on_preview, vgg)
    finally:
        torch.set_num_threads(threads_before)


def _network_difference(init_model, options: TrainOptions, run_config: dict) -> str:
    """Why an --init model does not fit, in the flags that set it: a shape error names only tensors."""
    differing = [f"{k} {v} where this run has {getattr(options, k)} (--{k.replace('_', '-')})"
                 for k, v in network_settings(init_model).items() if getattr(options, k) != v]
    styles = init_model.config.get("num_styles"), run_config.get("num_styles")
    if None not in styles and styles[0] != styles[1]:
        differing.append(f"num_styles {styles[0]} where this run has {styles[1]} (the number of --styles)")
    return f"; {init_model.name!r} has {', '.join(differing)}" if differing else ""


def _precision_to_run(options: TrainOptions) -> str:
    """The precision to train in: `auto` continuing a run means the run's own.

    A run resumes only in the precision it started in (it is part of the run's identity), while `auto`
    depends on the machine (bf16 where the CPU has native bf16): without this, a run started in fp32
    on one machine could not be resumed with the defaults on another.
    """
    if not (options.resume and options.precision == "auto"):
        return options.precision
    checkpoints = list_checkpoints(options.resolved_run_dir())
    saved = checkpoints[0].meta.get("identity", {}).get("precision") if checkpoints else None
    return saved or options.precision  # the resolved one; no checkpoint: the trainer says nothing to resume


def _train(options: TrainOptions, progress, on_preview, vgg) -> TrainResult:
    init_model = None
    if options.init:
        init_model = find_model(options.init)
    options = with_network_of(options, init_model)
    # Under torchrun: join the process group; with CUDA each rank takes the GPU of its local rank.
    rt = resolve_runtime(distributed.start(options.device), _precision_to_run(options))
    rank, _ = distributed.rank_and_size()
    files = list_images(options.data)
    steps = options.total_steps(len(files))
    build = load_builder(options.kind)
    dataset = PhotoDataset(files, options.image_size, seed=options.seed)
    preview = _preview_photo(options) if options.preview_every else None
    # A caller's network is not changed (adopt_module); one loaded here is prepared in place.
    vgg = rt.prepare_module(load_vgg19(options.vgg_weights)) if vgg is None else rt.adopt_module(vgg)
    # The network's initial weights come from torch's RNG: seed it before the objective builds it.
    torch.manual_seed(options.seed)
    objective = build(options, vgg, rt)
    init_card = None
    if init_model is not None:
        try:
            objective.load_model_state(init_model)
        except BrushworkError as exc:
            raise BrushworkError(f"{exc}{_network_difference(init_model, options, objective.model_config())}") from None
        init_card = {"name": init_model.name, "steps": init_model.card.get("steps"),
                     "style_weight": init_model.card.get("style_weight"), "recipe": init_model.card.get("recipe")}
    run_dir = options.resolved_run_dir()
    loop_options = LoopOptions(
        steps=steps,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        warmup_steps=options.warmup_steps,
        seed=options.seed,
        log_every=options.log_every,
        preview_every=options.preview_every,
        checkpoint_every=options.checkpoint_every,
        keep_checkpoints=options.keep_checkpoints,
        num_workers=options.num_workers,
        time_limit=options.time_limit,
        ema_decay=options.ema_decay,
        clip_gradient=options.clip_gradient,
    )
    trainer = Trainer(objective, dataset, loop_options, rt, run_dir, resume=options.resume, preview_image=preview,
                      progress=progress, on_preview=on_preview, identity={"init": init_card})
    loop = trainer.run()
    if rank != 0:  # every rank holds the same weights; rank 0 writes the model and the run's files
        return TrainResult(output=None, card=None, loop=loop)
    # Written after the run (which refuses mismatched options on resume), so it always describes it.
    (run_dir / "options.json").write_text(json.dumps(options.to_dict(), indent=2, default=str) + "\n")
    if loop.interrupted:
        return TrainResult(output=None, card=None, loop=loop)
    card = build_card(options, objective, loop, describe_data(options.data, len(files)), rt)
    if init_card is not None:
        card["init"] = dict(init_card)
        if isinstance(init_model.card.get("init"), dict):  # the whole chain: the model's training is their sum
            card["init"]["init"] = init_model.card["init"]
    dtype = torch.float16 if options.save_precision == "fp16" else None
    output = save_model(options.output, objective.kind, objective.model_state(), objective.model_config(), card,
                        dtype=dtype)
    (run_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return TrainResult(output=output, card=card, loop=loop)

"""Options of `brushwork train`, shared by every network kind (the CLI builds its flags from them).

No `from __future__ import annotations` here on purpose: the CLI flag builder reads real types
from the annotations (so `bool` fields become --flag/--no-flag switches).
"""

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from brushwork.errors import BrushworkError
from brushwork.options import option as _opt

# Used when neither --steps nor --epochs is given.
DEFAULT_STEPS = 20000
# --kind adapt stops where its measured quality peaks: at 80 steps (10-15 minutes on one core) the style loss
# was 0.45-0.49x and 0.30-0.32x the zero-shot prediction's with the subject kept (structure within 0.1), and by
# 115-175 steps the subject had faded (structure down 0.10-0.18): benchmarks/adapt.py, docs/performance.md.
DEFAULT_KIND_STEPS = {"adapt": 80}

SAVE_PRECISIONS = ("fp32", "fp16")


# Default loss weights, picked by a short experiment rather than copied from another project (our
# losses are normalized differently: content is the MSE of Caffe-scale relu2_2 activations, style the
# Gram/HW MSE divided by C^2). Experiment: `optimize` (L-BFGS, 256 px) of a photo with The Starry Night
# using exactly these training losses, for style weights 1, 10, 100 and 1000, then measured with the
# project's metric against `optimize`'s default result. At 1 the painting barely shows (metric content
# loss 0.44x of the reference); at 10 the strokes and palette are clearly there with the subject intact
# (0.77x); at 100-1000 the content loss reaches the reference's (0.9-1.07x) and the style term swamps the
# content term entirely (content barely changes between 100 and 1000). A feed-forward network
# stylizes less than per-image optimization at the same weights, so the default sits between 10 and
# 100. TV is off: the upsample-then-convolve network makes no checkerboard, and TV only blurs strokes.
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 30.0
DEFAULT_TV_WEIGHT = 0.0

ADAPT_PARAMS = ("norms", "embedding")  # what --kind adapt trains


@dataclass
class TrainOptions:
    style: str | None = _opt(None, "style image file or preset name (see `brushwork models`)")
    styles: str | None = _opt(
        None,
        "style images for --kind multi, arbitrary and adain: a folder of images (searched recursively), or "
        "comma-separated files and preset names",
    )
    train_styles: str | None = _opt(
        None,
        "--kind multi: train only these of the --styles (comma-separated names), round robin; the other styles' "
        "norm rows get no gradient. With --norm-only the others stay exactly as --init has them",
    )
    style_repeat: str | None = _opt(
        None,
        "--kind multi: visit these styles N times per round of the round robin instead of once (NAME:N, "
        "comma-separated; the repeats are spread evenly over the round), to train the styles that lag more often "
        "while the shared convolutions keep seeing every style",
    )
    norm_only: bool = _opt(
        False,
        "--kind multi: train only each style's own norm rows (scale and shift) and keep the shared convolutions as "
        "--init has them (Dumoulin et al. 2017 learn a new style this way; a step also costs less)",
    )
    adapt_params: str = _opt(
        "norms",
        "--kind adapt: what is trained: norms (the network's 694 norm parameters) or embedding (the 100-number style "
        "embedding the style-prediction network maps to them, so the style stays one that network could predict)",
        choices=ADAPT_PARAMS,
    )
    data: str | None = _opt(None, "folder of training photos (searched recursively; unreadable files are skipped)")
    output: str | None = _opt(None, "model file to write (.safetensors)")
    kind: str = _opt("adapt", "network kind to train: adapt (a new style in minutes on a CPU, the default), "
                              "feedforward (a whole network from scratch: a GPU and hours), multi, arbitrary, adain "
                              "or wct-decoders")
    image_size: int = _opt(256, "training crop size in pixels: photos are resized to this short side, then cropped "
                                "square")
    batch_size: int = _opt(4, "photos per step")
    steps: int | None = _opt(None, f"training steps (default: {DEFAULT_STEPS}, {DEFAULT_KIND_STEPS['adapt']} for "
                                   "--kind adapt, unless --epochs is given)")
    epochs: float | None = _opt(None, "train for this many passes over the photos instead of --steps")
    time_limit: float | None = _opt(
        None,
        "stop after this many seconds of training in this run (the step in flight finishes), then write the model "
        "with the steps done, as the card says; --resume continues towards --steps. For fixed-length sessions "
        "(a GPU lent for minutes, a CPU overnight) where the number of steps that fit is not known in advance",
    )
    learning_rate: float = _opt(1e-3, "Adam learning rate")
    warmup_steps: int = _opt(
        0,
        "steps over which the learning rate rises linearly from 0 (Adam's first steps move every weight by about "
        "the learning rate: harmless from random weights, destructive to a network started with --init)",
    )
    ema_decay: float = _opt(
        0.0,
        "save an exponential moving average of the weights instead of the last step's (e.g. 0.99; 0: off). The last "
        "step's weights at a constant learning rate lie anywhere in a band of noise; the average lies nearer its "
        "middle. After step n the decay is min(EMA_DECAY, (1 + n) / (10 + n)), so a short run averages over its "
        "later steps, not its start",
    )
    clip_gradient: float = _opt(
        0.0,
        "scale a step's gradient down to at most this many times the running average of the gradient norm (~100 "
        "steps; e.g. 5; 0: off), so that one batch's spike cannot throw a trained network off. May be changed on "
        "--resume, e.g. to resume a run from a checkpoint before its loss jumped",
    )
    content_weight: float = _opt(DEFAULT_CONTENT_WEIGHT, "weight of the content loss")
    style_weight: float = _opt(DEFAULT_STYLE_WEIGHT, "weight of the style loss")
    tv_weight: float = _opt(DEFAULT_TV_WEIGHT, "weight of the total-variation loss (smoothness)")
    style_ramp: int = _opt(
        0,
        "steps over which the style weight rises linearly from 0 to --style-weight (0: full weight from the start). "
        "A fresh network's style loss is so large that it drowns the content loss; learning to reproduce the photo "
        "first keeps the subject in short runs",
    )
    content_layers: dict = _opt({"relu2_2": 1.0}, "content layers with weights")
    style_layers: dict = _opt(
        {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0}, "style layers with weights"
    )
    style_size: int = _opt(512, "long side of the style image when its Gram matrices are computed (sets the stroke "
                           "scale); --kind adain: short side the style images are resized to before random crops")
    seed: int = _opt(0, "random seed (initial weights, photo order and crops)")
    init: str | None = _opt(
        None,
        "start from this model's weights instead of random ones (same kind; its network shape unless --width, "
        "--num-residual, --embedding-size or --decoder-width say otherwise), e.g. a network pre-trained with "
        "--style-weight 0 to reproduce photos",
    )
    device: str = _opt("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    precision: str = _opt("auto", "auto, fp32 or bf16 (bf16 autocast; auto picks bf16 on CUDA and on CPUs with "
                                  "native bf16, and a resumed run's own precision)")
    embedding_size: int | None = _opt(None, "--kind arbitrary: numbers in a style embedding (default: --init's, "
                                            "else 100)")
    photo_styles: float = _opt(
        0.25,
        "--kind arbitrary: fraction of style images that are other training photos (colour-jittered) rather than "
        "paintings: variety so the predictor generalizes to styles it never saw",
    )
    width: int | None = _opt(None, "channels of the network's first layer (default: --init's, else 32; 16: the "
                                   "light, faster network)")
    num_residual: int | None = _opt(None, "residual blocks in the network (default: --init's, else 5)")
    decoder_width: float | None = _opt(None, "--kind adain and wct-decoders: multiplier of the decoder's channel "
                                       "counts (default: --init's, else 1; 0.5: a quarter of the work, for the CPU)")
    log_every: int = _opt(50, "steps per record in RUN_DIR/log.jsonl")
    preview_every: int = _opt(500, "write a preview of a fixed photo to RUN_DIR/previews every N steps (0: never)")
    checkpoint_every: int = _opt(1000, "write a checkpoint to RUN_DIR/checkpoints every N steps (0: only at the end)")
    keep_checkpoints: int = _opt(2, "checkpoints kept in RUN_DIR/checkpoints, the newest (more keep a state from "
                                    "before a loss jump to continue or export from)")
    run_dir: str | None = _opt(None, "folder for the log, previews and checkpoints (default: OUTPUT without its "
                                     "suffix, plus .run)")
    resume: bool = _opt(False, "continue the run in --run-dir from its latest checkpoint")
    name: str | None = _opt(None, "model name in its card (default: the output file's name)")
    recipe: str = _opt("manual", "recipe name recorded in the model card")
    save_precision: str = _opt("fp32", "precision of the saved weights (fp16 halves the file)", choices=SAVE_PRECISIONS)
    num_workers: int = _opt(0, "background processes decoding photos (0: in the training process)")
    threads: int | None = _opt(
        None,
        "CPU threads for torch (default: torch's choice, one per core). On a CPU shared with other work, 1 can be "
        "several times faster than 2: each parallel op waits for every one of its threads to be scheduled",
    )
    preview_image: str | None = _opt(None, "photo for the previews (default: a bundled example)")
    vgg_weights: str | None = _opt(None, "a VGG-19 weights file (torchvision layout) instead of the bundled one")

    def total_steps(self, num_images: int) -> int:
        if self.epochs is not None:
            return max(1, math.ceil(self.epochs * num_images / self.batch_size))
        return self.steps if self.steps is not None else DEFAULT_KIND_STEPS.get(self.kind, DEFAULT_STEPS)

    def resolved_run_dir(self) -> Path:
        if self.run_dir:
            return Path(self.run_dir).expanduser()
        out = Path(self.output)
        return out.with_name(out.stem + ".run")

    def model_name(self) -> str:
        return self.name or Path(self.output).stem

    def network(self, setting: str):
        """A network-shape setting (NETWORK_DEFAULTS' keys): the one given, else the default. The trainer
        first fills unset ones from an --init model (with_network_of), so only a run from scratch, or an
        objective built directly, sees a default."""
        value = getattr(self, setting)
        return NETWORK_DEFAULTS[setting] if value is None else value

    def validate(self) -> None:
        """Checks every kind shares; each kind checks its own needs when it builds its objective."""

        def bad(msg):
            raise BrushworkError(msg)

        # The kind's name is checked by `brushwork.training.kinds`, which holds the table of kinds.
        if not self.data:
            bad("--data is needed: a folder of training photos")
        if not self.output:
            bad("--output (-o) is needed: the model file to write")
        if Path(self.output).suffix != ".safetensors":
            bad(f"model files end in .safetensors, got {self.output!r}")
        if Path(self.output).is_dir():
            bad(f"output {self.output!r} is a directory: give a file name such as MODEL.safetensors")
        if not 16 <= self.image_size <= 4096:
            bad(f"image size must be between 16 and 4096 pixels, got {self.image_size}")
        if self.batch_size < 1:
            bad(f"batch size must be at least 1, got {self.batch_size}")
        if self.steps is not None and self.epochs is not None:
            bad("give --steps or --epochs, not both")
        if self.steps is not None and self.steps < 1:
            bad(f"steps must be at least 1, got {self.steps}")
        if self.time_limit is not None and not (self.time_limit > 0 and math.isfinite(self.time_limit)):
            bad(f"time limit must be a positive number of seconds, got {self.time_limit}")
        if self.epochs is not None and not (self.epochs > 0 and math.isfinite(self.epochs)):
            bad(f"epochs must be a positive number, got {self.epochs}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            bad(f"learning rate must be a positive number, got {self.learning_rate}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                bad(f"{name.replace('_', ' ')} must be zero or more, got {value}")
        if not (0.0 <= self.ema_decay < 1.0):
            bad(f"EMA decay must be at least 0 and below 1, got {self.ema_decay}")
        if not (self.clip_gradient == 0 or 1 <= self.clip_gradient < math.inf):
            bad(f"gradient clipping must be 0 (off) or at least 1, got {self.clip_gradient}")
        if self.warmup_steps < 0:
            bad(f"warm-up steps must be zero or more, got {self.warmup_steps}")
        if self.style_ramp < 0:
            bad(f"style ramp must be zero or more steps, got {self.style_ramp}")
        if not 16 <= self.style_size <= 4096:
            bad(f"style size must be between 16 and 4096 pixels, got {self.style_size}")
        if self.width is not None and not 1 <= self.width <= 256:
            bad(f"width must be between 1 and 256, got {self.width}")
        if self.decoder_width is not None and not 0.05 <= self.decoder_width <= 4:
            bad(f"decoder width must be between 0.05 and 4, got {self.decoder_width}")
        if self.num_residual is not None and not 0 <= self.num_residual <= 32:
            bad(f"residual blocks must be between 0 and 32, got {self.num_residual}")
        for name in ("log_every", "preview_every", "checkpoint_every", "num_workers"):
            if getattr(self, name) < 0:
                bad(f"{name.replace('_', ' ')} must be zero or more, got {getattr(self, name)}")
        if self.keep_checkpoints < 1:
            bad(f"keep checkpoints must be at least 1, got {self.keep_checkpoints}")
        if self.threads is not None and not 1 <= self.threads <= 1024:
            bad(f"threads must be at least 1, got {self.threads}")
        if self.embedding_size is not None and not 1 <= self.embedding_size <= 4096:
            bad(f"embedding size must be between 1 and 4096, got {self.embedding_size}")
        if not 0.0 <= self.photo_styles <= 1.0:
            bad(f"photo styles must be a fraction between 0 and 1, got {self.photo_styles}")
        if (self.train_styles or self.norm_only or self.style_repeat) and self.kind != "multi":
            bad("--train-styles, --style-repeat and --norm-only are for --kind multi")
        if self.norm_only and not self.init:
            bad("--norm-only needs --init: a trained network whose convolutions it keeps")
        if self.save_precision not in SAVE_PRECISIONS:
            bad(f"unknown save precision {self.save_precision!r}: expected fp32 or fp16")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Defaults of their own for some kinds: they replace the common default of a field left at it (a value given
# explicitly that equals the common default is replaced too; give another value to differ).
# --kind adapt trains 694 norm parameters of a trained network, not a network from noise: Gatys et al.'s
# layers and optimize's weights (what `brushwork optimize` minimizes, and the texture axis the benchmarks
# score), and a learning rate ten times the common one with a short warm-up. Measured with
# benchmarks/adapt.py (docs/performance.md): after 15 minutes on one core, 0.45x and 0.30x the zero-shot
# prediction's style loss on two held-out paintings, palette closer, structure within 0.06.
KIND_DEFAULTS = {
    "adapt": {
        "content_layers": {"relu4_2": 1.0},
        "style_layers": {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0},
        "style_weight": 50.0,
        "learning_rate": 1e-2,
        "warmup_steps": 20,
    },
}


def with_kind_defaults(options: TrainOptions) -> TrainOptions:
    """OPTIONS with its kind's own defaults (`KIND_DEFAULTS`) for the fields left at the common default."""
    own = KIND_DEFAULTS.get(options.kind, {})
    common = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
              for f in dataclasses.fields(TrainOptions) if f.name in own}
    changed = {k: v for k, v in own.items() if getattr(options, k) == common[k]}
    return dataclasses.replace(options, **changed) if changed else options


# The network's shape when neither a flag nor an --init model gives it.
NETWORK_DEFAULTS = {"width": 32, "num_residual": 5, "embedding_size": 100, "decoder_width": 1.0}


def with_network_of(options: TrainOptions, init_model=None) -> TrainOptions:
    """OPTIONS with every network-shape field it leaves unset (None) filled: from INIT_MODEL's own network
    when there is one, so that `--init MODEL` alone continues MODEL whatever its width, else the defaults.
    A field the caller did set is kept, and the trainer names it when the model does not fit."""
    adopted = network_settings(init_model) if init_model is not None else {}
    filled = {k: adopted.get(k, options.network(k)) for k in NETWORK_DEFAULTS if getattr(options, k) is None}
    return dataclasses.replace(options, **filled) if filled else options


def network_settings(model) -> dict:
    """The TrainOptions fields that shape MODEL's network, with MODEL's values: what a run started with
    `--init MODEL` adopts where they are not given (with_network_of), and what the trainer names when a
    given one differs."""
    c = model.config
    if model.kind in ("feedforward", "multi", "arbitrary"):
        settings = {"width": c["width"], "num_residual": c["num_residual"]}
        if model.kind == "arbitrary":
            settings["embedding_size"] = c["predictor"]["embedding_size"]
        return settings
    if model.kind in ("adain", "wct"):
        return {"decoder_width": c["width"]}
    return {}

"""The one training loop, for every kind of network brushwork trains.

A network kind supplies an `Objective` (what to train and the loss); this module supplies
everything else: Adam, mixed precision (through `Runtime`), the data stream, a progress callback
with losses and images per second, a JSON-lines log, previews of a fixed photo, atomic checkpoints,
exact resume and a clean stop on Ctrl-C or SIGTERM, and optionally an average of the weights.

The average (`LoopOptions.ema_decay`, an exponential moving average of the weights): after every
step, each weight's average moves towards it with the decay min(D, (1 + n) / (10 + n)), n the steps
done in the run. A constant learning rate leaves the last step's weights anywhere in a band around
where training is heading; the average sits nearer its middle. The decay's warm-up lets the average
forget the starting weights (random, or the model given with --init) early, so that a short run
averages over its later steps. Previews and the saved model use the average; the loss, and so the log,
comes from the trained weights.

Checkpoints hold no pickle. Each is a pair of files in `RUN_DIR/checkpoints/`:
`step-NNNNNNNN.safetensors` with every tensor (model weights `model/<module>/<key>`, optimizer state
`optim/<param index>/<name>`, the average `ema/<module>/<key>` when kept, torch RNG states `rng/...`)
and `step-NNNNNNNN.json` with everything else (step, data position, optimizer hyperparameters and
scalars, Python and NumPy RNG states, the options that must match to resume). The JSON is written
last and names the tensor file's size and SHA-256, so a checkpoint exists only once both halves are
complete; a run killed mid-write resumes from the one before, and one whose tensors were damaged since
(they no longer match the digest) is skipped with a warning for the one before.

Resume is exact (bit-for-bit on the CPU): the weights and optimizer moments are restored exactly,
the data stream restarts at the same batch (its order is a function of the batch number alone, see
`brushwork.training.data`), and the torch, Python and NumPy RNGs continue from the same state.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from brushwork.distributed import any_rank, data_parallel, mean_over_ranks, rank_and_size
from brushwork.errors import BrushworkError
from brushwork.files import os_reason, write_file_atomically
from brushwork.imaging import save_image
from brushwork.models.registry import load_state_strict
from brushwork.progress import Progress, ProgressCallback
from brushwork.runtime import Runtime
from brushwork.training.data import BatchStream, PhotoDataset

CHECKPOINT_FORMAT = "brushwork-checkpoint"
CHECKPOINT_VERSION = 1


class Objective:
    """What one kind of network trains. Subclasses set `kind` and `modules` and implement `loss`.

    - `modules`: the trained networks by name (their state is checkpointed and, through
      `model_state`, saved as the model); they must already be on the runtime's device.
    - `parameters()`: what Adam updates (default: every parameter of `modules` that wants a gradient).
    - `loss(batch, step)`: the batch is N x 3 x S x S photos in [0, 1] on the device; return the
      scalar to minimize and a dict of float losses to log. Runs inside the runtime's autocast.
    - `preview(image)`: the network's output for one 1 x 3 x H x W photo, in [0, 1] (no grad).
    - `model_state()`, `model_config()`, `card()`: the final model file's tensors, config and the
      kind-specific part of its card.
    - `identity()`: the settings a checkpoint must agree with to be resumed (JSON-able).
    """

    kind: str = ""
    modules: dict[str, nn.Module]

    def parameters(self) -> list[nn.Parameter]:
        return [p for name in sorted(self.modules) for p in self.modules[name].parameters() if p.requires_grad]

    def loss(self, batch: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def preview(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def model_state(self) -> dict[str, torch.Tensor]:
        return model_file_state({name: m.state_dict() for name, m in self.modules.items()})

    def load_model_state(self, model) -> None:
        """Start from a saved model's weights (`--init`): a `ModelFile` of this kind and shape."""

        if model.kind != self.kind:
            raise BrushworkError(f"cannot initialize a {self.kind} network from {model.name!r}, a {model.kind} model")
        if len(self.modules) != 1:
            raise NotImplementedError(f"{type(self).__name__} must say how to load a saved model")
        load_state_strict(next(iter(self.modules.values())), model)

    def model_config(self) -> dict:
        return {}

    def card(self) -> dict:
        return {}

    def identity(self) -> dict:
        return {"kind": self.kind}

    def train(self, mode: bool = True) -> None:
        for m in self.modules.values():
            m.train(mode)


class ObjectiveModule(nn.Module):
    """An objective's trained modules as one module whose forward pass is the objective's loss: what
    `DistributedDataParallel` wraps when several processes train (`brushwork.distributed.data_parallel`).

    Only the parameters the objective trains take part: any other parameter of its modules that wants a
    gradient (one Adam never updates, such as the arbitrary-style transformer's own norm rows, which the
    predictor replaces) is frozen, since the gradient reduction would wait for it in vain. The modules
    keep their own names and state: checkpoints and models read them, not this wrapper."""

    def __init__(self, objective: Objective, params: list[nn.Parameter]):
        super().__init__()
        self.objective = objective
        self.trained = nn.ModuleDict(objective.modules)
        trained = {id(p) for p in params}
        owned = {id(p) for p in self.trained.parameters()}
        if not trained <= owned:
            raise BrushworkError(f"the {objective.kind} objective trains parameters outside its modules: "
                                 "several processes cannot average their gradients")
        for p in self.trained.parameters():
            if p.requires_grad and id(p) not in trained:
                p.requires_grad_(False)

    def forward(self, batch: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        return self.objective.loss(batch, step)


@dataclass
class LoopOptions:
    steps: int
    batch_size: int = 4
    learning_rate: float = 1e-3
    warmup_steps: int = 0  # the learning rate rises linearly from 0 over these steps
    seed: int = 0
    log_every: int = 50  # steps per log record (0: only the last step)
    preview_every: int = 500  # 0: no previews
    checkpoint_every: int = 1000  # 0: checkpoints only on interruption and at the end
    keep_checkpoints: int = 2
    num_workers: int = 0
    preview_size: int = 256  # long side of the preview photo
    time_limit: float | None = None  # seconds of training in this session; then stop as if finished
    ema_decay: float = 0.0  # 0: the model is the last step's weights; else their moving average (see above)
    # 0: off. Else a step's gradient is scaled down to at most this many times the running average of the
    # gradient norm (GRAD_NORM_AVERAGE_DECAY, over ~100 steps, of the norms after clipping), so that one
    # batch's spike cannot throw the network off. A change of it on resume is allowed: resuming a run from
    # a checkpoint before a loss jump with clipping on is what it is for.
    clip_gradient: float = 0.0

    def validate(self) -> None:
        if self.steps < 1:
            raise BrushworkError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise BrushworkError(f"batch size must be at least 1, got {self.batch_size}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise BrushworkError(f"learning rate must be a positive number, got {self.learning_rate}")
        for name in ("warmup_steps", "log_every", "preview_every", "checkpoint_every", "num_workers"):
            if getattr(self, name) < 0:
                raise BrushworkError(f"{name.replace('_', ' ')} must be zero or more, got {getattr(self, name)}")
        if self.keep_checkpoints < 1:
            raise BrushworkError("keep at least one checkpoint")
        if self.time_limit is not None and not self.time_limit > 0:
            raise BrushworkError(f"time limit must be a positive number of seconds, got {self.time_limit}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise BrushworkError(f"EMA decay must be at least 0 and below 1, got {self.ema_decay}")
        if not (self.clip_gradient == 0 or 1 <= self.clip_gradient < math.inf):
            raise BrushworkError(f"gradient clipping must be 0 (off) or at least 1, got {self.clip_gradient}")


@dataclass
class LoopResult:
    step: int  # steps done (over all sessions of the run)
    total: int
    losses: dict[str, float]  # mean over the last log records (the last ~10% of the run)
    wall_time: float  # seconds of training over all sessions of the run
    images: int  # photos seen
    interrupted: bool
    run_dir: Path
    checkpoint: Path | None  # the checkpoint written last, if any
    records: list[dict] = field(default_factory=list)
    time_limited: bool = False  # stopped by LoopOptions.time_limit before `total` steps (not interrupted)


PreviewCallback = Callable[[int, torch.Tensor], None]


# ------------------------------------------------------------------------------------------------
# Checkpoint files


def _atomic_save_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Write the tensors; returns the file's SHA-256 (hex), which the checkpoint's JSON records."""
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    write_file_atomically(path, data, "write checkpoint")
    return hashlib.sha256(data).hexdigest()


class DamagedCheckpointError(BrushworkError):
    """A checkpoint's tensor file no longer matches the digest recorded when it was written."""


def read_checkpoint_tensors(checkpoint: "Checkpoint") -> dict[str, torch.Tensor]:
    """A checkpoint's tensors, verified against its recorded SHA-256 (checkpoints written before the digest
    was recorded: by their size only, as `list_checkpoints` does)."""
    from safetensors.torch import load

    path = checkpoint.tensor_path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BrushworkError(f"cannot read checkpoint {str(path)!r}: {exc}") from None
    expected = checkpoint.meta.get("tensor_sha256")
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise DamagedCheckpointError(f"checkpoint {str(path)!r} is damaged: its tensors no longer match the "
                                     "digest recorded when it was written")
    try:
        return load(data)
    except Exception as exc:  # noqa: BLE001
        raise BrushworkError(f"cannot read checkpoint {str(path)!r}: {exc}") from None


def _optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for index, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim/{index}/{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_files(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    groups = meta["param_groups"]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _rng_to_files() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng/torch": torch.get_rng_state()}
    cuda = 0
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
            cuda += 1
    version, internal, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": [np_name, [int(k) for k in np_keys], int(np_pos), int(np_has_gauss), float(np_gauss)],
        "cuda_devices": cuda,
    }
    return tensors, meta


def _rng_from_files(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng/torch"].to(torch.uint8))
    n = int(meta.get("cuda_devices", 0))
    if n and torch.cuda.is_available():
        states = [tensors[f"rng/cuda/{i}"].to(torch.uint8) for i in range(n)]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def _copy_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@dataclass
class Checkpoint:
    step: int
    json_path: Path
    tensor_path: Path
    meta: dict


def list_checkpoints(run_dir: str | os.PathLike) -> list[Checkpoint]:
    """Complete checkpoints in a run folder, newest first."""
    folder = Path(run_dir) / "checkpoints"
    out = []
    if not folder.is_dir():
        return out
    for jp in folder.glob("step-*.json"):
        try:
            meta = json.loads(jp.read_text())
            tp = folder / meta["tensor_file"]
            if meta.get("format") != CHECKPOINT_FORMAT or tp.stat().st_size != meta["tensor_bytes"]:
                continue
            out.append(Checkpoint(int(meta["step"]), jp, tp, meta))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a half-written or foreign file: not a checkpoint
    return sorted(out, key=lambda c: c.step, reverse=True)


def model_file_state(module_states: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A model file's tensors from its modules' states: one module's under their own names, several
    modules' as `module.name` (an arbitrary-style model's `net.` and `predictor.`)."""
    if len(module_states) == 1:
        return dict(next(iter(module_states.values())))
    return {f"{name}.{k}": v for name, state in module_states.items() for k, v in state.items()}


def checkpoint_model_state(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    """A checkpoint's trained weights (not the moving average), named as in the run's model file; read
    alone: the optimizer's moments beside them are twice their size."""
    from safetensors import safe_open

    modules: dict[str, dict[str, torch.Tensor]] = {}
    try:
        with safe_open(str(checkpoint.tensor_path), framework="pt") as tensors:
            for key in tensors.keys():
                if key.startswith("model/"):
                    module, name = key[len("model/"):].split("/", 1)
                    modules.setdefault(module, {})[name] = tensors.get_tensor(key)
    except Exception as exc:  # noqa: BLE001
        raise BrushworkError(f"cannot read checkpoint {str(checkpoint.tensor_path)!r}: {exc}") from None
    return model_file_state(modules)


# ------------------------------------------------------------------------------------------------
# The loop


def read_log(run_dir: str | os.PathLike, up_to_step: float = math.inf) -> list[dict]:
    """The records of a run folder's log.jsonl up to a step (none if there is no log; torn lines skipped)."""
    path = Path(run_dir) / "log.jsonl"
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("step", math.inf) <= up_to_step:
                records.append(rec)
    return records


def final_losses(records: list[dict]) -> dict[str, float]:
    """A run's losses for its card: the mean of each loss over the log records (log.jsonl's lines, in order)
    of the last ~10% of steps, at least the last record."""
    if not records:
        return {}
    last_step = records[-1]["step"]
    cutoff = last_step - max(1, round(0.1 * last_step))
    recent = [r for r in records if r["step"] > cutoff] or records[-1:]
    keys = recent[-1]["losses"].keys()
    return {k: float(np.mean([r["losses"][k] for r in recent if k in r["losses"]])) for k in keys}


# The running average of the gradient norm that --clip-gradient compares a step's norm against: ~100 steps.
GRAD_NORM_AVERAGE_DECAY = 0.99


def _new_log_interval(start: float) -> dict:
    """What the log sums between two of its lines (losses, images, gradient norms, clipped steps)."""
    return {"sums": {}, "steps": 0, "images": 0, "grad_norm_sum": 0.0, "grad_norm_max": None, "clipped": 0,
            "start": start}


class Trainer:
    """Train `objective` on photos from `dataset`; `run()` does the work and returns a `LoopResult`.

    After a run that was not interrupted, the modules hold the model's weights: the average, when kept."""

    def __init__(
        self,
        objective: Objective,
        dataset: PhotoDataset,
        options: LoopOptions,
        runtime: Runtime,
        run_dir: str | os.PathLike,
        *,
        resume: bool = False,
        preview_image: torch.Tensor | None = None,
        progress: ProgressCallback | None = None,
        on_preview: PreviewCallback | None = None,
        identity: dict | None = None,
    ):
        options.validate()
        self.objective = objective
        self.dataset = dataset
        self.options = options
        self.rt = runtime
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.preview_image = preview_image
        self.progress = progress
        self.on_preview = on_preview
        self.identity = {**objective.identity(), **(identity or {}), "batch_size": options.batch_size,
                         "learning_rate": options.learning_rate, "warmup_steps": options.warmup_steps,
                         "seed": options.seed,
                         "precision": runtime.precision, "images": len(dataset)}
        if options.ema_decay:  # only when kept: checkpoints of runs without one stay resumable
            self.identity["ema_decay"] = options.ema_decay
        self.params = list(objective.parameters())
        if not self.params:
            raise BrushworkError(f"the {objective.kind} objective has nothing to train")
        self.optimizer = torch.optim.Adam(self.params, lr=options.learning_rate)
        # Under torchrun every rank trains; rank 0 alone writes the run folder (log, previews, checkpoints).
        self.rank, self.ranks = rank_and_size()
        self.writes_files = self.rank == 0
        # The loss of a step. On several processes through DistributedDataParallel, which averages the
        # gradients over the ranks during the backward pass; on one, the objective's own.
        self.forward: Callable[[torch.Tensor, int], tuple[torch.Tensor, dict[str, float]]] = objective.loss
        if self.ranks > 1:
            self.forward = data_parallel(ObjectiveModule(objective, self.params), runtime.device)
        # The moving average of every module's state (None: not kept), starting at the initial weights.
        self.ema: dict[str, dict[str, torch.Tensor]] | None = None
        if options.ema_decay:
            self.ema = {name: _copy_state(m) for name, m in objective.modules.items()}
        self.step = 0
        self.data_position = 0
        self.elapsed = 0.0
        self.records: list[dict] = []
        # The running average of the gradient norm (--clip-gradient), None until a clipped run's first step.
        self.grad_norm_average: torch.Tensor | None = None
        self.last_checkpoint: Path | None = None
        self._stop_signal: str | None = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the state after `self.step` steps (atomic; see module docstring)."""
        if not self.writes_files:
            return self.last_checkpoint
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        for name, module in self.objective.modules.items():
            for k, v in module.state_dict().items():
                tensors[f"model/{name}/{k}"] = v
        for name, state in (self.ema or {}).items():
            for k, v in state.items():
                tensors[f"ema/{name}/{k}"] = v
        if self.grad_norm_average is not None:
            tensors["train/grad_norm_average"] = self.grad_norm_average.reshape(1)
        opt_tensors, opt_meta = _optimizer_to_files(self.optimizer)
        rng_tensors, rng_meta = _rng_to_files()
        tensors.update(opt_tensors)
        tensors.update(rng_tensors)
        stem = f"step-{self.step:08d}"
        tensor_path = self.checkpoint_dir / f"{stem}.safetensors"
        digest = _atomic_save_safetensors(tensor_path, tensors)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "kind": self.objective.kind,
            "step": self.step,
            "total_steps": self.options.steps,
            "data_position": self.data_position,
            "elapsed": self.elapsed,
            "identity": self.identity,
            "optimizer": opt_meta,
            "rng": rng_meta,
            "tensor_file": tensor_path.name,
            "tensor_bytes": tensor_path.stat().st_size,
            "tensor_sha256": digest,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        json_path = self.checkpoint_dir / f"{stem}.json"
        write_file_atomically(json_path, json.dumps(meta).encode(), "write checkpoint")
        self.last_checkpoint = json_path
        for old in list_checkpoints(self.run_dir)[self.options.keep_checkpoints:]:
            if old.step != self.step:
                old.json_path.unlink(missing_ok=True)  # the JSON first: never a JSON without its tensors
                old.tensor_path.unlink(missing_ok=True)
        return json_path

    def load_checkpoint(self, checkpoint: Checkpoint) -> None:
        meta = checkpoint.meta
        if meta.get("kind") != self.objective.kind:
            raise BrushworkError(
                f"the checkpoint in {str(self.run_dir)!r} is from a {meta.get('kind')} run, not {self.objective.kind}"
            )
        saved = meta.get("identity", {})
        for key in sorted(set(saved) | set(self.identity)):
            if saved.get(key) != self.identity.get(key):
                raise BrushworkError(
                    f"cannot resume the run in {str(self.run_dir)!r}: it was started with {key} = "
                    f"{saved.get(key)!r}, now {self.identity.get(key)!r} (use the same options or another --run-dir)"
                )
        tensors = read_checkpoint_tensors(checkpoint)  # before any state changes: a damaged one changes none
        for name, module in self.objective.modules.items():
            prefix = f"model/{name}/"
            state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            module.load_state_dict(state, strict=True)
        if self.ema is not None:
            for name, average in self.ema.items():
                for k in average:
                    average[k] = tensors[f"ema/{name}/{k}"].to(average[k].device)
        # A checkpoint of a run without clipping has none: a run resumed from it with clipping starts one.
        average = tensors.get("train/grad_norm_average")
        self.grad_norm_average = None if average is None else average.reshape(()).to(self.rt.device)
        _optimizer_from_files(self.optimizer, tensors, meta["optimizer"])
        _rng_from_files(tensors, meta["rng"])
        self.step = int(meta["step"])
        self.data_position = int(meta["data_position"])
        self.elapsed = float(meta["elapsed"])
        self.last_checkpoint = checkpoint.json_path

    # -- log -------------------------------------------------------------------------------------
    def _restore_log(self) -> None:
        """Keep the log records up to the resumed step (later ones belong to a lost future)."""
        self.records = read_log(self.run_dir, up_to_step=self.step)
        self._rewrite_log()

    def _rewrite_log(self) -> None:
        if not self.writes_files:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r) + "\n" for r in self.records)
        write_file_atomically(self.log_path, text.encode(), "write training log")

    def _append_log(self, record: dict) -> None:
        self.records.append(record)
        if not self.writes_files:
            return
        try:  # appended, not replaced: a line torn by a full disk or a kill is skipped by read_log
            with open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise BrushworkError(f"cannot write training log {str(self.log_path)!r}: {os_reason(exc)}") from None

    def final_losses(self) -> dict[str, float]:
        return final_losses(self.records)

    # -- the average of the weights ------------------------------------------------------------
    def ema_decay_at(self, steps_done: int) -> float:
        """The decay of the update after `steps_done` steps of the run (see the module docstring)."""
        return min(self.options.ema_decay, (1 + steps_done) / (10 + steps_done))

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.ema_decay_at(self.step)
        for name, module in self.objective.modules.items():
            average = self.ema[name]
            for k, v in module.state_dict().items():
                if v.is_floating_point():
                    average[k].lerp_(v, 1.0 - decay)
                else:  # counters and the like: an average means nothing
                    average[k].copy_(v)

    def load_ema(self) -> None:
        """Put the averaged weights into the modules (the end of a run: they are the model)."""
        for name, module in self.objective.modules.items():
            module.load_state_dict(self.ema[name], strict=True)

    @contextlib.contextmanager
    def _weights_of_the_model(self):
        """The weights the model will have (the average, when kept) in the modules for the duration."""
        if self.ema is None:
            yield
            return
        trained = {name: _copy_state(m) for name, m in self.objective.modules.items()}
        self.load_ema()
        try:
            yield
        finally:
            for name, module in self.objective.modules.items():
                module.load_state_dict(trained[name], strict=True)

    # -- previews --------------------------------------------------------------------------------
    @torch.no_grad()
    def _preview(self) -> torch.Tensor | None:
        if self.preview_image is None:
            return None
        self.objective.train(False)
        try:
            with self._weights_of_the_model(), self.rt.autocast():
                image = self.objective.preview(self.rt.prepare_input(self.preview_image))
        finally:
            self.objective.train(True)
        return image.detach().float().clamp(0, 1).cpu()

    def _write_preview(self) -> None:
        if not self.writes_files:
            return
        image = self._preview()
        if image is None:
            return

        save_image(image, self.run_dir / "previews" / f"step-{self.step:08d}.png")
        if self.on_preview is not None:
            self.on_preview(self.step, image)

    # -- signals ---------------------------------------------------------------------------------
    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def handler(signum, frame):
            if self._stop_signal is not None:  # a second signal: stop now, without a checkpoint
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum).name

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
        return previous

    @staticmethod
    def _restore_signal_handlers(previous) -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)

    def learning_rate_at(self, step: int) -> float:
        """The learning rate of step `step` (0-based): linear warm-up, then constant."""
        warmup = self.options.warmup_steps
        factor = min(1.0, (step + 1) / (warmup + 1)) if warmup else 1.0
        return self.options.learning_rate * factor

    def _gradient_norm(self) -> torch.Tensor:
        """The L2 norm of every trained parameter's gradient together."""
        return torch.nn.utils.get_total_norm([p.grad.detach() for p in self.params if p.grad is not None])

    def _clip_gradient(self, grad_norm: torch.Tensor) -> torch.Tensor:
        """Scale the gradient down to at most clip_gradient x the running average of the norm; update the
        average with the norm after clipping. Returns 1 if the step was clipped, else 0 (on the device:
        nothing here waits for it)."""
        # Seeded with the first step's norm, which then weighs DECAY^n of the average: low while the norms of
        # a fresh network grow. Why not a bias-corrected mean (each norm so far weighing about equally): tried,
        # it let the training test's spike at step 4 through ~3.6x larger (10x the mean of three growing norms,
        # not ~10x the first), and that run ended 0.63 of the unclipped run's distance from the spike-free one
        # instead of 0.38. The cost of the seed: a run whose first norm is low clips a few ordinary steps early
        # on (2 of 479 in one 256 px run, steps 51-70).
        if self.grad_norm_average is None:
            self.grad_norm_average = grad_norm.detach().clone()  # the first step has nothing to compare with
        limit = self.options.clip_gradient * self.grad_norm_average
        torch.nn.utils.clip_grads_with_norm_(self.params, limit, grad_norm)
        self.grad_norm_average.mul_(GRAD_NORM_AVERAGE_DECAY).add_(torch.minimum(grad_norm, limit),
                                                                  alpha=1 - GRAD_NORM_AVERAGE_DECAY)
        return (grad_norm > limit).to(torch.int64)

    def _set_learning_rate(self) -> None:
        lr = self.learning_rate_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> LoopResult:
        opts = self.options
        if self.resume:
            found = list_checkpoints(self.run_dir)
            if not found:
                raise BrushworkError(f"nothing to resume: no checkpoint in {str(self.checkpoint_dir)!r}")
            while True:
                try:
                    self.load_checkpoint(found[0])
                    break
                except DamagedCheckpointError as exc:
                    if len(found) == 1:
                        raise
                    warnings.warn(f"{exc}; resuming from the one of step {found[1].step}", stacklevel=2)
                    found = found[1:]
        else:
            existing = list_checkpoints(self.run_dir)
            if existing:
                raise BrushworkError(
                    f"{str(self.run_dir)!r} already holds a run (checkpoint at step {existing[0].step}): "
                    "pass --resume to continue it, or choose another --run-dir"
                )
            torch.manual_seed(opts.seed)
            random.seed(opts.seed)
            np.random.seed(opts.seed % 2**32)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A run killed while writing a checkpoint, the log or a preview leaves the temporary file it was
        # writing (atomic_write names them .NAME.XXXX.tmp.SUFFIX); the run folder is this run's own.
        for folder in (self.run_dir, self.checkpoint_dir, self.run_dir / "previews"):
            for stale in folder.glob(".*.tmp*") if self.writes_files else ():
                stale.unlink(missing_ok=True)
        self._restore_log()
        if self.rt.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        stream = BatchStream(self.dataset, opts.batch_size, start=self.data_position, num_workers=opts.num_workers,
                             shard=(self.rank, self.ranks))
        self.objective.train(True)
        interval = _new_log_interval(time.perf_counter())
        session_start = time.perf_counter()
        elapsed_before = self.elapsed
        images_total = self.data_position * opts.batch_size
        interrupted = False
        time_limited = False
        rate = 0.0
        previous_handlers = self._install_signal_handlers()
        if self.step == 0 and opts.preview_every:
            self._write_preview()
        try:
            while self.step < opts.steps:
                batch = self.rt.prepare_input(next(stream))
                with self.rt.autocast():
                    loss, losses = self.forward(batch, self.step)
                diverged = not torch.isfinite(loss)
                if self.ranks > 1:  # all ranks stop together: one stopping alone would leave the rest waiting
                    diverged = any_rank(diverged)[0]
                if diverged:
                    where = f"{float(loss)}" if not torch.isfinite(loss) else "infinite or NaN on another process"
                    raise BrushworkError(
                        f"the loss became {where} at step {self.step + 1}: lower --learning-rate or the loss weights"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.ranks > 1:  # the gradients are averaged by now; the logged losses too
                    losses = mean_over_ranks(losses)
                # Logged (mean and largest of each log interval): says whether a jump in the loss came with a
                # gradient spike. Summed as tensors; only a log line reads them back from the device.
                grad_norm = self._gradient_norm()
                interval["grad_norm_sum"] = interval["grad_norm_sum"] + grad_norm
                interval["grad_norm_max"] = (grad_norm if interval["grad_norm_max"] is None
                                             else torch.maximum(interval["grad_norm_max"], grad_norm))
                if opts.clip_gradient:
                    interval["clipped"] = interval["clipped"] + self._clip_gradient(grad_norm)
                self._set_learning_rate()
                self.optimizer.step()
                self.step += 1
                if self.ema is not None:
                    self._update_ema()
                self.data_position = stream.position
                images_total += batch.shape[0] * self.ranks
                self.elapsed = elapsed_before + (time.perf_counter() - session_start)

                interval["steps"] += 1
                interval["images"] += batch.shape[0] * self.ranks
                for k, v in losses.items():
                    interval["sums"][k] = interval["sums"].get(k, 0.0) + float(v)
                now = time.perf_counter()
                seconds = now - interval["start"]
                rate = interval["images"] / seconds if seconds > 0 else 0.0
                # A time limit ends the session like the last step: logged, previewed, checkpointed.
                if (opts.time_limit is not None and self.step < opts.steps
                        and time.perf_counter() - session_start >= opts.time_limit):
                    time_limited = True
                if self.ranks > 1:  # every rank ends at the same step
                    time_limited, stopping = any_rank(time_limited, self._stop_signal is not None)
                    self._stop_signal = self._stop_signal or ("another rank" if stopping else None)
                last = self.step == opts.steps or time_limited
                if last or (opts.log_every and self.step % opts.log_every == 0):
                    self._append_log({
                        "step": self.step,
                        "epoch": round(stream.epoch(), 4),
                        "losses": {k: v / interval["steps"] for k, v in interval["sums"].items()},
                        "grad_norm": {"mean": float(interval["grad_norm_sum"]) / interval["steps"],
                                      "max": float(interval["grad_norm_max"]),
                                      **({"clipped": int(interval["clipped"])} if opts.clip_gradient else {})},
                        "images_per_s": round(rate, 3),
                        "elapsed": round(self.elapsed, 3),
                    })
                    interval = _new_log_interval(now)
                if opts.preview_every and (self.step % opts.preview_every == 0 or last):
                    self._write_preview()
                if (opts.checkpoint_every and self.step % opts.checkpoint_every == 0) or last:
                    self.save_checkpoint()
                if self.progress is not None:
                    try:
                        self.progress(Progress(
                            step=self.step,
                            total=opts.steps,
                            losses={**losses, "img/s": rate},
                            size=tuple(batch.shape[2:]),
                            elapsed=self.elapsed,
                            image=self._preview if self.preview_image is not None else None,
                        ))
                    except KeyboardInterrupt:  # the callback's way to cancel: the step is complete
                        self._stop_signal = self._stop_signal or "callback"
                if time_limited:
                    break
                if self._stop_signal is not None and not last:
                    interrupted = True
                    self.save_checkpoint()
                    break
        finally:
            self._restore_signal_handlers(previous_handlers)
        if self.ema is not None and not interrupted:
            self.load_ema()  # after the last checkpoint, which keeps both
        return LoopResult(
            step=self.step,
            total=opts.steps,
            losses=self.final_losses(),
            wall_time=self.elapsed,
            images=images_total,
            interrupted=interrupted,
            run_dir=self.run_dir,
            checkpoint=self.last_checkpoint,
            records=list(self.records),
            time_limited=time_limited,
        )


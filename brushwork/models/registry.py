"""Model files and the registry of shipped models.

A model is one safetensors file: the tensors, plus in its metadata header the network `kind`, its
`config` (JSON) and a model `card` (JSON: name, style credit, training data, recipe, steps, size,
final losses, hardware, wall time). Shipped models live in `brushwork/models/weights/NAME.safetensors`
and are found by name. Nothing is ever unpickled.

Built-in models are found by name too: networks whose weights come from an installed package rather
than from a file of ours (`brushwork.models` registers Magenta's, read by `brushwork.nets.magenta`).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TypeVar

import torch

from brushwork.errors import BrushworkError
from brushwork.files import write_file_atomically

FORMAT_VERSION = "1"

M = TypeVar("M", bound=torch.nn.Module)


@dataclass
class ModelFile:
    kind: str  # "feedforward", "multi", "arbitrary", "adain", "wct" ...
    config: dict
    card: dict
    tensors: dict[str, torch.Tensor] = field(repr=False)
    path: Path | None = None

    @property
    def name(self) -> str:
        name = self.card.get("name")
        return name if isinstance(name, str) and name else (self.path.stem if self.path else "model")

    @property
    def styles(self) -> list[str]:
        """The style names a multi-style model holds (select with `--style NAME`); [] for other kinds."""
        styles = self.config.get("styles")
        return [str(s) for s in styles] if isinstance(styles, list) else []

    @property
    def trained_steps(self) -> int | None:
        """Steps over every stage of training: this run's plus those of the `init` chain the card records
        (a model continued from another one was trained by both). None when a stage's count is unknown."""
        total, stage = 0, self.card
        while isinstance(stage, dict):
            steps = stage.get("steps")
            if not isinstance(steps, int) or isinstance(steps, bool):
                return None
            total += steps
            stage = stage.get("init")
        return total


def weights_dir() -> Path:
    """The folder of shipped models: the package's own, or $BRUSHWORK_MODELS_DIR (a packager's or a
    server's own folder of models found by name)."""
    override = os.environ.get("BRUSHWORK_MODELS_DIR")
    return Path(override) if override else Path(str(resources.files("brushwork.models") / "weights"))


_BUILTIN: dict[str, Callable[[], ModelFile]] = {}


def register_builtin_model(name: str, build: Callable[[], ModelFile]) -> None:
    """Make `find_model(name)` return `build()` (called when first asked for; it caches what it builds)."""
    _BUILTIN[name] = build


def builtin_model_names() -> list[str]:
    return list(_BUILTIN)


def builtin_model(name) -> ModelFile | None:
    """The built-in model of this name (any case, `_` for `-`), or None."""
    if not isinstance(name, str):
        return None
    build = _BUILTIN.get(name.lower().replace("_", "-"))
    return build() if build is not None else None


def save_model(path: str | os.PathLike, kind: str, state: dict[str, torch.Tensor], config: dict, card: dict,
               dtype: torch.dtype | None = None) -> Path:
    """Write a model atomically. `dtype=torch.float16` halves the size of shipped models."""
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise BrushworkError(f"model files end in .safetensors, got {str(path)!r}")
    tensors = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    meta = {"format": "brushwork", "version": FORMAT_VERSION, "kind": kind,
            "config": json.dumps(config), "card": json.dumps(card)}
    # Serialized in memory: safetensors' own file writer reports a full disk as a SafetensorError.
    return write_file_atomically(path, save(tensors, metadata=meta), "write model")


def read_model(path: str | os.PathLike) -> ModelFile:
    """Read a model file, with one-line errors for missing, truncated or foreign files."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise BrushworkError(f"model file not found: {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise BrushworkError(f"{str(path)!r} is not a readable safetensors model file ({reason})") from None
    if meta.get("format") != "brushwork" or "kind" not in meta:
        raise BrushworkError(f"{str(path)!r} is a safetensors file but not a brushwork model (no brushwork metadata)")
    try:
        config = json.loads(meta.get("config", "{}"))
        card = json.loads(meta.get("card", "{}"))
    except (json.JSONDecodeError, RecursionError):  # nesting deeper than the stack is corrupt too
        raise BrushworkError(f"{str(path)!r} has corrupt model metadata") from None
    if not isinstance(config, dict) or not isinstance(card, dict):
        raise BrushworkError(f"{str(path)!r} has corrupt model metadata (its config and card must be JSON objects)")
    return ModelFile(kind=meta["kind"], config=config, card=card, tensors=tensors, path=path)


def load_state_strict(module: torch.nn.Module, model: ModelFile) -> None:
    """Load tensors into a module, turning shape/key mismatches into one clear line."""
    check_fits(module, model)
    expected = module.state_dict()
    module.load_state_dict({k: t.to(expected[k].dtype) for k, t in model.tensors.items()})


def build_for_model(build: Callable[[], M], model: ModelFile) -> M:
    """`build()`, with the model's tensors loaded (see load_state_strict). The network is built first on
    PyTorch's meta device (shapes without memory) and checked against the file's tensors: the config in a
    file is outside input, and one asking for a network of a million channels must be refused in one line
    rather than allocated."""
    with torch.device("meta"):
        layout = build()
    check_fits(layout, model)
    module = build()
    load_state_strict(module, model)
    return module


def check_fits(module: torch.nn.Module, model: ModelFile) -> None:
    """Raise a one-line BrushworkError unless the model's tensors have exactly the module's keys and shapes."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(model.tensors))
    unexpected = sorted(set(model.tensors) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise BrushworkError(f"model {str(model.path)!r} does not fit a {model.kind} network: {what}")
    for k, v in expected.items():
        if tuple(model.tensors[k].shape) != tuple(v.shape):
            raise BrushworkError(
                f"model {str(model.path)!r} does not fit its network: {k} has shape "
                f"{tuple(model.tensors[k].shape)}, expected {tuple(v.shape)}"
            )


def shipped_models() -> list[ModelFile]:
    """Every model shipped in the package, and the built-in ones, sorted by name."""
    d = weights_dir()
    models = [read_model(p) for p in d.glob("*.safetensors")] if d.is_dir() else []
    for name in _BUILTIN:
        try:
            models.append(_BUILTIN[name]())
        except BrushworkError:  # its package is missing: `find_model(name)` says so when asked for it
            pass
    return sorted(models, key=lambda m: m.name)


def model_path(name_or_path: str | os.PathLike) -> Path | None:
    """The file `find_model` reads for NAME_OR_PATH without reading it: the path as given when it names a
    file (checked when read), else the shipped model of that name, or None when there is none."""
    p = Path(name_or_path)
    if p.suffix == ".safetensors" or p.exists():
        return p
    candidate = weights_dir() / f"{str(name_or_path).lower().replace('_', '-')}.safetensors"
    return candidate if candidate.is_file() else None


def find_model(name_or_path: str | os.PathLike, kinds: tuple[str, ...] | None = None) -> ModelFile:
    """A model file path, or the name of a shipped or built-in model (optionally of the given kinds)."""
    path = model_path(name_or_path)
    model = builtin_model(os.fspath(name_or_path)) if path is None else None
    if model is not None:
        if kinds is not None and model.kind not in kinds:
            raise BrushworkError(f"model {model.name!r} is a {model.kind} model; expected {' or '.join(kinds)}")
        return model
    if path is None:
        names = [m.stem for m in weights_dir().glob("*.safetensors")] if weights_dir().is_dir() else []
        names += list(_BUILTIN)
        close = difflib.get_close_matches(str(name_or_path), names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see `brushwork models`)"
        raise BrushworkError(f"no model named {str(name_or_path)!r}{hint}")
    model = read_model(path)
    if kinds is not None and model.kind not in kinds:
        raise BrushworkError(f"model {model.name!r} is a {model.kind} model; expected {' or '.join(kinds)}")
    return model

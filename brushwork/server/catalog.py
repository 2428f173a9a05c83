"""What the server can paint with: the shipped style presets and the models in the model directory.

Every name a request gives is looked up here among known presets and models; nothing a request
sends is ever used as a path. The model directory is rescanned when it changes, so models that
appear while the server runs are picked up without a restart. Besides per-style (feed-forward)
models it may hold the models of the methods that take any style image (AdaIN and WCT decoders,
an arbitrary-style model): which method loads which kind comes from `brushwork.methods.dispatch`.
The built-in models (Magenta's networks, `brushwork.nets.magenta`) are served beside them unless
the server is told not to; a model file of the same name in the directory takes precedence.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from brushwork.errors import BrushworkError
from brushwork.imaging import open_image
from brushwork.methods.blend import multi_style_weights
from brushwork.methods.dispatch import get_stylizer, registered_methods
from brushwork.methods.feedforward import FeedForwardStylizer
from brushwork.methods.one_pass import StylizeOptions
from brushwork.models.registry import builtin_model, builtin_model_names, find_model, read_model, weights_dir
from brushwork.presets import list_style_presets, style_thumbnail

log = logging.getLogger("brushwork.server")

FAST_KINDS = ("feedforward", "multi")  # one pass of a trained network (a multi-style one for the presets it holds)
THUMBNAIL_SIZE = 320
# The one-pass methods that take any style image, in the dispatch table's order (adain, wct, predict),
# and those of them that `auto` may pick, in the order it tries them.
ANY_STYLE_METHODS = tuple(m.name for m in registered_methods() if m.any_style)
AUTO_ANY_STYLE_METHODS = tuple(m.name for m in registered_methods() if m.any_style and m.auto is not None)


def normalize_name(name: str) -> str:
    return "-".join(str(name).strip().lower().replace("_", " ").replace("-", " ").split())


@dataclass
class ModelEntry:
    name: str
    kind: str
    preset: str | None  # the style preset it was trained on, when known
    card: dict
    path: Path | None  # None: a built-in model (found by name)
    stamp: tuple
    styles: tuple = ()  # a multi-style model's style names

    @property
    def source(self) -> str:
        """What `find_model` takes for it: the file, or a built-in model's name."""
        return str(self.path) if self.path is not None else self.name

    def public(self) -> dict:
        return {"name": self.name, "kind": self.kind, "style": self.preset,
                "fast": self.kind in FAST_KINDS, "card": self.card}


class Catalog:
    def __init__(self, model_dir: str | os.PathLike | None = None, device: str = "auto", precision: str = "auto",
                 builtin: bool = True):
        self.model_dir = Path(model_dir) if model_dir is not None else weights_dir()
        self.device, self.precision = device, precision
        self.builtin = builtin
        self._lock = threading.Lock()
        self._scan_stamp = None
        self._models: dict[str, ModelEntry] = {}
        self._thumbnails: dict[str, bytes] = {}
        self._stylizers: dict[tuple, tuple[tuple, object]] = {}  # by (model, style of a multi-style model)
        self._stylizer_locks: dict[tuple, threading.Lock] = {}

    # ---------------------------------------------------------------------------------------
    # Presets

    def presets(self):
        return list_style_presets()

    def preset(self, name: str):
        key = normalize_name(name)
        for p in self.presets():
            if p.name == key:
                return p
        return None

    def thumbnail(self, name: str) -> bytes | None:
        """A preset's painting, or a built-in network's style painted on a bundled photo, as a small JPEG."""
        preset = self.preset(name)
        network = None if preset is not None else dict(self.network_styles()).get(normalize_name(name))
        if preset is None and network is None:
            return None
        key = preset.name if preset is not None else normalize_name(name)
        with self._lock:
            cached = self._thumbnails.get(key)
        if cached is not None:
            return cached
        if preset is not None:
            im = open_image(preset.path)
            im.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.LANCZOS)
        else:
            im = style_thumbnail(self.stylizer(network, key), THUMBNAIL_SIZE)
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=85, optimize=True)
        data = buf.getvalue()
        with self._lock:
            self._thumbnails[key] = data
        return data

    def network_styles(self, models: list[ModelEntry] | None = None) -> list[tuple[str, ModelEntry]]:
        """(style name, model) for every style of the built-in many-style networks that is no preset painting."""
        models = self.models() if models is None else models
        names = {p.name for p in self.presets()}
        return [(s, m) for m in models if m.kind == "multi" and m.path is None for s in m.styles if s not in names]

    # ---------------------------------------------------------------------------------------
    # Models

    def models(self) -> list[ModelEntry]:
        self._rescan()
        with self._lock:
            return sorted(self._models.values(), key=lambda m: m.name)

    def fast_model_for(self, style: str, models: list[ModelEntry] | None = None) -> ModelEntry | None:
        """The fast model for a preset name or a model name, or None (`models`: from `models()`): a
        single-style model of that name or preset, else a multi-style model that holds the preset (as
        `method="auto"` does in the library: brushwork.methods.feedforward.shipped_multi_model_for)."""
        key = normalize_name(style)
        models = self.models() if models is None else models
        singles = [m for m in models if m.kind == "feedforward"]
        for m in singles:
            if normalize_name(m.name) == key:
                return m
        for m in singles:
            if m.preset == key:
                return m
        return next((m for m in models if m.kind == "multi" and key in m.styles), None)

    def any_style_models(self, models: list[ModelEntry] | None = None) -> dict[str, ModelEntry]:
        """Method name -> the model it would load, for each method that takes any style image and has a
        model here, in the dispatch table's order: the method's default model when it is here, else the
        first by name of its kinds."""
        models = self.models() if models is None else models

        def pick(method):
            candidates = [e for e in models if e.kind in method.model_kinds]
            default = next((e for e in candidates if e.name == method.default_model), None)
            return default or (candidates[0] if candidates else None)

        picked = {m.name: pick(m) for m in registered_methods() if m.any_style}
        return {name: entry for name, entry in picked.items() if entry is not None}

    def _rescan(self) -> None:
        d = self.model_dir
        try:
            files = sorted(d.glob("*.safetensors")) if d.is_dir() else []
            stamp = tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        except OSError:
            files, stamp = [], ()
        with self._lock:
            if stamp == self._scan_stamp:
                return
        known = {m.path: m for m in self._models.values()}
        found: dict[str, ModelEntry] = {}
        for f, file_stamp in zip(files, stamp):
            old = known.get(f)
            if old is not None and old.stamp == file_stamp:
                found[old.name] = old
                continue
            try:
                model = read_model(f)
            except BrushworkError as exc:  # a half-written or foreign file: skip it, keep serving
                log.warning("skipping model %s: %s", f.name, exc)
                continue
            except OSError as exc:
                log.warning("skipping model %s: %s", f.name, exc)
                continue
            style = model.card.get("style")
            preset = style.get("preset") if isinstance(style, dict) else None
            name = str(model.name)
            if preset is None and self.preset(name) is not None:
                preset = normalize_name(name)
            found[name] = ModelEntry(name=name, kind=model.kind, preset=preset, card=model.card, path=f,
                                     stamp=file_stamp, styles=tuple(model.styles))
            del model  # the tensors are loaded again, once, when a stylizer is built
        if self.builtin:
            found.update({m.name: m for m in _builtin_entries() if m.name not in found})
        with self._lock:
            self._models = found
            self._scan_stamp = stamp

    def stylizer(self, entry: ModelEntry, style: str | None = None):
        """A loaded stylizer for a model, built once and reused while the file is unchanged; for a
        multi-style model, for one of its styles (`style`, a preset name), each kept apart.

        Per-style models are kept here, one per model in the directory (a server alternates between
        them); the models of the any-style methods come through the dispatch table, which keeps the
        last few loaded.
        """
        if entry.kind not in FAST_KINDS:
            return self._any_style_stylizer(entry)
        key = (entry.name, normalize_name(style)) if entry.kind == "multi" else (entry.name, None)
        with self._lock:
            cached = self._stylizers.get(key)
            if cached is not None and cached[0] == entry.stamp:
                return cached[1]
            lock = self._stylizer_locks.setdefault(key, threading.Lock())
        with lock:  # one thread loads a model; others wait for it
            with self._lock:
                cached = self._stylizers.get(key)
                if cached is not None and cached[0] == entry.stamp:
                    return cached[1]
            blend = multi_style_weights(list(entry.styles), key[1]) if entry.kind == "multi" else None
            model = read_model(entry.path) if entry.path is not None else find_model(entry.name)
            stylizer = FeedForwardStylizer(model, style_blend=blend, device=self.device, precision=self.precision)
            with self._lock:
                self._stylizers[key] = (entry.stamp, stylizer)
            return stylizer

    def _any_style_stylizer(self, entry: ModelEntry):
        method = next((m for m in registered_methods() if m.any_style and entry.kind in m.model_kinds), None)
        if method is None:
            raise BrushworkError(f"model {entry.name!r} is a {entry.kind} model, which no one-pass method loads")
        options = StylizeOptions(method=method.name, device=self.device, precision=self.precision,
                                 **{method.model_option: entry.source})
        return get_stylizer(options)


def _builtin_entries() -> list[ModelEntry]:
    """The built-in models whose packages are installed, as catalog entries (read once per process)."""
    entries = []
    for name in builtin_model_names():
        try:
            model = builtin_model(name)
        except BrushworkError as exc:
            log.warning("built-in model %s is not available: %s", name, exc)
            continue
        entries.append(ModelEntry(name=model.name, kind=model.kind, preset=None, card=model.card, path=None,
                                  stamp=("builtin", name), styles=tuple(model.styles)))
    return entries


def auto_any_style_method(available: dict[str, ModelEntry]) -> str | None:
    """What `auto` runs for a style image, given `any_style_models()`: the first auto method present."""
    return next((name for name in AUTO_ANY_STYLE_METHODS if name in available), None)

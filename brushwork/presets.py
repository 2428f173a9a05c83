"""The style images shipped with brushwork, addressable by short names such as "starry-night"."""

from __future__ import annotations

import difflib
import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from brushwork.errors import BrushworkError
from brushwork.imaging import load_image, resize_long_side, tensor_to_image


@dataclass(frozen=True)
class StylePreset:
    name: str
    path: Path
    artist: str
    title: str
    year: str | None  # free text: "1889", "c.1831", "1899-1901", or unknown


def _styles_dir() -> Path:
    # The package is installed as plain files (setuptools package-data), so the resource is a
    # real directory; Path() also accepts the Traversable a namespace package hands back.
    return Path(str(resources.files("brushwork") / "assets" / "styles"))


@functools.lru_cache(maxsize=1)
def _load_presets() -> tuple[StylePreset, ...]:
    directory = _styles_dir()
    with open(directory / "styles.json", encoding="utf-8") as f:
        entries = json.load(f)
    return tuple(
        StylePreset(
            name=e["name"],
            path=directory / e["file"],
            artist=e["artist"],
            title=e["title"],
            year=e.get("year"),
        )
        for e in entries
    )


def list_style_presets() -> list[StylePreset]:
    """All shipped style presets, sorted by name."""
    return sorted(_load_presets(), key=lambda p: p.name)


def _normalize_name(name: str) -> str:
    return "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


def resolve_style(name_or_path: str | os.PathLike) -> Path:
    """The image file for a style: an existing file path wins, else a preset name.

    Preset names are matched case-insensitively, with "_" or spaces accepted for "-".
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    text = os.fspath(name_or_path)
    presets = {p.name: p for p in _load_presets()}
    key = _normalize_name(text)
    if key in presets:
        return presets[key].path
    close = difflib.get_close_matches(key, list(presets), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise BrushworkError(
        f"unknown style '{text}': not a file and not a preset (see `brushwork models`){hint}"
    )


THUMBNAIL_PHOTO = "chelsea.jpg"  # the bundled example a network's style is shown on


def style_thumbnail(stylizer, size: int):
    """A network style's thumbnail: the bundled example photo painted by `stylizer` (a one-pass stylizer
    holding the style), `size` px on the long side; a PIL image."""
    photo = Path(str(resources.files("brushwork") / "assets" / "examples" / THUMBNAIL_PHOTO))
    rgb, _ = load_image(photo)
    return tensor_to_image(stylizer.stylize_tensor(resize_long_side(rgb, size).clamp(0, 1)))

"""The style images of a many-style training run (`--styles`): a folder, or a list of files and presets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from brushwork.errors import BrushworkError
from brushwork.methods.blend import style_name
from brushwork.presets import resolve_style
from brushwork.training.data import list_images
from brushwork.training.feedforward import style_credit


@dataclass(frozen=True)
class TrainingStyle:
    name: str  # what `--style NAME` selects in a multi-style model: the preset name, else the file's stem
    path: Path
    credit: dict  # artist, title, year (see `style_credit`)


def list_training_styles(spec: str) -> list[TrainingStyle]:
    """`spec`: a folder of images (sorted by file name) or comma-separated files and preset names."""

    if not spec or not spec.strip():
        raise BrushworkError("--styles is needed: a folder of style images, or comma-separated files or preset names")
    folder = Path(spec).expanduser()
    if folder.is_dir():
        sources = [str(p) for p in list_images(folder)]
    else:
        sources = [part.strip() for part in spec.split(",") if part.strip()]
    styles, seen = [], {}
    for source in sources:
        credit = style_credit(source)  # raises a one-line error for an unknown name or missing file
        path = resolve_style(source).resolve()
        name = credit["preset"] or style_name(path.stem)
        if name in seen:
            raise BrushworkError(f"two styles are both named {name!r} ({seen[name]} and {path}): rename one")
        seen[name] = path
        styles.append(TrainingStyle(name=name, path=path, credit=credit))
    if not styles:
        raise BrushworkError(f"no style images in --styles {spec!r}")
    return styles

"""`--style A:0.3,B:0.7`: several styles with weights, for multi-style models and style prediction.

A style blend is a comma-separated list of entries `NAME` or `NAME:WEIGHT`; a NAME alone weighs 1.
Weights must be positive numbers; they are normalized to sum to one. For a multi-style model NAME
is one of its styles; for style prediction it is an image, a preset name or an embedding file.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from brushwork.errors import BrushworkError


def style_name(stem: str) -> str:
    """The name a multi-style model gives a style image that is not a preset: its file stem, slugged."""
    return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "style"


def parse_weighted_styles(text: str) -> list[tuple[str, float]]:
    """`A:0.3,B:0.7` -> [("A", 0.3), ("B", 0.7)] (weights as given, not yet normalized)."""
    text = os.fspath(text)
    entries = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise BrushworkError(f"bad style blend {text!r}: an empty entry (expected NAME or NAME:WEIGHT, "
                                 "comma-separated)")
        name, colon, weight_text = part.rpartition(":")
        if not colon or Path(part).exists():  # a file whose name holds a colon is a name, not a weight
            name, weight = part, 1.0
        else:
            try:
                weight = float(weight_text)
            except ValueError:
                raise BrushworkError(f"bad style blend entry {part!r}: the weight after ':' must be a number "
                                     "(expected NAME or NAME:WEIGHT)") from None
            if not name.strip():
                raise BrushworkError(f"bad style blend entry {part!r}: no style name before ':'")
        if not (weight > 0 and math.isfinite(weight)):
            raise BrushworkError(f"style blend weights must be positive numbers, got {weight_text!r} for {name!r}")
        entries.append((name.strip(), weight))
    return entries


def normalized(entries: list[tuple[str, float]]) -> list[tuple[str, float]]:
    total = sum(w for _, w in entries)
    return [(name, w / total) for name, w in entries]


def multi_style_weights(style_names: list[str], text: str) -> list[float]:
    """Blend weights over a multi-style model's styles (in its order) for `NAME` or `A:0.3,B:0.7`."""
    index = {name: i for i, name in enumerate(style_names)}
    weights = [0.0] * len(style_names)
    for name, weight in normalized(parse_weighted_styles(text)):
        key = name if name in index else style_name(name)
        if key not in index:
            raise BrushworkError(f"this multi-style model has no style {name!r}: it has {', '.join(style_names)}")
        if weights[index[key]]:
            raise BrushworkError(f"style {name!r} appears twice in {text!r}")
        weights[index[key]] = weight
    return weights

"""Options dataclasses: one place for defaults and help text.

Each field made with `option()` carries its help (and choices) in its metadata; the CLI builds its
flags from these (`brushwork.cli.options`) and the HTTP API its form fields, so the Python API, the
CLI and the HTTP API cannot drift apart.
"""

from __future__ import annotations

import argparse
from dataclasses import field, fields, replace

from brushwork.errors import BrushworkError


def option(default, help: str, **meta):
    """A dataclass field with CLI help text; mutable defaults (dict, list) are copied per instance."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


def with_overrides(options, overrides: dict, what: str):
    """`options` (an options dataclass) with the fields named in `overrides` replaced: how the Python API
    takes keyword options; a name that is not a field is one clear error (`what`: the call, for it)."""
    unknown = sorted(set(overrides) - {f.name for f in fields(options)})
    if unknown:
        raise BrushworkError(f"unknown option {unknown[0]!r} for {what}")
    return replace(options, **overrides) if overrides else options


def parse_layer_weights(text: str) -> dict[str, float]:
    """`relu4_2:1,relu3_1:0.5` or `relu4_2,relu3_1` (weight 1) -> {name: weight}."""
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            out[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight in {item!r}: expected NAME or NAME:WEIGHT") from None
    if not out:
        raise argparse.ArgumentTypeError("expected at least one layer, e.g. relu4_2 or relu4_2:1")
    return out


def parse_float_list(text: str) -> list[float]:
    try:
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None

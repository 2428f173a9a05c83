"""Options dataclasses: one place for defaults and help text.

Each field made with `option()` carries its help (and choices) in its metadata; the CLI builds its
flags from these (`brushwork.cli.options`) and the HTTP API its form fields, so the Python API, the
CLI and the HTTP API cannot drift apart.
"""

from __future__ import annotations

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

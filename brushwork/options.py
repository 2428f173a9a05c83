"""Options dataclasses: one place for defaults and help text.

Each field made with `option()` carries its help (and choices) in its metadata; the CLI builds its
flags from these (`brushwork.cli.options`) and the HTTP API its form fields, so the Python API, the
CLI and the HTTP API cannot drift apart.
"""

from __future__ import annotations

from dataclasses import field


def option(default, help: str, **meta):
    """A dataclass field with CLI help text; mutable defaults (dict, list) are copied per instance."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})

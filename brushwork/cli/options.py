"""Build argparse flags from an options dataclass, so the CLI cannot drift from the Python API.

Each field becomes `--field-name` with the dataclass default and the field's help text; types are
parsed from the annotation (int, float, str, layer dicts like `relu4_2:1,relu3_1:0.5`, float lists).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from brushwork.errors import BrushworkError
from brushwork.options import parse_float_list, parse_layer_weights


def _base_type(annotation):
    if isinstance(annotation, str):  # `from __future__ import annotations` leaves strings
        annotation = annotation.replace(" ", "")
        for name, typ in (("dict", dict), ("list", list), ("int", int), ("float", float), ("str", str),
                          ("bool", bool)):
            if annotation.startswith(name):
                return typ
        return str
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, skip=()) -> None:
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        typ = _base_type(f.type)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs: dict = {"dest": f.name, "default": default, "help": f.metadata.get("help", "")}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if typ is dict:
            kwargs["type"] = parse_layer_weights
            kwargs["metavar"] = "LAYER[:W],..."
            shown = ",".join(f"{k}:{v:g}" for k, v in default.items())
            kwargs["help"] += f" (default: {shown})"
        elif typ is list:
            kwargs["type"] = parse_float_list
            kwargs["metavar"] = "W,..."
        elif typ is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typ in (int, float):
            kwargs["type"] = typ
        else:
            kwargs["type"] = str
        if typ is not dict and default is not None and "%(default)" not in kwargs["help"]:
            kwargs["help"] += " (default: %(default)s)"
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def dataclass_from_args(cls, args: argparse.Namespace):
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in vars(args).items() if k in names})
    except TypeError as exc:
        raise BrushworkError(str(exc)) from None

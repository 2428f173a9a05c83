"""Property tests of option strings: style blends (`A:0.3,B:0.7`), layer weights (`relu4_2:1,relu3_1:0.5`),
number lists, and whole command lines of `brushwork optimize`, `stylize` and `train` flags with any values.
Each gives a well-formed result or one clear error (a `BrushworkError`, or argparse's one-line usage error and
exit 2); never another exception."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import math

import pytest

from brushwork.cli.cmd_stylize import stylize_options
from brushwork.cli.main import build_parser
from brushwork.cli.options import dataclass_from_args
from brushwork.errors import BrushworkError
from brushwork.methods.blend import multi_style_weights, parse_weighted_styles
from brushwork.methods.one_pass import StylizeOptions
from brushwork.methods.optimize import OptimizeOptions
from brushwork.options import parse_float_list, parse_layer_weights
from brushwork.training.options import TrainOptions

pytest.importorskip("hypothesis")
from fuzzing import fuzz  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

STYLES = ["starry-night", "great-wave", "udnie"]
# Text that leans on the separators and number syntax the parsers split on.
option_text = st.lists(st.sampled_from(list(":,.-+eE_ 0123456789") + ["relu4_2", "nan", "inf", "a", "\x00", "é"]),
                       max_size=16).map("".join) | st.text(max_size=30)
names = st.text(alphabet=st.characters(blacklist_characters=",:", blacklist_categories=("Cs",)), min_size=1,
                max_size=12).filter(lambda s: s.strip() == s and s)
weights = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)


@fuzz(300)
@given(option_text)
def test_style_blends_parse_or_fail_in_one_line(text):
    try:
        entries = parse_weighted_styles(text)
    except BrushworkError as exc:
        assert "\n" not in str(exc)
        return
    assert entries and all(name and w > 0 and math.isfinite(w) for name, w in entries)


@fuzz(100)
@given(st.lists(st.tuples(names, weights), min_size=1, max_size=5))
def test_style_blends_round_trip(entries):
    text = ",".join(f"{name}:{w!r}" for name, w in entries)
    assert parse_weighted_styles(text) == [(name.strip(), w) for name, w in entries]


@fuzz(200)
@given(option_text | st.lists(st.tuples(st.sampled_from(STYLES), weights), min_size=1, max_size=3).map(
    lambda es: ",".join(f"{n}:{w!r}" for n, w in es)))
def test_multi_style_weights_sum_to_one_or_fail(text):
    try:
        w = multi_style_weights(STYLES, text)
    except BrushworkError as exc:
        assert "\n" not in str(exc)
        return
    assert len(w) == len(STYLES) and all(x >= 0 for x in w) and math.isclose(sum(w), 1.0)


@fuzz(300)
@given(option_text)
def test_layer_weights_and_number_lists(text):
    for parse in (parse_layer_weights, parse_float_list):
        try:
            parse(text)
        except argparse.ArgumentTypeError as exc:
            assert "\n" not in str(exc)


def flags_of(cls, skip=()) -> list[str]:
    return ["--" + f.name.replace("_", "-") for f in dataclasses.fields(cls) if f.name not in skip]


flag_values = (option_text | st.integers(-10**6, 10**6).map(str)
               | st.floats(allow_nan=True, allow_infinity=True).map(repr)
               | st.sampled_from(["relu4_2:1,relu3_1:0.5", "0.5,0.5", "cpu", "fp32", "lbfgs", "noise", ""]))


@functools.cache
def parser() -> argparse.ArgumentParser:
    return build_parser()


def parse_command(argv) -> None:
    """Parse a command line as `brushwork` does, then build and check its options (no work is started)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            args = parser().parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 2 and stderr.getvalue().count("\n") == 1, stderr.getvalue()
            return
    try:
        if args.command == "stylize":
            stylize_options(args)
        elif args.command == "optimize":
            dataclass_from_args(OptimizeOptions, args).validate()
        else:
            dataclass_from_args(TrainOptions, args).validate()
    except BrushworkError as exc:
        assert "\n" not in str(exc)


@fuzz(150, deadline_ms=5000)
@given(st.sampled_from(["optimize", "stylize", "train"]), st.data())
def test_command_lines_with_any_flag_values(command, draw):
    cls = {"optimize": OptimizeOptions, "stylize": None, "train": TrainOptions}[command]
    flags = flags_of(cls) if cls is not None else flags_of(StylizeOptions, skip=("style",))
    pairs = draw.draw(st.lists(st.tuples(st.sampled_from(flags), flag_values), max_size=4))
    argv = [command, *{"optimize": ["c.png", "s.png", "-o", "o.png"], "stylize": ["c.png", "-o", "o.png"],
                       "train": []}[command]]
    for flag, value in pairs:
        argv += [flag, value] if not value.startswith("-") else [f"{flag}={value}"]
    parse_command(argv)

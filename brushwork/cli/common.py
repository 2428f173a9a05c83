"""Pieces every subcommand shares: common flags and output-path checks."""

from __future__ import annotations

import argparse
from pathlib import Path

from brushwork.errors import BrushworkError
from brushwork.imaging.io import SAVE_FORMATS


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def check_output_path(path: str | Path) -> Path:
    """Fail before any work when the output could never be written (unknown format, a directory)."""
    p = Path(path)
    if p.is_dir():
        raise BrushworkError(f"output {str(p)!r} is a directory: give a file name such as {p / 'out.png'}")
    if p.suffix.lower() not in SAVE_FORMATS:
        known = ", ".join(sorted(SAVE_FORMATS))
        raise BrushworkError(f"cannot write {str(p)!r}: unknown image format {p.suffix or '(none)'!r} (use {known})")
    return p

"""The photos the quality benchmarks measure on: the bundled examples, or files of one's own (a model
picked on the examples is checked on photos it was not picked on)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "brushwork" / "assets" / "examples"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def example_photos() -> list[Path]:
    """Every bundled example photo, sorted by name."""
    return sorted(p for p in EXAMPLES.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def resolve_photos(names) -> list[Path]:
    """Photo files, or names of bundled examples (`astronaut.jpg`); one that is neither stops the benchmark
    with one line, before any model loads."""
    photos = [Path(p) if Path(p).exists() else EXAMPLES / p for p in names]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise SystemExit(f"no such photo: {', '.join(missing)} "
                         f"(give files, or names of bundled examples in {EXAMPLES})")
    return photos

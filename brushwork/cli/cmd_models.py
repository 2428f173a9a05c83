"""`brushwork models [--json]`: the shipped models and style presets."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    from brushwork.cli.common import add_common_flags

    p = sub.add_parser(
        "models",
        help="list the shipped models and style presets",
        description="List the trained models shipped with brushwork (use their names with --style) and the "
        "style presets (painting images usable by name wherever a style image is expected).",
    )
    p.add_argument("--json", action="store_true", help="print JSON for machines instead of tables")
    add_common_flags(p)
    p.set_defaults(run=run)


def _credit(card: dict, model=None) -> str:
    if model is not None and model.styles:
        shown = model.styles[:3]  # the table stays one screen wide; --json lists them all
        more = f" and {len(model.styles) - len(shown)} more" if len(model.styles) > len(shown) else ""
        return f"{len(model.styles)} styles: {', '.join(shown)}{more}"
    if model is not None and model.kind == "arbitrary":
        return "any style image (--method predict)"
    style = card.get("style") or {}
    if not isinstance(style, dict):
        return str(style)
    title, artist = style.get("title"), style.get("artist")
    if title and artist:
        return f"{title} ({artist})"
    return title or artist or style.get("file") or ""


def model_rows() -> list[dict]:
    """One row per shipped model; a damaged file is listed with its error instead of hiding the rest."""
    from brushwork.errors import BrushworkError
    from brushwork.models.registry import read_model, weights_dir

    folder = weights_dir()
    rows = []
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            m = read_model(path)
        except BrushworkError as exc:
            rows.append({"name": path.stem, "kind": "?", "style": f"(unreadable: {exc})", "styles": [], "steps": None,
                         "trained_steps": None, "image_size": None, "recipe": None, "hardware": None,
                         "wall_time_s": None, "file": str(path), "card": {}})
            continue
        card = m.card
        rows.append({
            "name": m.name,
            "kind": m.kind,
            "style": _credit(card, m),
            "styles": m.styles,
            "steps": card.get("steps"),  # of the last stage; trained_steps counts the stages it continued
            "trained_steps": m.trained_steps,
            "image_size": card.get("image_size"),
            "recipe": card.get("recipe"),
            "hardware": card.get("hardware"),
            "wall_time_s": card.get("wall_time_s"),
            "file": str(m.path) if m.path else None,
            "card": card,
        })
    return sorted(rows, key=lambda r: r["name"])


def preset_rows() -> list[dict]:
    from brushwork.methods.dispatch import painted_by
    from brushwork.presets import list_style_presets

    return [{"name": p.name, "artist": p.artist, "title": p.title, "year": p.year, "file": str(p.path),
             "painted_by": painted_by(p.name)} for p in list_style_presets()]


def format_table(headers: list[str], rows: list[list]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def _steps(row: dict) -> str | None:
    """All stages' steps, and the last stage's (whose size and recipe the other columns give) when it
    continued an earlier model."""
    total, last = row["trained_steps"], row["steps"]
    if total is None or total == last:
        return last
    return f"{total} ({last} last)"


def run(args) -> int:
    models, presets = model_rows(), preset_rows()
    if args.json:
        json.dump({"models": models, "styles": presets}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    out.write("Models (use with --style NAME)\n")
    if models:
        out.write(format_table(
            ["name", "kind", "style", "steps", "size", "recipe"],
            [[m["name"], m["kind"], m["style"], _steps(m), m["image_size"], m["recipe"]] for m in models],
        ) + "\n")
    else:
        out.write("  (none shipped yet)\n")
    out.write("\nStyle presets (paintings, usable wherever a style image is expected; PAINTED BY: what "
              "`--style NAME` uses)\n")
    out.write(format_table(
        ["name", "artist", "title", "year", "painted by"],
        [[p["name"], p["artist"], p["title"], p["year"], p["painted_by"]] for p in presets],
    ) + "\n")
    return 0

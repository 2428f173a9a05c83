"""`brushwork models [--json] [--sheet FILE]`: the shipped and built-in models, and the style presets."""

from __future__ import annotations

import json
import sys

from brushwork.cli.common import add_common_flags
from brushwork.errors import BrushworkError
from brushwork.files import atomic_write
from brushwork.methods.dispatch import painted_by
from brushwork.methods.feedforward import FeedForwardStylizer
from brushwork.models.registry import builtin_model, builtin_model_names, find_model, read_model, weights_dir
from brushwork.presets import list_style_presets, style_thumbnail


def register(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the shipped models and style presets",
        description="List the trained models shipped with brushwork and built in (use their names with --style or "
        "--model), the style presets (painting images usable by name wherever a style image is expected) and "
        "the styles of the built-in 26-style network (usable by name with --style).",
    )
    p.add_argument("--json", action="store_true", help="print JSON for machines instead of tables")
    p.add_argument("--sheet", metavar="FILE.png",
                   help="also write a contact sheet of the network styles, each painted by its network on a "
                        "bundled photo")
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


# What the CPU-trained models are, now that something better is the default for their methods.
SUPERSEDED = {
    "adain": "CPU-trained: --method adain",
    "wct": "CPU-trained: --method wct",
}


def _what(model) -> str:
    if model.name in SUPERSEDED:
        return SUPERSEDED[model.name]
    if model.card.get("summary"):
        return str(model.card["summary"]).split(":")[0]
    return {"feedforward": "one style", "multi": "several styles"}.get(model.kind, model.kind)


def model_rows() -> list[dict]:
    """One row per shipped or built-in model; a damaged file is listed with its error instead of hiding the rest."""

    folder = weights_dir()
    rows, models = [], []
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            models.append(read_model(path))
        except BrushworkError as exc:
            rows.append({"name": path.stem, "kind": "?", "style": f"(unreadable: {exc})", "styles": [], "steps": None,
                         "trained_steps": None, "image_size": None, "recipe": None, "hardware": None,
                         "wall_time_s": None, "file": str(path), "what": "?", "card": {}})
    for name in builtin_model_names():
        try:
            models.append(builtin_model(name))
        except BrushworkError as exc:
            rows.append({"name": name, "kind": "?", "style": f"(not available: {exc})", "styles": [], "steps": None,
                         "trained_steps": None, "image_size": None, "recipe": None, "hardware": None,
                         "wall_time_s": None, "file": None, "what": "built in", "card": {}})
    for m in models:
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
            "what": _what(m),
            "card": card,
        })
    return sorted(rows, key=lambda r: r["name"])


def preset_rows() -> list[dict]:
    return [{"name": p.name, "artist": p.artist, "title": p.title, "year": p.year, "file": str(p.path),
             "painted_by": painted_by(p.name)} for p in list_style_presets()]


def network_style_rows(models: list[dict]) -> list[dict]:
    """The styles of the built-in many-style networks (no painting behind them: only the network paints them)."""
    return [{"name": style, "model": m["name"], "index": i} for m in models
            if m["kind"] == "multi" and m["file"] is None for i, style in enumerate(m["styles"])]


def write_sheet(path, rows: list[dict], cell: int = 192) -> None:
    """A contact sheet of the network styles: each painted by its network on the bundled photo, labelled."""
    from PIL import Image, ImageDraw

    columns, label = 7, 14
    tiles = []
    for row in rows:
        model = find_model(row["model"])
        blend = [1.0 if i == row["index"] else 0.0 for i in range(len(model.styles))]
        tiles.append((row["name"], style_thumbnail(FeedForwardStylizer(model, style_blend=blend), cell)))
    width = max(t.width for _, t in tiles)
    height = max(t.height for _, t in tiles) + label
    sheet = Image.new("RGB", (columns * width, -(-len(tiles) // columns) * height), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (name, tile) in enumerate(tiles):
        x, y = (k % columns) * width, (k // columns) * height
        sheet.paste(tile, (x, y + label))
        draw.text((x + 2, y + 1), name, fill="black")
    with atomic_write(path, "write contact sheet") as tmp:
        sheet.save(tmp, format="PNG")


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
    network = network_style_rows(models)
    if args.sheet:
        write_sheet(args.sheet, network)
        if not args.quiet:
            print(f"wrote {args.sheet} ({len(network)} network styles)", file=sys.stderr)
    if args.json:
        json.dump({"models": models, "styles": presets, "network_styles": network}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    out.write("Models (use with --style NAME, or --model NAME)\n")
    if models:
        out.write(format_table(
            ["name", "kind", "what", "style", "steps", "size", "recipe"],
            [[m["name"], m["kind"], m["what"], m["style"], _steps(m), m["image_size"], m["recipe"]] for m in models],
        ) + "\n")
    else:
        out.write("  (none shipped yet)\n")
    out.write("\nStyle presets (paintings, usable wherever a style image is expected; PAINTED BY: what "
              "`--style NAME` uses)\n")
    out.write(format_table(
        ["name", "artist", "title", "year", "painted by"],
        [[p["name"], p["artist"], p["title"], p["year"], p["painted_by"]] for p in presets],
    ) + "\n")
    if network:
        out.write("\nNetwork styles (no painting behind them: `--style NAME` paints with the network's row; "
                  "blends as A:0.5,B:0.5; see them with --sheet FILE.png)\n")
        for model in dict.fromkeys(r["model"] for r in network):
            names = [r["name"] for r in network if r["model"] == model]
            out.write(f"  {model}: {', '.join(names)}\n")
    return 0

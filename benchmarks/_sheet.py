"""A contact sheet: a grid of images in one PNG, for looking at benchmark outputs side by side."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

CELL = 256  # each image is scaled to fit a CELL x CELL box
GAP = 4
LABEL_HEIGHT = 16


def contact_sheet(rows: list[list[Image.Image]], path, labels=None, cell: int = CELL, row_labels=None) -> Path:
    """Write `rows` of images as a grid PNG at `path`. `labels`: optional column titles (one per column);
    `row_labels`: optional titles written left of each row.

    Rows may be of different lengths (a missing method leaves a blank); every image is fitted into a
    `cell` x `cell` box, keeping its aspect ratio, on a white background.
    """
    columns = max((len(r) for r in rows), default=0)
    if not rows or not columns:
        raise ValueError("a contact sheet needs at least one image")
    top = LABEL_HEIGHT + GAP if labels else 0
    font = ImageFont.load_default()
    left = max(int(font.getlength(str(t))) for t in row_labels) + 2 * GAP if row_labels else 0
    sheet = Image.new("RGB", (left + columns * (cell + GAP) + GAP, top + len(rows) * (cell + GAP) + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(labels or []):
        draw.text((left + GAP + c * (cell + GAP) + 2, GAP), str(label), fill="black", font=font)
    for r, row in enumerate(rows):
        if row_labels:
            draw.text((GAP, top + GAP + r * (cell + GAP) + cell // 2), str(row_labels[r]), fill="black", font=font)
        for c, image in enumerate(row):
            if image is None:
                continue
            thumb = ImageOps.contain(image.convert("RGB"), (cell, cell), Image.LANCZOS)  # up or down
            x = left + GAP + c * (cell + GAP) + (cell - thumb.width) // 2
            y = top + GAP + r * (cell + GAP) + (cell - thumb.height) // 2
            sheet.paste(thumb, (x, y))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path

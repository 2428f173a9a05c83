"""A contact sheet: a PNG grid of images with a label above each column and beside each row.

Shared by the quality benchmarks (feed-forward, many-style, arbitrary-style), so that their sheets
look alike and compare at a glance.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 22
PAD = 6


def _fit(image: Image.Image, cell: int) -> Image.Image:
    image = image.convert("RGB")
    scale = cell / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS)


def contact_sheet(rows: list[list[Image.Image | None]], path, labels: list[str] | None = None,
                  row_labels: list[str] | None = None, cell: int = 256) -> Path:
    """Write `rows` (None leaves a cell empty) as one PNG; each image is fitted into cell x cell."""
    columns = max(len(r) for r in rows)
    font = ImageFont.load_default()
    left = 0
    if row_labels:
        left = max(int(font.getlength(t)) for t in row_labels) + 2 * PAD
    top = LABEL_HEIGHT if labels else 0
    sheet = Image.new("RGB", (left + columns * (cell + PAD) + PAD, top + len(rows) * (cell + PAD) + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    for c, text in enumerate(labels or []):
        draw.text((left + PAD + c * (cell + PAD), 5), text[:40], fill="black", font=font)
    for r, row in enumerate(rows):
        y = top + PAD + r * (cell + PAD)
        if row_labels:
            draw.text((PAD, y + cell // 2), row_labels[r], fill="black", font=font)
        for c, image in enumerate(row):
            if image is None:
                continue
            fitted = _fit(image, cell)
            x = left + PAD + c * (cell + PAD)
            sheet.paste(fitted, (x + (cell - fitted.width) // 2, y + (cell - fitted.height) // 2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path

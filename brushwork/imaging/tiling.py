"""Overlapping tiles: split an image, process the pieces, blend them back without seams.

Pure functions on N x C x H x W tensors. Tiles overlap their neighbours; where two tiles overlap,
the output crossfades from one to the other with a raised-cosine ramp. The weights of all tiles
sum to exactly 1 at every pixel (they are built per axis and normalized per axis, so the 2-D weight
of a tile is an outer product and no H x W weight buffer is needed).

`margin` pixels at each tile edge that faces a neighbour get weight 0: a network with a receptive
field sees padding there instead of the real neighbouring pixels, so those pixels are discarded and
the crossfade happens in the middle of the overlap, where both tiles saw real context. With
`overlap > 2 * margin` every pixel is still covered.

`map_tiles` is the memory-bounded driver: it processes one tile at a time and adds each result,
weighted, straight into the output tensor, so peak memory is the input, the output and one tile's
worth of work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from brushwork.errors import BrushworkError


@dataclass(frozen=True)
class Tile:
    """A tile's box in the image: rows [top, bottom), columns [left, right)."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)


def _check(tile: int, overlap: int, margin: int, align: int) -> None:
    if align < 1:
        raise ValueError(f"align must be at least 1, got {align}")
    if tile < 1 or tile % align:
        raise ValueError(f"tile size must be a positive multiple of {align}, got {tile}")
    if overlap < 0 or overlap > tile - align:
        raise ValueError(f"overlap must be between 0 and {tile - align} for tiles of {tile}, got {overlap}")
    if margin < 0 or (margin > 0 and overlap <= 2 * margin):
        raise ValueError(f"margin {margin} needs an overlap of more than {2 * margin} pixels, got {overlap}")


def tile_settings(tile: int, overlap: int | None, margin: int, align: int, crossfade: int,
                  network: str = "this network") -> tuple[int, int]:
    """A user's tile size and overlap (None: the default), checked against a network's receptive field.

    The default overlap is both margins plus `crossfade`; the tile size is rounded down to a
    multiple of `align`. Returns (tile, overlap); raises BrushworkError with one clear line.
    """

    overlap = overlap if overlap is not None else 2 * margin + crossfade
    if overlap <= 2 * margin:
        raise BrushworkError(f"tile overlap must be more than {2 * margin} pixels for {network} "
                             f"(twice its receptive-field radius), got {overlap}")
    size = tile - tile % align
    if size < 2 * overlap:
        raise BrushworkError(f"tile size must be at least {2 * overlap} pixels for {network} "
                             f"(twice the overlap), got {tile}")
    return size, overlap


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """(start, stop) per tile along one axis, covering [0, length).

    `tile` is the largest tile: the fewest tiles that cover `length` with consecutive ones
    overlapping by at least `overlap` are used, each made as small as that allows (so no work is
    wasted on needlessly wide overlaps), spread evenly, starts multiples of `align`. The last tile
    stops at `length`; when `length` is not a multiple of `align` it may be up to `align - 1`
    pixels larger than the others.
    """
    _check(tile, overlap, 0, align)
    if length <= tile:
        return [(0, length)]
    count = 1 + math.ceil((length - tile) / (tile - overlap))
    while True:
        # The smallest size (a multiple of `align`) at which `count` evenly spread tiles keep the overlap.
        size = min(tile, _round_up(math.ceil((length + (count - 1) * overlap) / count), align))
        while size <= tile:
            span = (length - size) // align  # in units of `align`
            starts = [round(i * span / (count - 1)) * align for i in range(count)]
            if all(size - (b - a) >= overlap for a, b in zip(starts, starts[1:])):
                return [(s, s + size) for s in starts[:-1]] + [(starts[-1], length)]
            size += align
        count += 1


def _round_up(v: int, m: int) -> int:
    return v + (-v) % m


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """The start offsets of `tile_spans`."""
    return [a for a, _ in tile_spans(length, tile, overlap, align)]


def axis_weights(spans: list[tuple[int, int]], margin: int = 0, dtype=torch.float32) -> list[torch.Tensor]:
    """Per tile along one axis, 1-D blend weights (normalized: they sum to 1 at every position).

    A tile's weight is 1 inside, 0 within `margin` of an edge it shares with a neighbour, and a
    raised-cosine ramp across the rest of that overlap, matched to the neighbour's opposite ramp.
    Edges on the image border get no ramp (nothing there to blend with).
    """
    raw = []
    for i, (start, stop) in enumerate(spans):
        w = torch.ones(stop - start, dtype=torch.float64)
        if i > 0:  # rising edge over the overlap with the previous tile
            _ramp(w, spans[i - 1][1] - start, margin, rising=True)
        if i + 1 < len(spans):  # falling edge over the overlap with the next tile
            _ramp(w, stop - spans[i + 1][0], margin, rising=False)
        raw.append(w)
    length = spans[-1][1]
    total = torch.zeros(length, dtype=torch.float64)
    for (start, stop), w in zip(spans, raw):
        total[start:stop] += w
    if (total <= 0).any():
        raise ValueError("tiles leave pixels uncovered: increase the overlap or reduce the margin")
    return [(w / total[start:stop]).to(dtype) for (start, stop), w in zip(spans, raw)]


def _ramp(w: torch.Tensor, overlap: int, margin: int, rising: bool) -> None:
    overlap = min(overlap, w.numel())
    m = min(margin, max(0, (overlap - 1) // 2))
    n = overlap - 2 * m  # ramp length
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    ramp = 0.5 - 0.5 * torch.cos(math.pi * t)  # 0 -> 1, strictly inside (0, 1)
    edge = torch.cat([torch.zeros(m, dtype=torch.float64), ramp, torch.ones(m, dtype=torch.float64)])
    if rising:
        w[:overlap] *= edge
    else:
        w[w.numel() - overlap:] *= edge.flip(0)


def tile_grid(height: int, width: int, tile: int, overlap: int, *, margin: int = 0, align: int = 1,
              dtype=torch.float32) -> Iterator[tuple[Tile, torch.Tensor]]:
    """(tile box, H_t x W_t blend weight) for every tile, row by row; the weights sum to 1 everywhere."""
    _check(tile, overlap, margin, align)
    ys, xs = tile_spans(height, tile, overlap, align), tile_spans(width, tile, overlap, align)
    wy, wx = axis_weights(ys, margin, dtype), axis_weights(xs, margin, dtype)
    for (top, bottom), a in zip(ys, wy):
        for (left, right), b in zip(xs, wx):
            yield Tile(top, left, bottom, right), a[:, None] * b[None, :]


def count_tiles(height: int, width: int, tile: int, overlap: int, align: int = 1) -> int:
    return len(tile_starts(height, tile, overlap, align)) * len(tile_starts(width, tile, overlap, align))


def split_tiles(image: torch.Tensor, tile: int, overlap: int, *, align: int = 1) -> list[tuple[Tile, torch.Tensor]]:
    """The tiles of an N x C x H x W image (views, not copies), row by row."""
    _check(tile, overlap, 0, align)
    h, w = image.shape[-2:]
    return [(t, image[..., t.top:t.bottom, t.left:t.right])
            for t in (Tile(a, b, c, d) for a, c in tile_spans(h, tile, overlap, align)
                      for b, d in tile_spans(w, tile, overlap, align))]


def merge_tiles(pieces: Iterable[tuple[Tile, torch.Tensor]], height: int, width: int, tile: int, overlap: int, *,
                margin: int = 0, align: int = 1) -> torch.Tensor:
    """Blend processed tiles (as laid out by `split_tiles` with the same arguments) into one image."""
    weights = {t: w for t, w in tile_grid(height, width, tile, overlap, margin=margin, align=align)}
    out = None
    for t, piece in pieces:
        if out is None:
            out = piece.new_zeros(*piece.shape[:-2], height, width)
        ys, xs = t.slices()
        out[..., ys, xs] += piece * weights[t].to(piece.dtype)
    if out is None:
        raise ValueError("no tiles to merge")
    return out


def map_tiles(fn: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int, overlap: int, *,
              margin: int = 0, align: int = 1, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """`fn` applied to an N x C x H x W image tile by tile, blended back; one tile in flight at a time.

    `fn` maps an N x C x h x w tile to an N x C' x h x w result (same size; any channels and dtype).
    The output is allocated once and each weighted result is added into it in place.
    `progress(done, total)` is called after each tile.
    """
    if image.dim() != 4:
        raise ValueError(f"expected an N x C x H x W tensor, got shape {tuple(image.shape)}")
    _check(tile, overlap, margin, align)
    h, w = image.shape[-2:]
    total = count_tiles(h, w, tile, overlap, align)
    out = None
    for done, (t, weight) in enumerate(tile_grid(h, w, tile, overlap, margin=margin, align=align), 1):
        ys, xs = t.slices()
        piece = fn(image[..., ys, xs])
        if tuple(piece.shape[-2:]) != (t.height, t.width) or piece.shape[0] != image.shape[0]:
            raise ValueError(f"tile function returned shape {tuple(piece.shape)} for a tile of "
                             f"{tuple(image[..., ys, xs].shape)}")
        if out is None:
            out = torch.zeros(*piece.shape[:-2], h, w, dtype=piece.dtype, device=piece.device)
        out[..., ys, xs].add_(piece * weight.to(device=piece.device, dtype=piece.dtype))
        del piece
        if progress is not None:
            progress(done, total)
    return out

import pytest
import torch
import torch.nn.functional as F

from brushwork.imaging.tiling import (
    Tile,
    axis_weights,
    count_tiles,
    map_tiles,
    merge_tiles,
    split_tiles,
    tile_grid,
    tile_spans,
    tile_starts,
)


@pytest.mark.parametrize(
    "length,tile,overlap,align",
    [(1000, 512, 64, 4), (1001, 512, 64, 4), (4096, 1024, 128, 4), (100, 16, 8, 4), (37, 8, 3, 1), (512, 512, 64, 1),
     (513, 512, 64, 4)],
)
def test_spans_cover_and_overlap(length, tile, overlap, align):
    spans = tile_spans(length, tile, overlap, align)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for start, stop in spans:
        assert start % align == 0
        assert stop - start <= tile + align - 1
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert b0 > a0 and a1 - b0 >= overlap  # consecutive tiles overlap by at least `overlap`


def test_small_image_is_one_tile():
    assert tile_starts(300, 512, 64) == [0]
    assert count_tiles(300, 200, 512, 64) == 1


@pytest.mark.parametrize("margin", [0, 5, 20])
def test_weights_are_a_partition_of_unity(margin):
    spans = tile_spans(333, 96, 48, 4)
    total = torch.zeros(333, dtype=torch.float64)
    for (start, stop), w in zip(spans, axis_weights(spans, margin, dtype=torch.float64)):
        total[start:stop] += w
        assert (w >= 0).all()
    assert torch.allclose(total, torch.ones_like(total), atol=1e-12)


def test_margin_pixels_get_zero_weight():
    spans = tile_spans(300, 100, 50, 1)
    weights = axis_weights(spans, margin=10)
    # Inner edges: the first/last 10 pixels facing a neighbour are discarded.
    assert (weights[0][-10:] == 0).all() and (weights[0][:50] == 1).all()
    assert (weights[1][:10] == 0).all() and (weights[1][-10:] == 0).all()
    assert (weights[-1][-10:] > 0).all()  # image border: kept


def test_2d_weights_sum_to_one():
    total = torch.zeros(150, 230)
    for t, w in tile_grid(150, 230, 64, 24, margin=4, align=4):
        total[t.top:t.bottom, t.left:t.right] += w
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)


def test_identity_and_pointwise_functions_are_reproduced():
    x = torch.rand(2, 3, 97, 131)
    assert torch.allclose(map_tiles(lambda t: t, x, 32, 12), x, atol=1e-6)
    # Output channels and dtype may differ from the input's.
    y = map_tiles(lambda t: torch.cat([t * 2 + 1, t.sum(1, keepdim=True)], 1).double(), x, 40, 16, margin=4, align=4)
    ref = torch.cat([x * 2 + 1, x.sum(1, keepdim=True)], 1).double()
    assert y.dtype == torch.float64 and torch.allclose(y, ref, atol=1e-6)


def _blur(x, radius):
    k = 2 * radius + 1
    x = F.pad(x, (radius,) * 4, mode="reflect")
    return F.avg_pool2d(x, k, stride=1)


def test_local_filter_matches_untiled_when_margin_covers_its_reach():
    # A filter that sees `radius` pixels around each output pixel: with margin > radius, the tiled
    # result is exact everywhere (the tile borders' padding never reaches a kept pixel).
    x = torch.rand(1, 3, 120, 170)
    ref = _blur(x, 3)
    tiled = map_tiles(lambda t: _blur(t, 3), x, 48, 20, margin=4)
    assert (tiled - ref).abs().max() < 1e-5
    # Without a margin, the crossfade starts right at the padded tile edges: visibly wrong there.
    naive = map_tiles(lambda t: _blur(t, 3), x, 48, 20, margin=0)
    assert (naive - ref).abs().max() > 1e-3


def test_split_and_merge_round_trip():
    x = torch.rand(1, 4, 70, 90)
    pieces = split_tiles(x, 32, 8)
    assert all(isinstance(t, Tile) and p.shape[-2:] == (t.height, t.width) for t, p in pieces)
    y = merge_tiles([(t, p * 3) for t, p in pieces], 70, 90, 32, 8)
    assert torch.allclose(y, x * 3, atol=1e-6)


def test_progress_and_one_tile_in_flight():
    x = torch.rand(1, 3, 100, 100)
    calls, sizes = [], []

    def fn(t):
        sizes.append(tuple(t.shape[-2:]))
        return t

    map_tiles(fn, x, 40, 16, progress=lambda done, total: calls.append((done, total)))
    n = count_tiles(100, 100, 40, 16)
    assert calls == [(i, n) for i in range(1, n + 1)]
    assert max(max(s) for s in sizes) <= 40


def test_bad_arguments():
    x = torch.rand(1, 3, 50, 50)
    with pytest.raises(ValueError):
        map_tiles(lambda t: t, x, 32, 32)  # overlap as large as the tile
    with pytest.raises(ValueError):
        map_tiles(lambda t: t, x, 30, 8, align=4)  # tile not a multiple of align
    with pytest.raises(ValueError):
        map_tiles(lambda t: t, x, 32, 8, margin=4)  # overlap must exceed 2 x margin
    with pytest.raises(ValueError):
        map_tiles(lambda t: t[..., :-1], x, 32, 8)  # the function must keep the tile's size

"""AdaIN's and WCT's feature maths (`brushwork.features.transfer`) on features with known statistics."""

import pytest
import torch

from brushwork.features.transfer import (
    AffineMap,
    adain,
    adain_map,
    region_masks,
    wct,
    weighted_mean_cov,
    weighted_mean_std,
)


def _correlated_features(seed, channels=8, pixels=(20, 20)):
    gen = torch.Generator().manual_seed(seed)
    mix = torch.eye(channels) + 0.3 * torch.randn(channels, channels, generator=gen)  # well conditioned
    x = torch.randn(channels, pixels[0] * pixels[1], generator=gen)
    return (mix @ x + 3 * torch.randn(channels, 1, generator=gen)).reshape(1, channels, *pixels)


def test_adain_gives_the_content_the_style_channel_statistics():
    content, style = _correlated_features(1), _correlated_features(2, pixels=(9, 13))
    out = adain(content, style)
    mean, std = weighted_mean_std(out)
    style_mean, style_std = weighted_mean_std(style)
    torch.testing.assert_close(mean, style_mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std, style_std, atol=1e-4, rtol=1e-4)


def test_wct_gives_the_content_the_style_covariance():
    content, style = _correlated_features(3), _correlated_features(4, pixels=(15, 17))
    out = wct(content, style)
    mean, cov = weighted_mean_cov(out)
    style_mean, style_cov = weighted_mean_cov(style)
    torch.testing.assert_close(mean, style_mean, atol=1e-3, rtol=1e-4)
    # The whitening's regularization (COV_EPS of the mean variance) leaves a small relative error.
    assert (cov - style_cov).abs().max() < 1e-3 * style_cov.abs().max()


def test_region_masks_levels():
    grey = torch.tensor([0.0, 0.3, 0.5, 0.8, 1.0]).view(1, 1, 1, 5)
    assert region_masks(grey, 3).argmax(1).flatten().tolist() == [0, 1, 1, 2, 2]
    two = region_masks(grey, 1)
    torch.testing.assert_close(two.sum(1), torch.ones(1, 1, 5))
    assert two[0, 1, 0].tolist() == pytest.approx([0.0, 0.3, 0.5, 0.8, 1.0])  # white: the style region


def test_blended_and_alpha_maps_are_the_blends_of_their_outputs():
    content, first, second = _correlated_features(5), _correlated_features(6), _correlated_features(7)
    stats = weighted_mean_std(content)
    maps = [adain_map(stats, weighted_mean_std(s)) for s in (first, second)]
    blended = AffineMap.blend(maps, [0.25, 0.75]).apply(content)
    torch.testing.assert_close(blended, 0.25 * maps[0].apply(content) + 0.75 * maps[1].apply(content),
                               atol=1e-4, rtol=1e-4)
    half = maps[0].with_alpha(0.5).apply(content)
    torch.testing.assert_close(half, 0.5 * maps[0].apply(content) + 0.5 * content, atol=1e-4, rtol=1e-4)
    dense = maps[0].dense().apply(content)  # the same map as a full matrix (WCT's form)
    torch.testing.assert_close(dense, maps[0].apply(content), atol=1e-4, rtol=1e-4)

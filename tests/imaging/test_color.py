import pytest
import torch

from brushwork.imaging import match_color_statistics, rgb_to_yiq, transfer_luminance, yiq_to_rgb


def _rand(*shape, lo=0.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(*shape, generator=g)


def _mean_cov(t):
    x = t.reshape(3, -1).double()
    mu = x.mean(1)
    d = x - mu[:, None]
    return mu, d @ d.T / x.shape[1]


def test_yiq_round_trip_and_known_values():
    x = _rand(2, 3, 8, 8)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-6)
    white = rgb_to_yiq(torch.ones(1, 3, 1, 1)).flatten()
    assert torch.allclose(white, torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)
    red = rgb_to_yiq(torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)).flatten()
    assert torch.allclose(red, torch.tensor([0.299, 0.5957, 0.2115]), atol=1e-3)
    with pytest.raises(ValueError):
        rgb_to_yiq(torch.zeros(3, 4, 4))


def test_transfer_luminance_keeps_stylized_luma_and_content_chroma():
    stylized = _rand(1, 3, 16, 16, lo=0.2, hi=0.8, seed=1)
    content = _rand(1, 3, 16, 16, lo=0.3, hi=0.7, seed=2)
    out = transfer_luminance(stylized, content)
    assert out.shape == stylized.shape and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    unclamped = ((out > 0) & (out < 1)).all(dim=1, keepdim=True)
    assert unclamped.float().mean() > 0.9  # the check below must cover most pixels
    got, want_y, want_iq = rgb_to_yiq(out), rgb_to_yiq(stylized)[:, :1], rgb_to_yiq(content)[:, 1:]
    assert torch.allclose(got[:, :1][unclamped], want_y[unclamped], atol=1e-3)
    for c in range(2):
        assert torch.allclose(got[:, 1 + c : 2 + c][unclamped], want_iq[:, c : c + 1][unclamped], atol=1e-3)
    # and not trivially: the result differs from both inputs
    assert (out - stylized).abs().mean() > 0.02 and (out - content).abs().mean() > 0.02


def test_transfer_luminance_resizes_content_and_broadcasts_batch():
    stylized = _rand(2, 3, 12, 20, lo=0.3, hi=0.7, seed=3)
    content = torch.tensor([0.6, 0.4, 0.3]).reshape(1, 3, 1, 1).expand(1, 3, 30, 50)
    out = transfer_luminance(stylized, content)
    assert out.shape == (2, 3, 12, 20)
    iq = rgb_to_yiq(out)[:, 1:]
    assert torch.allclose(iq, rgb_to_yiq(content[:, :, :1, :1])[:, 1:].expand_as(iq), atol=1e-3)
    assert torch.allclose(rgb_to_yiq(out)[:, :1], rgb_to_yiq(stylized)[:, :1], atol=1e-3)


def test_transfer_luminance_clamps():
    red = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1).expand(1, 3, 4, 4)
    out = transfer_luminance(torch.ones(1, 3, 4, 4), red)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_match_color_statistics_matches_mean_and_covariance():
    # Correlated source colours; a reference with different, also correlated, statistics whose
    # spread keeps the result inside [0, 1] so clamping does not disturb the comparison.
    base = _rand(1, 3, 48, 48, seed=4)
    mix = torch.tensor([[0.5, 0.3, 0.0], [0.1, 0.4, 0.2], [0.0, 0.3, 0.6]])
    source = torch.einsum("ij,njhw->nihw", mix, base)
    ref_base = _rand(1, 3, 32, 40, seed=5)
    ref_mix = torch.tensor([[0.15, -0.05, 0.0], [0.02, 0.1, 0.0], [0.0, 0.05, 0.2]])
    reference = torch.einsum("ij,njhw->nihw", ref_mix, ref_base) + torch.tensor([0.45, 0.4, 0.25]).reshape(1, 3, 1, 1)
    out = match_color_statistics(source, reference)
    assert out.shape == source.shape and out.dtype == torch.float32
    assert 0.0 < out.min() and out.max() < 1.0
    mu, cov = _mean_cov(out)
    mu_r, cov_r = _mean_cov(reference)
    mu_s, cov_s = _mean_cov(source)
    assert torch.allclose(mu, mu_r, atol=1e-4)
    assert torch.allclose(cov, cov_r, atol=2e-5)  # entries are ~1e-3: about 1% relative
    assert not torch.allclose(cov_s, cov_r, atol=1e-3)


def test_match_color_statistics_is_the_symmetric_solution():
    # With identical covariances the symmetric transform is the identity: only the mean moves.
    source = _rand(1, 3, 32, 32, lo=0.2, hi=0.6, seed=6)
    shift = torch.tensor([0.1, -0.05, 0.2]).reshape(1, 3, 1, 1)
    out = match_color_statistics(source, source + shift)
    assert torch.allclose(out, source + shift, atol=1e-3)


def test_match_color_statistics_batch_and_degenerate_source():
    reference = _rand(1, 3, 16, 16, lo=0.4, hi=0.6, seed=7)
    grey = _rand(1, 1, 16, 16, seed=8).expand(1, 3, 16, 16)  # rank-1 covariance
    flat = torch.full((1, 3, 16, 16), 0.3)  # zero covariance
    out = match_color_statistics(torch.cat([grey, flat]), reference)
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()
    mu_r, _ = _mean_cov(reference)
    for i in range(2):
        assert torch.allclose(_mean_cov(out[i : i + 1])[0], mu_r, atol=2e-3)
    assert torch.allclose(out[1], mu_r.float().reshape(3, 1, 1).expand(3, 16, 16), atol=1e-4)
    with pytest.raises(ValueError):
        match_color_statistics(torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4))


def test_match_color_statistics_uses_symmetric_square_roots():
    # A source whitened exactly to covariance s^2 I: the symmetric recipe then maps it with the
    # symmetric matrix C_r^(1/2) / s (a Cholesky recipe would give a triangular one).
    x = _rand(3, 40 * 40, seed=9).double()
    x = x - x.mean(1, keepdim=True)
    evals, evecs = torch.linalg.eigh(x @ x.T / x.shape[1])
    s = 0.1
    x = s * (evecs @ torch.diag(evals.rsqrt()) @ evecs.T) @ x + 0.5
    source = x.float().reshape(1, 3, 40, 40)
    reference = _rand(1, 3, 16, 16, lo=0.35, hi=0.65, seed=10)
    reference[:, 2] = 0.5 * reference[:, 0] + 0.25  # correlated channels
    out = match_color_statistics(source, reference, eps=1e-12)
    assert 0.0 < out.min() and out.max() < 1.0
    centred_in = (source.reshape(3, -1) - source.reshape(3, -1).mean(1, keepdim=True)).double()
    centred_out = (out.reshape(3, -1) - out.reshape(3, -1).mean(1, keepdim=True)).double()
    a = torch.linalg.lstsq(centred_in.T, centred_out.T).solution.T  # out = a @ in
    ev, vec = torch.linalg.eigh(_mean_cov(reference)[1])
    expected = vec @ torch.diag(ev.clamp(min=0).sqrt()) @ vec.T / s
    assert torch.allclose(a, a.T, atol=1e-3)
    assert torch.allclose(a, expected, atol=1e-3)


def test_match_color_statistics_in_slices_equals_one_pass(monkeypatch):
    """Large images are matched a slice of pixels at a time (memory); slicing must not change the result."""
    import brushwork.imaging.color as color

    torch.manual_seed(3)
    source = (torch.rand(1, 3, 40, 50) * 0.4 + 0.5) * torch.tensor([0.3, 1.0, 0.8]).view(1, 3, 1, 1)
    reference = torch.rand(1, 3, 30, 30) * 0.4 + 0.3  # narrow enough that nothing is clamped
    whole = match_color_statistics(source, reference)
    monkeypatch.setattr(color, "_CHUNK_ELEMENTS", 3 * 97)  # slices that do not divide the 2,000 pixels
    sliced = match_color_statistics(source, reference)
    assert torch.allclose(sliced, whole, atol=1e-6)
    # And the sliced statistics are the image's: mean and covariance of the output match the reference's.
    out, ref = sliced.reshape(3, -1).double(), reference.reshape(3, -1).double()
    assert torch.allclose(out.mean(1), ref.mean(1), atol=2e-3)
    assert torch.allclose(torch.cov(out, correction=0), torch.cov(ref, correction=0), atol=2e-3)


def test_weighted_mean_cov_in_slices_equals_the_plain_formula(monkeypatch):
    """WCT's feature statistics (many channels, optional region weights) through the same sliced code."""
    import brushwork.imaging.color as color

    torch.manual_seed(4)
    x = (torch.randn(16, 1000, dtype=torch.float64) * 30 + 100).float()  # large offset: the centring matters
    w = torch.rand(1000, dtype=torch.float64)
    monkeypatch.setattr(color, "_CHUNK_ELEMENTS", 16 * 77)
    for weight in (None, w):
        mean, cov = color.mean_cov(x, weight)
        ww = torch.ones(1000, dtype=torch.float64) if weight is None else weight
        expected_mean = (x.double() * ww).sum(1) / ww.sum()
        d = x.double() - expected_mean[:, None]
        expected_cov = (d * ww) @ d.T / ww.sum()
        assert torch.allclose(mean, expected_mean, rtol=1e-12)
        assert torch.allclose(cov, expected_cov, rtol=1e-10)

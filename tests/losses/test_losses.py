import torch

from brushwork.losses import (
    content_loss,
    gram_matrix,
    gram_style_loss,
    masked_gram_matrix,
    mean_std,
    mean_std_style_loss,
    total_variation_loss,
)


def test_gram_matrix_definition():
    f = torch.randn(2, 4, 5, 6)
    g = gram_matrix(f)
    flat = f.reshape(2, 4, 30)
    torch.testing.assert_close(g, flat @ flat.transpose(1, 2) / 30)
    assert torch.allclose(g, g.transpose(1, 2))


def test_gram_is_size_independent_for_repeated_texture():
    tile = torch.randn(1, 3, 4, 4)
    big = tile.repeat(1, 1, 4, 4)
    torch.testing.assert_close(gram_matrix(tile), gram_matrix(big))


def test_full_mask_equals_plain_gram():
    f = torch.randn(1, 8, 6, 6)
    torch.testing.assert_close(masked_gram_matrix(f, torch.ones(1, 1, 12, 12)), gram_matrix(f))


def test_gram_matrices_stay_float32_under_bf16_autocast():
    # The training loss runs inside the runtime's autocast; a bf16 Gram there was off by ~0.4%.
    f = torch.randn(2, 64, 16, 16, requires_grad=True)
    mask = torch.ones(2, 1, 16, 16)
    expected, expected_masked = gram_matrix(f), masked_gram_matrix(f, mask)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        g, g_masked = gram_matrix(f), masked_gram_matrix(f, mask)
        g_bf16_features = gram_matrix(f.to(torch.bfloat16))
    assert g.dtype == g_masked.dtype == g_bf16_features.dtype == torch.float32
    torch.testing.assert_close(g, expected)
    torch.testing.assert_close(g_masked, expected_masked)
    torch.testing.assert_close(g_bf16_features, gram_matrix(f.detach().to(torch.bfloat16).float()))
    g.sum().backward()
    assert f.grad is not None and f.grad.dtype == torch.float32


def test_losses_zero_at_target_and_positive_elsewhere():
    f = torch.randn(1, 8, 6, 6)
    assert content_loss(f, f) == 0
    assert content_loss(f, f + 1) > 0
    g = gram_matrix(f)
    assert gram_style_loss(g, g) == 0
    assert gram_style_loss(gram_matrix(f * 2), g) > 0
    m, s = mean_std(f)
    assert mean_std_style_loss(f, m, s) < 1e-8
    assert total_variation_loss(torch.ones(1, 3, 8, 8)) == 0
    assert total_variation_loss(torch.rand(1, 3, 8, 8)) > 0


def test_measure_losses_is_zero_on_itself_and_splits_the_style_loss_by_layer(vgg):
    from brushwork.losses import METRIC_STYLE_LAYERS, measure_losses

    gen = torch.Generator().manual_seed(0)
    photo, painting = torch.rand(1, 3, 48, 64, generator=gen), torch.rand(1, 3, 40, 40, generator=gen)
    same = measure_losses(vgg, photo, photo, photo)
    assert same["content_loss"] == 0 and same["style_loss"] < 1e-6
    m = measure_losses(vgg, photo, photo, painting)
    assert set(m["style_loss_by_layer"]) == set(METRIC_STYLE_LAYERS)
    assert m["style_loss"] > 0
    assert abs(sum(m["style_loss_by_layer"].values()) - m["style_loss"]) < 1e-6 * m["style_loss"]

import pytest
import torch

from brushwork.errors import BrushworkError
from brushwork.imaging import load_image, rgb_to_yiq
from brushwork.methods.optimize import OptimizeOptions, optimize, run_optimization

SMALL = dict(size=64, steps=8, scales=1, device="cpu", precision="fp32")


def test_run_lowers_content_and_style_loss(content_path, style_path, vgg):
    """From noise, with the two terms weighted to start equal, both losses fall well below their start."""
    probe = []
    run_optimization(content_path, style_path, OptimizeOptions(**{**SMALL, "steps": 1}, init="noise"),
                     progress=probe.append, vgg=vgg)
    balance = probe[0].losses["content"] / probe[0].losses["style"]
    seen = []
    options = OptimizeOptions(**{**SMALL, "steps": 20}, init="noise", style_weight=balance)
    run_optimization(content_path, style_path, options, progress=seen.append, vgg=vgg)
    first, last = seen[0].losses, seen[-1].losses
    assert last["content"] < 0.6 * first["content"]
    assert last["style"] < 0.8 * first["style"]
    assert [p.step for p in seen] == list(range(1, 21))


def test_default_weights_move_content_towards_style(content_path, style_path, vgg):
    """From the content image, the default run cuts the style loss severalfold."""
    seen = []
    run_optimization(content_path, style_path, OptimizeOptions(**{**SMALL, "steps": 15}), progress=seen.append, vgg=vgg)
    assert seen[-1].losses["style"] < 0.25 * seen[0].losses["style"]
    assert seen[0].losses["content"] == 0


def test_adam_also_lowers_style_loss_from_content(content_path, style_path, vgg):
    seen = []
    result = run_optimization(content_path, style_path, OptimizeOptions(**SMALL, optimizer="adam", learning_rate=10.0),
                              progress=seen.append, vgg=vgg)
    assert result.losses["style"] < 0.5 * seen[0].losses["style"]
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_coarse_to_fine_returns_requested_size(content_path, style_path, vgg):
    sizes = []
    opts = OptimizeOptions(size=80, steps=2, scales=3, device="cpu", precision="fp32")
    result = run_optimization(content_path, style_path, opts, progress=lambda p: sizes.append(p.size), vgg=vgg)
    assert result.image.shape == (1, 3, 60, 80)  # content is 48 x 64, 4:3
    # 80 / 4 = 20 px would leave a 15 px short side, too small for relu5_1: the planner keeps 16.
    assert sorted(set(sizes), key=lambda s: s[1]) == [(17, 22), (30, 40), (60, 80)]
    assert result.steps == 2 * 4 + 2 * 2 + 2


def test_luminance_preservation_keeps_content_chroma(content_path, style_path, vgg):
    result = run_optimization(content_path, style_path, OptimizeOptions(**SMALL, preserve_color="luminance"), vgg=vgg)
    content, _ = load_image(content_path)
    out_iq, content_iq = rgb_to_yiq(result.image)[:, 1:], rgb_to_yiq(content)[:, 1:]
    # Away from clamping at the gamut edge the chroma is the content's exactly.
    inside = ((result.image > 0.02) & (result.image < 0.98)).all(dim=1, keepdim=True).expand_as(out_iq)
    assert inside.float().mean() > 0.5
    assert (out_iq - content_iq)[inside].abs().max() < 2e-2
    # ...while the plain run changes the chroma substantially.
    plain = run_optimization(content_path, style_path, OptimizeOptions(**SMALL), vgg=vgg)
    assert (rgb_to_yiq(plain.image)[:, 1:] - content_iq).abs().mean() > 3 * (out_iq - content_iq).abs().mean()


def test_histogram_preservation_runs_and_differs(content_path, style_path, vgg):
    a = run_optimization(content_path, style_path, OptimizeOptions(**SMALL, preserve_color="histogram"), vgg=vgg)
    b = run_optimization(content_path, style_path, OptimizeOptions(**SMALL), vgg=vgg)
    assert not torch.allclose(a.image, b.image)


def test_style_blend_endpoints(content_path, style_path, style2_path, vgg):
    only_first = run_optimization(content_path, [style_path, style2_path], OptimizeOptions(**SMALL, style_blend=[1, 0]),
                                  vgg=vgg)
    single = run_optimization(content_path, style_path, OptimizeOptions(**SMALL), vgg=vgg)
    torch.testing.assert_close(only_first.image, single.image, atol=1e-4, rtol=0)


def test_mask_keeps_content_where_black(tmp_path, content_path, style_path, vgg):
    from PIL import Image

    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 32, 48))  # style on the left half only
    mask.save(tmp_path / "mask.png")
    result = run_optimization(content_path, style_path, OptimizeOptions(**SMALL, mask=tmp_path / "mask.png"), vgg=vgg)
    content, _ = load_image(content_path)
    right = (result.image - content)[..., 40:].abs().max()
    left = (result.image - content)[..., :24].abs().mean()
    assert right < 1e-3 < left


def test_init_from_file_and_seeded_noise(content_path, style_path, style2_path, vgg):
    a = run_optimization(content_path, style_path, OptimizeOptions(**{**SMALL, "steps": 0}, init=str(style2_path)),
                         vgg=vgg)
    init, _ = load_image(style2_path)
    torch.testing.assert_close(a.image, init, atol=1e-5, rtol=0)
    seeded = OptimizeOptions(**{**SMALL, "steps": 2}, init="noise", seed=3)
    n1 = run_optimization(content_path, style_path, seeded, vgg=vgg)
    n2 = run_optimization(content_path, style_path, seeded, vgg=vgg)
    torch.testing.assert_close(n1.image, n2.image)


def test_temporal_loss_holds_the_image_near_its_target_where_weighted(content_path, style_path, vgg):
    """Ruder et al.'s temporal term: from the same start, the weighted half of the image ends nearer the target
    than without the term, the unweighted half no nearer; the term is logged and is its definition."""
    content, _ = load_image(content_path)
    content = content[..., :48, :64]
    target = torch.tensor([0.2, 0.6, 0.4]).view(1, 3, 1, 1).expand(1, 3, 48, 64)
    weight = torch.zeros(1, 1, 48, 64)
    weight[..., :32] = 1e6  # the style loss of this tiny pair is ~1e9: the term must weigh as much to show
    options = OptimizeOptions(**{**SMALL, "steps": 10}, optimizer="adam")
    seen = []
    held = run_optimization(content, style_path, options, vgg=vgg, init_image=content,
                            temporal=(target, weight), progress=seen.append)
    free = run_optimization(content, style_path, options, vgg=vgg, init_image=content)
    expected = (weight * ((content - target) * 255) ** 2).mean()
    assert seen[0].losses["temporal"] == pytest.approx(float(expected), rel=1e-4)
    assert "temporal" not in free.losses

    def distance(result, cols):
        return float((result.image - target)[..., cols].abs().mean())

    assert distance(held, slice(0, 32)) < 0.9 * distance(free, slice(0, 32))
    assert distance(held, slice(32, 64)) > 0.9 * distance(free, slice(32, 64))


def test_interrupt_keeps_best_image(content_path, style_path, vgg):
    def stop_at_three(p):
        if p.step == 3:
            raise KeyboardInterrupt

    result = run_optimization(content_path, style_path, OptimizeOptions(**SMALL), progress=stop_at_three, vgg=vgg)
    assert result.interrupted and result.steps == 3
    assert result.image.shape == (1, 3, 48, 64)


def test_python_api_returns_pil_with_alpha(tmp_path, style_path):
    from PIL import Image

    rgba = Image.new("RGBA", (40, 30), (200, 100, 50, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    out = optimize(rgba, style_path, size=40, steps=2, scales=1, device="cpu")
    assert out.mode == "RGBA" and out.size == (40, 30)
    assert out.getpixel((0, 0))[3] == 0
    with pytest.raises(BrushworkError, match="unknown option"):
        optimize(rgba, style_path, stepz=3)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(size=4), "size must be"),
        (dict(steps=-1), "steps"),
        (dict(scales=9), "scales"),
        (dict(size=64, scales=4), "fewer scales"),
        (dict(optimizer="sgd"), "unknown optimizer"),
        (dict(style_weight=-1.0), "style weight"),
        (dict(content_layers={"relu9_1": 1.0}), "unknown VGG-19 layer"),
        (dict(style_blend=[1.0, 2.0]), "2 blend weights given for 1"),
        (dict(preserve_color="sepia"), "colour preservation"),
        (dict(learning_rate=0.0), "learning rate"),
        (dict(device="tpu"), "unknown device"),
        (dict(size=16000), "GiB of memory"),
    ],
)
def test_bad_options(bad, message, content_path, style_path):
    with pytest.raises(BrushworkError, match=message):
        run_optimization(content_path, style_path, OptimizeOptions(**{**SMALL, **bad}))

"""AdaIN and WCT on tiny images with small random decoders: the statistics they promise, alpha, style
weights, masks, tiles, and the `method` dispatch."""

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.errors import BrushworkError
from brushwork.features.transfer import region_masks, weighted_mean_cov, weighted_mean_std
from brushwork.imaging import load_image
from brushwork.methods import dispatch
from brushwork.methods.adain import AdaINStylizer
from brushwork.methods.one_pass import StylizeOptions
from brushwork.methods.wct import WCTStylizer
from brushwork.nets.decoder import DECODER_LAYERS, Decoder, DecoderConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def adain_stylizer(vgg):
    torch.manual_seed(0)
    # torch: exact comparisons with direct computations (onnxruntime rounds differently; tested below)
    return AdaINStylizer(Decoder(DecoderConfig("relu4_1", width=0.1)), device="cpu", precision="fp32", backend="torch",
                         vgg=vgg)


@pytest.fixture(scope="module")
def wct_stylizer(vgg):
    torch.manual_seed(0)
    decoders = {layer: Decoder(DecoderConfig(layer, width=0.1)) for layer in DECODER_LAYERS}
    return WCTStylizer(decoders, device="cpu", precision="fp32", backend="torch", vgg=vgg)


def _options(style, **kw):
    return StylizeOptions(style=style, style_size=64, **kw)


def test_adain_features_before_decoding_have_the_style_statistics(adain_stylizer, content_path, style_path):
    content = load_image(content_path)[0].contiguous()
    style = adain_stylizer.style_source(str(style_path), 64)
    feats = adain_stylizer.encode(content, ["relu4_1"])["relu4_1"]
    t = adain_stylizer.transform_features(feats, "relu4_1", [style], [1.0], 1.0, None)
    mean, std = weighted_mean_std(t)
    # A channel the content never activates (all zeros) cannot be given a spread, only the mean:
    # AdaIN scales deviations from the mean, and there are none.
    live = weighted_mean_std(feats)[1] > 1e-2
    assert live.sum() > 100
    torch.testing.assert_close(mean, style.stats["relu4_1"][0], atol=1e-2, rtol=1e-3)
    torch.testing.assert_close(std[live], style.stats["relu4_1"][1][live], atol=1e-2, rtol=1e-3)


def test_wct_features_before_decoding_have_the_style_covariance(wct_stylizer, content_path, style2_path):
    # relu1_1 of a 48 x 64 image: 64 channels from 3,072 positions, so the covariance has full rank.
    content = load_image(content_path)[0].contiguous()
    style = wct_stylizer.style_source(str(style2_path), 64)
    feats = wct_stylizer.encode(content, ["relu1_1"])["relu1_1"]
    t = wct_stylizer.transform_features(feats, "relu1_1", [style], [1.0], 1.0, None)
    mean, cov = weighted_mean_cov(t)
    style_mean, style_cov = style.stats["relu1_1"]
    assert (mean - style_mean).abs().max() < 1e-3 * style_mean.abs().max()
    assert (cov - style_cov).abs().max() < 0.02 * style_cov.abs().max()


def test_alpha_zero_gives_the_decoders_reconstruction(adain_stylizer, vgg, content_path, style_path):
    content = load_image(content_path)[0].contiguous()
    out = adain_stylizer.stylize_tensor(content, _options(str(style_path), alpha=0.0))
    decoder = adain_stylizer.decoders["relu4_1"]
    with torch.no_grad():
        expected = decoder(vgg(content, ["relu4_1"])["relu4_1"]).clamp(0, 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    styled = adain_stylizer.stylize_tensor(content, _options(str(style_path), alpha=1.0))
    assert (styled - expected).abs().mean() > 1e-3  # and alpha 1 is something else


def test_wct_alpha_zero_is_the_chain_of_reconstructions(wct_stylizer, vgg, content_path, style_path):
    content = load_image(content_path)[0].contiguous()
    out = wct_stylizer.stylize_tensor(content, _options(str(style_path), alpha=0.0))
    x = content
    with torch.no_grad():
        for layer in ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1"):
            x = wct_stylizer.decoders[layer](vgg(x, [layer])[layer]).clamp(0, 1)
    torch.testing.assert_close(out, x, atol=1e-4, rtol=0)


def _relative_feature_error(vgg, image, target, layer="relu4_1"):
    with torch.no_grad():
        return float((vgg(image, [layer])[layer] - target).pow(2).mean() / target.pow(2).mean())


def test_refine_steps_bring_the_output_to_the_transferred_features(adain_stylizer, vgg, content_path, style_path):
    content = load_image(content_path)[0].contiguous()
    style = adain_stylizer.style_source(str(style_path), 64)
    with torch.no_grad():
        target = adain_stylizer.transform_features(vgg(content, ["relu4_1"])["relu4_1"], "relu4_1", [style], [1.0],
                                                   1.0, None)
    plain = adain_stylizer.stylize_tensor(content, _options(str(style_path)))
    steps = []
    refined = adain_stylizer.stylize_tensor(content, _options(str(style_path), refine_steps=16),
                                            progress=lambda p: steps.append((p.step, p.total)))
    before, after = _relative_feature_error(vgg, plain, target), _relative_feature_error(vgg, refined, target)
    # A random tiny decoder inverts badly; sixteen steps of inversion must more than halve the distance.
    assert after < 0.5 * before, (before, after)
    assert steps == [(k, 17) for k in range(1, 18)]  # the decoded image, then each refine step
    assert refined.shape == plain.shape and 0 <= float(refined.min()) and float(refined.max()) <= 1


def test_invert_features_returns_the_best_image_seen(vgg):
    from brushwork.methods.feature_transfer import invert_features

    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32)
    target = vgg(image, ["relu2_1"])["relu2_1"].detach()
    # Already exact: no step may make it worse.
    out = invert_features(lambda x, layer: vgg(x, [layer])[layer], image, "relu2_1", target, 3)
    before = _relative_feature_error(vgg, image, target, "relu2_1")
    assert _relative_feature_error(vgg, out, target, "relu2_1") <= before


@pytest.mark.parametrize("which", ["adain", "wct"])
def test_style_weights_at_an_endpoint_reproduce_that_style(which, adain_stylizer, wct_stylizer, content_path,
                                                           style_path, style2_path):
    stylizer = adain_stylizer if which == "adain" else wct_stylizer
    content = load_image(content_path)[0].contiguous()
    single = stylizer.stylize_tensor(content, _options(str(style2_path)))
    blended = stylizer.stylize_tensor(content, _options([str(style_path), str(style2_path)], style_blend=[0.0, 2.0]))
    torch.testing.assert_close(blended, single, atol=1e-4, rtol=0)
    middle = stylizer.stylize_tensor(content, _options([str(style_path), str(style2_path)], style_blend=[1.0, 1.0]))
    assert (middle - single).abs().mean() > 1e-3


def test_mask_regions_get_their_own_styles_statistics(adain_stylizer, wct_stylizer, content_path, style_path,
                                                      style2_path):
    content = load_image(content_path)[0].contiguous()  # 48 x 64: relu4_1 is 6 x 8
    mask = torch.zeros(1, 1, 48, 64)
    mask[..., 32:] = 1.0  # the right half (feature columns 4..7) takes the second style
    regions = torch.nn.functional.avg_pool2d(region_masks(mask, 2), 8)
    styles = [adain_stylizer.style_source(str(p), 64) for p in (style_path, style2_path)]
    feats = adain_stylizer.encode(content, ["relu4_1"])["relu4_1"]
    t = adain_stylizer.transform_features(feats, "relu4_1", styles, [0.5, 0.5], 1.0, regions)
    for half, style in ((slice(0, 4), styles[0]), (slice(4, 8), styles[1])):
        mean, std = weighted_mean_std(t[..., half])
        live = weighted_mean_std(feats[..., half])[1] > 1e-2  # see the test above
        torch.testing.assert_close(mean, style.stats["relu4_1"][0], atol=1e-2, rtol=1e-3)
        torch.testing.assert_close(std[live], style.stats["relu4_1"][1][live], atol=1e-2, rtol=1e-3)

    # WCT, at relu1_1 (full resolution): each half gets its style's covariance.
    wstyles = [wct_stylizer.style_source(str(p), 64) for p in (style_path, style2_path)]
    feats = wct_stylizer.encode(content, ["relu1_1"])["relu1_1"]
    t = wct_stylizer.transform_features(feats, "relu1_1", wstyles, [0.5, 0.5], 1.0, region_masks(mask, 2))
    for half, style in ((slice(0, 32), wstyles[0]), (slice(32, 64), wstyles[1])):
        _, cov = weighted_mean_cov(t[..., half])
        style_cov = style.stats["relu1_1"][1]
        assert (cov - style_cov).abs().max() < 0.05 * style_cov.abs().max()


def test_a_mask_with_one_style_keeps_the_content_where_black(adain_stylizer, tmp_path, content_path, style_path):
    content = load_image(content_path)[0].contiguous()
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(black)
    kept = adain_stylizer.stylize_tensor(content, _options(str(style_path), mask=str(black)))
    reconstruction = adain_stylizer.stylize_tensor(content, _options(str(style_path), alpha=0.0))
    torch.testing.assert_close(kept, reconstruction, atol=1e-5, rtol=0)


def test_tiled_equals_untiled(adain_stylizer, style_path):
    # relu4_1's encoder + decoder see 67 px each way: overlap 140 > 2 x 68, tile 280, two tiles across.
    gen = torch.Generator().manual_seed(0)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 25, 43, generator=gen), size=(200, 344), mode="bilinear")
    whole = adain_stylizer.stylize_tensor(image, _options(str(style_path)))
    tiled = adain_stylizer.stylize_tensor(image, _options(str(style_path), tile=280, tile_overlap=140))
    assert tiled.shape == whole.shape == (1, 3, 200, 344)
    assert (tiled - whole).abs().max() < 1e-3
    with pytest.raises(BrushworkError, match="overlap must be more than"):
        adain_stylizer.stylize_tensor(image, _options(str(style_path), tile=280, tile_overlap=100))


def test_refine_steps_in_tiles(adain_stylizer, vgg, style_path):
    gen = torch.Generator().manual_seed(0)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 25, 43, generator=gen), size=(200, 344), mode="bilinear")
    target = adain_stylizer.transform_features(vgg(image, ["relu4_1"])["relu4_1"], "relu4_1",
                                               [adain_stylizer.style_source(str(style_path), 64)], [1.0], 1.0, None)
    steps = []
    opts = _options(str(style_path), tile=280, tile_overlap=140)
    plain = adain_stylizer.stylize_tensor(image, opts)
    refined = adain_stylizer.stylize_tensor(
        image, _options(str(style_path), tile=280, tile_overlap=140, refine_steps=3),
        progress=lambda p: steps.append((p.step, p.total)))
    assert refined.shape == (1, 3, 200, 344)
    assert steps == [(k, 8) for k in range(1, 9)]  # two tiles, each decoded then refined three times
    # Each tile moves toward its own features, which equal the whole image's away from its border.
    assert _relative_feature_error(vgg, refined, target) < _relative_feature_error(vgg, plain, target)


def test_wct_tiled_equals_untiled_through_chained_levels(vgg, style_path):
    # Each level re-tiles the previous level's output with its own tile plan. relu4_1's tiling is the
    # AdaIN test's; relu5_1 needs tiles of 656 px or more, too slow here (measured instead: the shipped
    # decoders on a 720 x 1000 photo, --tile 700, differ from the untiled result by at most 3e-5).
    torch.manual_seed(0)
    decoders = {layer: Decoder(DecoderConfig(layer, width=0.1)) for layer in ("relu3_1", "relu2_1", "relu1_1")}
    stylizer = WCTStylizer(decoders, device="cpu", precision="fp32", backend="torch", vgg=vgg)
    gen = torch.Generator().manual_seed(0)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 25, 43, generator=gen), size=(200, 344), mode="bilinear")
    whole = stylizer.stylize_tensor(image, _options(str(style_path)))
    tiled = stylizer.stylize_tensor(image, _options(str(style_path), tile=128))
    assert tiled.shape == whole.shape == (1, 3, 200, 344)
    # Random decoders are near-saturated, so float rounding (tiled features match to 5e-8, relative)
    # grows at a few pixels: a mean difference of 6e-6 and at most 0.01 at 0.2% of the pixels, measured.
    difference = (tiled - whole).abs()
    assert difference.mean() < 1e-4 and difference.max() < 0.03


@pytest.mark.parametrize("method", ["adain", "wct"])
def test_statistics_streamed_over_tiles_equal_the_whole_images(vgg, method):
    """Tiled, the content statistics are accumulated tile by tile (never a stitched feature map), with
    each tile's blend weights times the region weights: the same means and (co)variances, region by region."""
    from brushwork.methods.feature_transfer import _statistics_weights
    from brushwork.nets.decoder import pooling_factor

    layer = "relu2_1"
    decoder = Decoder(DecoderConfig(layer, width=0.1))
    stylizer = (AdaINStylizer(decoder, device="cpu", precision="fp32", backend="torch", vgg=vgg) if method == "adain"
                else WCTStylizer({layer: decoder}, device="cpu", precision="fp32", backend="torch", vgg=vgg))
    gen = torch.Generator().manual_seed(1)
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 20, generator=gen), size=(120, 200), mode="bilinear")
    ramp = torch.linspace(0, 1, 200).view(1, 1, 1, 200).expand(1, 1, 120, 200)
    regions = torch.nn.functional.avg_pool2d(region_masks(ramp, 2), pooling_factor(layer))
    tile, overlap, count = stylizer._tile_plan(120, 200, layer, _options("unused", tile=80))
    assert count >= 4
    feats = stylizer.encode(image, [layer])[layer]
    for with_regions in (None, regions):
        whole = [stylizer.statistics(feats, w) for w in _statistics_weights(with_regions, 2)]
        tiled = stylizer._tiled_statistics(image, layer, with_regions, 2, tile, overlap)
        assert len(tiled) == len(whole) == (1 if with_regions is None else 2)
        for (m_t, s_t), (m_w, s_w) in zip(tiled, whole):
            torch.testing.assert_close(m_t, m_w, rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(s_t, s_w, rtol=1e-5, atol=1e-3)


def test_a_style_is_encoded_once_however_it_arrives(adain_stylizer, style_path, style2_path, monkeypatch):
    """Path, PIL upload, again: one encoding of the style; another style is encoded; the cache is bounded."""
    from PIL import Image

    from brushwork.methods.style_cache import STYLE_CACHE_SIZE

    encoded = []
    real_encode = adain_stylizer.encode

    def counting_encode(image, layers):
        encoded.append(tuple(image.shape))
        return real_encode(image, layers)

    monkeypatch.setattr(adain_stylizer, "encode", counting_encode)
    size = 40
    first = adain_stylizer.style_source(str(style_path), size)
    styles_encoded = len(encoded)
    assert adain_stylizer.style_source(Image.open(style_path), size) is first
    assert adain_stylizer.style_source(str(style_path), size) is first
    assert len(encoded) == styles_encoded
    assert adain_stylizer.style_source(str(style2_path), size) is not first
    assert len(encoded) == 2 * styles_encoded
    for k in range(STYLE_CACHE_SIZE + 2):
        adain_stylizer.style_source(torch.full((1, 3, 8, 8), k / 10), size)
    assert len(adain_stylizer._style_cache) == STYLE_CACHE_SIZE


def test_colour_preservation_and_odd_sizes(adain_stylizer, style_path):
    image = torch.rand(1, 3, 37, 29)
    out = adain_stylizer.stylize_tensor(image, _options(str(style_path), preserve_color="luminance", size=45))
    assert out.shape == (1, 3, 45, 35) and 0 <= out.min() and out.max() <= 1


def test_method_dispatch(tmp_path, style_path):
    from brushwork.models.registry import save_model

    assert {"feedforward", "adain", "wct"} <= set(dispatch.method_names())
    # auto: a shipped model name goes to the feed-forward network...
    assert dispatch.resolve_method(StylizeOptions(style="starry-night")) == "feedforward"
    # ... a style image goes to AdaIN when a decoder is given, and fails clearly without one.
    decoder = Decoder(DecoderConfig("relu4_1", width=0.1))
    path = save_model(tmp_path / "d.safetensors", "adain", decoder.state_dict(), decoder.config.to_dict(), {})
    assert dispatch.resolve_method(StylizeOptions(style=str(style_path), decoder=str(path))) == "adain"
    with pytest.raises(BrushworkError, match="alpha must be between 0 and 1"):
        dispatch.stylize(str(style_path), style=str(style_path), method="adain", alpha=-0.1)
    with pytest.raises(BrushworkError, match="for --method adain, wct or predict"):
        dispatch.stylize(str(style_path), style="starry-night", mask=str(style_path))
    with pytest.raises(BrushworkError, match="unknown method"):
        dispatch.stylize(str(style_path), style="starry-night", method="nope")
    with pytest.raises(BrushworkError, match="expected wct"):
        WCTStylizer(str(path), device="cpu")
    image = dispatch.stylize(str(style_path), style=str(style_path), method="adain", decoder=str(path), size=32,
                             style_size=32)
    assert image.size == (32, 24)


def test_the_method_table_says_which_model_each_method_loads():
    from brushwork.methods import adain, predict, wct
    from brushwork.models.networks import FEEDFORWARD_KINDS

    table = {m.name: m for m in dispatch.registered_methods()}
    assert list(table) == dispatch.method_names()
    assert table["feedforward"].model_kinds == FEEDFORWARD_KINDS and not table["feedforward"].any_style
    any_style = {"adain": (adain.MODEL_KIND,), "wct": (wct.MODEL_KIND,), "predict": predict.ARBITRARY_KINDS}
    for name, kinds in any_style.items():
        assert table[name].model_kinds == kinds and table[name].any_style
    for method in table.values():  # front ends pass the model's path in this option
        assert hasattr(StylizeOptions(), method.model_option)


def test_onnxruntime_backend_matches_torch(adain_stylizer, vgg, content_path, style_path):
    pytest.importorskip("onnxruntime")
    ort = AdaINStylizer(adain_stylizer.decoders["relu4_1"], device="cpu", precision="fp32", backend="onnxruntime",
                        vgg=vgg)
    content = load_image(content_path)[0].contiguous()
    options = _options(str(style_path), alpha=0.7)
    expected = adain_stylizer.stylize_tensor(content, options)
    torch.testing.assert_close(ort.stylize_tensor(content, options), expected, atol=2e-3, rtol=0)


def test_exported_graphs_are_reused_from_the_cache(adain_stylizer, vgg, content_path, style_path, monkeypatch,
                                                   tmp_path):
    """A new stylizer of the same weights (a new process, a CLI call) reads its onnxruntime graphs from the
    disk cache instead of exporting them again (seconds each: WCT has ten)."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("BRUSHWORK_CACHE_DIR", str(tmp_path / "cache"))
    decoder = adain_stylizer.decoders["relu4_1"]
    content = load_image(content_path)[0].contiguous()
    first = AdaINStylizer(decoder, device="cpu", precision="fp32", backend="onnxruntime", vgg=vgg)
    expected = first.stylize_tensor(content, _options(str(style_path)))
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 2  # the encoder and the decoder

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    again = AdaINStylizer(decoder, device="cpu", precision="fp32", backend="onnxruntime", vgg=vgg)
    assert torch.equal(again.stylize_tensor(content, _options(str(style_path))), expected)


@pytest.mark.parametrize("native_bf16", [True, False])
def test_cpu_policy_adain_keeps_native_bf16_wct_does_not(vgg, monkeypatch, native_bf16):
    # On a CPU with native bf16, `auto` runs AdaIN in PyTorch bf16 (faster, 45-53 dB from fp32) but WCT,
    # whose whitening amplifies bf16's rounding (29-34 dB), in onnxruntime fp32 like the feed-forward networks.
    pytest.importorskip("onnxruntime")
    import brushwork.runtime

    monkeypatch.setattr(brushwork.runtime, "_cpu_has_fast_bf16", lambda: native_bf16)
    decoder = Decoder(DecoderConfig("relu4_1", width=0.1))
    a = AdaINStylizer(decoder, device="cpu", vgg=vgg)
    w = WCTStylizer({layer: Decoder(DecoderConfig(layer, width=0.1)) for layer in DECODER_LAYERS}, device="cpu",
                    vgg=vgg)
    assert (a.backend, a.runtime.precision) == (("torch", "bf16") if native_bf16 else ("onnxruntime", "fp32"))
    assert (w.backend, w.runtime.precision) == ("onnxruntime", "fp32")
    # An explicit choice still wins.
    b = AdaINStylizer(decoder, device="cpu", backend="onnxruntime", vgg=vgg)
    assert (b.backend, b.runtime.precision) == ("onnxruntime", "fp32")


@pytest.mark.parametrize("precision,backend", [("fp32", "torch"), ("fp32", "onnxruntime"), ("bf16", "torch")])
def test_a_callers_decoder_is_used_without_being_changed(vgg, content_path, style_path, precision, backend):
    # A decoder passed in (a training run's, a test's) keeps its gradients, training flag and layout
    # whatever the stylizer's runtime does with it; the stylizer still stylizes with its weights.
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    decoder = Decoder(DecoderConfig("relu4_1", width=0.1)).train()
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    stylizer = AdaINStylizer(decoder, device="cpu", precision=precision, backend=backend, vgg=vgg)
    out = stylizer.stylize_tensor(load_image(content_path)[0], _options(str(style_path)))
    assert out.shape[1] == 3 and torch.isfinite(out).all()
    assert decoder.training
    assert all(p.requires_grad for p in decoder.parameters())
    assert all(p.is_contiguous() for p in decoder.parameters())
    assert all(torch.equal(v, before[k]) for k, v in decoder.state_dict().items())
    # Used as it is where the runtime's layout is the decoder's own (no copy), copied where it is not.
    assert (stylizer.decoders["relu4_1"] is decoder) == (precision == "fp32")

import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.cli.main import main
from brushwork.errors import BrushworkError
from brushwork.imaging import image_to_tensor, rgb_to_yiq
from brushwork.methods import feedforward as ff
from brushwork.methods.dispatch import stylize, stylize_tensor
from brushwork.methods.feedforward import FeedForwardStylizer, receptive_radius
from brushwork.methods.one_pass import StylizeOptions, onnxruntime_available
from brushwork.models.registry import save_model
from brushwork.nets.inference import InferenceNet
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

TINY = TransformerConfig(width=8, num_residual=2)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny tensors: one thread is faster, and on a shared, loaded CPU an OpenMP team waiting for a
    # descheduled thread costs milliseconds per op.
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _random_net(config=TINY, seed=0):
    torch.manual_seed(seed)
    net = StyleTransferNet(config).eval()
    with torch.no_grad():  # non-trivial norm parameters, so that statistics matter
        for layer in net.norm_layers():
            layer.scale.normal_(1.0, 0.3)
            layer.shift.normal_(0.0, 0.3)
    return net


def _save(net, path, kind="feedforward"):
    return save_model(path, kind, net.state_dict(), net.config.to_dict(), {"name": path.stem})


@pytest.fixture
def net():
    return _random_net()


@pytest.fixture
def model_path(tmp_path, net):
    return _save(net, tmp_path / "tiny.safetensors")


def _photo(h=64, w=80, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(5 * x + seed), np.cos(3 * y), np.sin(4 * (x + y))], -1) * 0.35 + 0.5
    img += rng.normal(0, 0.05, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _one_line(exc_info):
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


# --------------------------------------------------------------------------------------------
# The network


def test_inference_net_matches_the_plain_network(net):
    x = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        assert (InferenceNet(net)(x) - net(x)).abs().max() < 1e-4


def test_style_blend_matches_conditional_norm():
    net = _random_net(TransformerConfig(width=8, num_residual=1, num_styles=3))
    x = torch.rand(1, 3, 32, 32)
    weights = torch.tensor([[0.2, 0.0, 0.8]])
    with torch.no_grad():
        ref = net(x, style=weights)
        assert (InferenceNet(net, [0.2, 0.0, 0.8])(x) - ref).abs().max() < 1e-4
        assert (InferenceNet(net, [1, 0, 4])(x) - ref).abs().max() < 1e-4  # weights are normalized
    with pytest.raises(BrushworkError):
        InferenceNet(net, [1.0, 2.0])


def test_receptive_radius_bounds_the_influence_of_a_pixel(net):
    # Change one input pixel; with frozen statistics, outputs farther than the radius must not move.
    inf = InferenceNet(net)
    x = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        affine = inf.norm_affine(x)
        x2 = x.clone()
        x2[:, :, 80, 80] += 0.5
        d = (inf(x2, affine) - inf(x, affine)).abs()[0].amax(0)
    r = receptive_radius(net)
    assert r == 8 * 2 + 15
    mask = torch.ones_like(d, dtype=torch.bool)
    mask[80 - r:80 + r + 1, 80 - r:80 + r + 1] = False
    assert d[mask].max() == 0 and d[80, 80] > 0


# --------------------------------------------------------------------------------------------
# Stylizing


def test_stylize_keeps_size_and_alpha(model_path, tmp_path):
    rgba = np.dstack([_photo(50, 70), np.linspace(0, 255, 50 * 70).reshape(50, 70).astype(np.uint8)])
    src = tmp_path / "in.png"
    Image.fromarray(rgba, "RGBA").save(src)
    out = stylize(src, model_path, backend="torch")
    assert out.size == (70, 50) and out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    rgb = stylize(Image.fromarray(_photo(37, 29)), model_path, backend="torch")
    assert rgb.size == (29, 37) and rgb.mode == "RGB"
    small = stylize(Image.fromarray(_photo(50, 70)), model_path, backend="torch", size=35)
    assert small.size == (35, 25)


def test_strength_zero_returns_the_input(model_path):
    img = Image.fromarray(_photo())
    out = stylize(img, model_path, strength=0.0, backend="torch")
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_strength_blends_linearly(model_path):
    x = torch.rand(1, 3, 32, 40)
    full = stylize_tensor(x, model_path, backend="torch")
    half = stylize_tensor(x, model_path, strength=0.5, backend="torch")
    assert torch.allclose(half, 0.5 * full + 0.5 * x, atol=1e-5)


def test_luminance_preservation_keeps_content_chroma(net):
    with torch.no_grad():  # outputs around mid-grey, so few pixels are clamped
        net.out.conv.weight.mul_(0.05)
        net.out.conv.bias.fill_(0.5)
    x = image_to_tensor(Image.fromarray(_photo()))[0]
    out = stylize_tensor(x, net, preserve_color="luminance", backend="torch")
    plain = stylize_tensor(x, net, backend="torch")
    inside = ((out > 0.01) & (out < 0.99)).all(1)  # clamping to [0, 1] may move out-of-gamut pixels
    iq_out, iq_in = rgb_to_yiq(out)[0, 1:], rgb_to_yiq(x)[0, 1:]
    assert inside.float().mean() > 0.5
    assert (iq_out - rgb_to_yiq(plain)[0, 1:]).abs().max() > 0.01  # the network did change the colours
    assert (iq_out - iq_in).abs()[:, inside[0]].max() < 1e-4
    assert torch.allclose(rgb_to_yiq(out)[0, 0][inside[0]], rgb_to_yiq(plain)[0, 0][inside[0]], atol=1e-4)


def test_histogram_preservation_matches_output_colour_statistics(model_path):
    x = image_to_tensor(Image.fromarray(_photo()))[0]
    out = stylize_tensor(x, model_path, preserve_color="histogram", backend="torch")
    mean_out, mean_in = out.mean((2, 3)), x.mean((2, 3))
    assert (mean_out - mean_in).abs().max() < 0.02


def test_onnxruntime_and_torch_backends_agree(model_path):
    x = torch.rand(1, 3, 44, 52)
    # fp32 on both sides: onnxruntime has only fp32, and `auto` precision picks bf16 on a CPU with
    # native bf16. An explicit onnxruntime backend with `auto` precision runs (in fp32), not fails.
    a = stylize_tensor(x, model_path, backend="torch", precision="fp32")
    b = stylize_tensor(x, model_path, backend="onnxruntime")
    assert (a - b).abs().max() < 1e-4
    assert FeedForwardStylizer(model_path, backend="onnxruntime").runtime.precision == "fp32"


def test_auto_backend_on_this_cpu(model_path):
    # The policy: on the CPU, onnxruntime in fp32 when it is installed (with native bf16 too), else torch.
    s = FeedForwardStylizer(model_path)
    on_cpu_with_ort = s.runtime.device.type == "cpu" and onnxruntime_available()
    assert s.backend == ("onnxruntime" if on_cpu_with_ort else "torch")
    if on_cpu_with_ort:
        assert s.runtime.precision == "fp32"
    # An explicit bf16 request is kept, in PyTorch.
    b = FeedForwardStylizer(model_path, precision="bf16", device="cpu")
    assert (b.backend, b.runtime.precision) == ("torch", "bf16")
    # ... and the backend it reports is the one that runs (an auto choice once left the ONNX session unbuilt).
    assert (s._onnx is not None) == (s.backend == "onnxruntime")


def test_stylizer_is_reused(model_path):
    a = ff.get_stylizer(StylizeOptions(style=str(model_path), backend="torch"))
    b = ff.get_stylizer(StylizeOptions(style=str(model_path), backend="torch"))
    assert a is b


def _shipped():
    from brushwork.models.registry import shipped_models

    return [m.name for m in shipped_models() if m.kind == "feedforward"]


@pytest.mark.parametrize("name", _shipped() or [pytest.param("none", marks=pytest.mark.skip("no shipped models"))])
def test_shipped_models_load_and_keep_the_size(name):
    out = stylize(Image.fromarray(_photo(40, 58)), name)
    assert out.size == (58, 40) and out.mode == "RGB"


# --------------------------------------------------------------------------------------------
# Tiling


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_tiled_matches_untiled(net, backend):
    # Statistics frozen from the whole image and margins covering the receptive field make tiling
    # exact by construction; what is left is float rounding (fp32 sums in another order): 1e-4 is
    # ~40x below one 8-bit level. Sizes that are not multiples of 4 check the alignment padding.
    # fp32: in bf16 (`auto` on a CPU with native bf16) the rounding alone exceeds the bound.
    stylizer = FeedForwardStylizer(net, backend=backend, precision="fp32")
    x = torch.rand(1, 3, 171, 229)
    untiled = stylizer.stylize_tensor(x)
    overlap = 2 * stylizer.tile_margin + 8
    tiled = stylizer.stylize_tensor(x, tile=2 * overlap, tile_overlap=overlap)
    assert ff.count_tiles(172, 232, 2 * overlap, overlap, 4) > 1
    assert (tiled - untiled).abs().max() < 1e-4


def test_per_tile_statistics_would_show(net):
    # The reason for frozen statistics: tiles normalized on their own differ a lot.
    stylizer = FeedForwardStylizer(net, backend="torch")
    x = torch.rand(1, 3, 160, 200)
    x[:, :, :, :100] *= 0.3  # halves with different statistics
    untiled = stylizer.stylize_tensor(x)
    naive = ff.map_tiles(lambda t: stylizer.forward(t), x, 88, 72, margin=stylizer.tile_margin, align=4).clamp(0, 1)
    assert (naive - untiled).abs().max() > 0.05


def test_large_images_use_downscaled_statistics_and_stay_seamless(net, monkeypatch):
    monkeypatch.setattr(ff, "STATS_PIXELS", 96 * 96)
    stylizer = FeedForwardStylizer(net, backend="torch", precision="fp32")  # fp32: as in test_tiled_matches_untiled
    x = torch.rand(1, 3, 168, 232)
    affine = stylizer.norm_affine(x)
    assert all(a.shape == (1, s.numel()) for (a, _), s in zip(affine, stylizer._module.norm_scale))
    ref = stylizer.forward(x, affine).clamp(0, 1)  # the whole image with the same frozen statistics
    tiled = stylizer.stylize_tensor(x, tile=160, tile_overlap=72)
    assert (tiled - ref).abs().max() < 1e-4


def test_tiling_progress(net):
    stylizer = FeedForwardStylizer(net, backend="torch")
    seen = []
    stylizer.stylize_tensor(torch.rand(2, 3, 120, 200), tile=144, tile_overlap=72,
                            progress=lambda p: seen.append((p.step, p.total)))
    assert seen[-1][0] == seen[-1][1] and len(seen) == seen[-1][1] > 2


def test_tiling_options_are_checked(net):
    stylizer = FeedForwardStylizer(net, backend="torch")
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(BrushworkError, match="overlap"):
        stylizer.stylize_tensor(x, tile=256, tile_overlap=20)
    with pytest.raises(BrushworkError, match="tile size"):
        stylizer.stylize_tensor(x, tile=100)


@pytest.mark.parametrize(
    "options",
    [{"strength": 1.5}, {"preserve_color": "sepia"}, {"size": 4}, {"tile": -1}, {"backend": "tensorrt"}, {"colour": 1}],
)
def test_bad_options(model_path, options):
    with pytest.raises(BrushworkError) as e:
        stylize(Image.fromarray(_photo(16, 16)), model_path, **options)
    _one_line(e)


# --------------------------------------------------------------------------------------------
# Bad model files


def _bad_models(tmp_path, net):
    cases = {}
    wide = _random_net(TransformerConfig(width=16, num_residual=2))
    p = tmp_path / "shapes.safetensors"  # tensors of a width-16 network, config says width 8
    save_model(p, "feedforward", wide.state_dict(), TINY.to_dict(), {})
    cases["wrong shapes"] = p
    good = _save(net, tmp_path / "good.safetensors")
    data = good.read_bytes()
    p = tmp_path / "truncated.safetensors"
    p.write_bytes(data[: len(data) // 2])
    cases["truncated"] = p
    p = tmp_path / "image.safetensors"
    Image.fromarray(_photo(8, 8)).save(p, format="PNG")
    cases["not safetensors"] = p
    from safetensors.torch import save_file

    p = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    cases["not a brushwork model"] = p
    cases["wrong kind"] = save_model(tmp_path / "kind.safetensors", "adain", net.state_dict(), TINY.to_dict(), {})
    state = dict(net.state_dict())
    state.pop("out.conv.bias")
    cases["missing tensor"] = save_model(tmp_path / "missing.safetensors", "feedforward", state, TINY.to_dict(), {})
    state = dict(net.state_dict())
    state["conv1.conv.weight"] = torch.full_like(state["conv1.conv.weight"], float("nan"))
    cases["nan weights"] = save_model(tmp_path / "nan.safetensors", "feedforward", state, TINY.to_dict(), {})
    cases["bad config"] = save_model(tmp_path / "config.safetensors", "feedforward", net.state_dict(), {"width": "x"},
                                     {})
    header = json.dumps({"__metadata__": {"format": "brushwork"}}).encode()
    p = tmp_path / "header.safetensors"
    p.write_bytes(struct.pack("<Q", len(header) + 100) + header)
    cases["lying header"] = p
    cases["missing file"] = tmp_path / "nope.safetensors"
    return cases


def test_bad_model_files_give_one_line_errors(tmp_path, net):
    for what, path in _bad_models(tmp_path, net).items():
        with pytest.raises(BrushworkError) as e:
            FeedForwardStylizer(path, backend="torch")
        msg = _one_line(e)
        assert path.stem in msg or "shape" in msg, (what, msg)


def test_unknown_style_names(monkeypatch, tmp_path, net):

    monkeypatch.setenv("BRUSHWORK_MODELS_DIR", str(tmp_path))
    _save(net, tmp_path / "starry-night.safetensors")
    with pytest.raises(BrushworkError) as e:
        FeedForwardStylizer("starry-nite")
    assert "starry-night" in _one_line(e)
    with pytest.raises(BrushworkError) as e:
        FeedForwardStylizer("the-scream")  # a style image preset, but no trained model
    assert "optimize" in _one_line(e)
    with pytest.raises(BrushworkError) as e:
        FeedForwardStylizer("painting.jpg")
    assert "not a model" in _one_line(e)


# --------------------------------------------------------------------------------------------
# The command line


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def test_cli_single_file(model_path, tmp_path, capsys):
    src = tmp_path / "photo.jpg"
    Image.fromarray(_photo(64, 64)).save(src)
    out = tmp_path / "out" / "styled.png"
    code, err = _run(["stylize", str(src), "--style", str(model_path), "-o", str(out), "--backend", "torch", "-q"],
                     capsys)
    assert code == 0, err
    assert Image.open(out).size == (64, 64)


def test_cli_folder_and_several_inputs(model_path, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(["a.png", "b.jpg"]):
        Image.fromarray(_photo(48, 64, seed=i)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    extra = tmp_path / "c.webp"
    Image.fromarray(_photo(64, 48)).save(extra)
    out = tmp_path / "styled"
    code, err = _run(["stylize", str(folder), str(extra), "--style", str(model_path), "-o", str(out),
                      "--strength", "0.7", "--preserve-color", "luminance", "--tile", "0", "-q"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "c.webp"]
    assert Image.open(out / "c.webp").size == (48, 64)


def test_cli_size_and_tiles(model_path, tmp_path, capsys):
    src = tmp_path / "big.png"
    Image.fromarray(_photo(100, 180)).save(src)
    out = tmp_path / "o.png"
    code, err = _run(["stylize", str(src), "--style", str(model_path), "-o", str(out), "--size", "160",
                      "--tile", "144", "--tile-overlap", "72", "-q"], capsys)
    assert code == 0, err
    assert Image.open(out).size == (160, 89)


@pytest.mark.parametrize("case", ["missing input", "not an image", "unknown style", "bad model", "file for many",
                                  "bad format"])
def test_cli_errors_are_one_line(case, model_path, tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.fromarray(_photo(32, 32)).save(photo)
    style, inputs, out = str(model_path), [str(photo)], str(tmp_path / "o.png")
    if case == "missing input":
        inputs = [str(tmp_path / "missing.jpg")]
    elif case == "not an image":
        bad = tmp_path / "notes.jpg"
        bad.write_text("hello")
        inputs = [str(bad)]
    elif case == "unknown style":
        style = "no-such-style-xyz"
    elif case == "bad model":
        style = str(tmp_path / "broken.safetensors")
        (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 20)
    elif case == "file for many":
        inputs = [str(photo), str(photo.with_name("q.png"))]
        Image.fromarray(_photo(32, 32)).save(inputs[1])
    elif case == "bad format":
        out = str(tmp_path / "o.xyz")
    code, err = _run(["stylize", *inputs, "--style", style, "-o", out, "-q"], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("brushwork: error: "), err


def test_cli_keeps_going_when_one_of_many_fails(model_path, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(_photo(32, 32)).save(folder / "good.png")
    (folder / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    code, err = _run(["stylize", str(folder), "--style", str(model_path), "-o", str(out), "-q"], capsys)
    assert code == 1 and "1 of 2" in err
    assert (out / "good.png").exists() and not (out / "bad.png").exists()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_callers_network_is_used_without_being_changed(precision):
    # A network passed in (a training run's) keeps its training flag, gradients and layout whatever the
    # stylizer's runtime: the stylizer copies the weights it needs.
    net = _random_net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    stylizer = FeedForwardStylizer(net, backend="torch", precision=precision, device="cpu")
    out = stylizer.stylize_tensor(torch.rand(1, 3, 40, 52))
    assert out.shape == (1, 3, 40, 52) and torch.isfinite(out).all()
    assert all(m.training for m in net.modules())
    assert all(p.requires_grad and p.is_contiguous() for p in net.parameters())
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())

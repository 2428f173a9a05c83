"""Every model shipped in the package, whatever its kind, loads and stylizes at the input's size
through the public entry point (`brushwork.stylize`), the way `brushwork stylize` would use it."""

import numpy as np
import pytest
from PIL import Image

import brushwork
from brushwork.models.registry import shipped_models

# How each kind is asked for: (style argument, extra options), given the model.
STYLE_IMAGE = "water-lilies"  # a preset painting, held out of every arbitrary-style training run


def _request(model):
    if model.kind == "feedforward":
        return model.name, {}
    if model.kind == "multi":
        return model.styles[-1], {"model": model.name}
    if model.kind == "arbitrary":
        return STYLE_IMAGE, {"method": "predict", "model": model.name}
    if model.kind == "adain":
        return STYLE_IMAGE, {"method": "adain", "decoder": str(model.path), "style_size": 64}
    if model.kind == "wct":
        return STYLE_IMAGE, {"method": "wct", "decoder": str(model.path), "style_size": 64}
    raise AssertionError(f"no test request for shipped model kind {model.kind!r}")


MODELS = shipped_models()


@pytest.mark.parametrize("model", MODELS or [pytest.param(None, marks=pytest.mark.skip("no shipped models"))],
                         ids=[m.name for m in MODELS] or None)
def test_shipped_model_stylizes_at_the_input_size(model):
    assert model.card.get("recipe"), f"{model.name}: the model card names no recipe"
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (40, 58, 3), dtype=np.uint8))
    style, options = _request(model)
    out = brushwork.stylize(photo, style, **options)
    assert out.size == (58, 40) and out.mode == "RGB"
    assert np.asarray(out).std() > 1  # not a flat image

"""`/v1/info`, `/v1/styles` and `/v1/models` (routes/catalog.py): what the server can paint with."""

from __future__ import annotations

import json

import numpy as np
from server_helpers import assert_error, decode, image_bytes, photo, save_tiny_model


def test_info(client):
    body = client.get("/v1/info").json()
    assert body["limits"]["max_size"] == 256
    assert [m["name"] for m in body["methods"]] == ["feedforward", "predict", "adain", "wct", "optimize"]
    # Only a per-style model in this model directory: the any-style methods are listed, not available.
    assert [m["name"] for m in body["methods"] if m["available"]] == ["feedforward", "optimize"]


def test_styles_list_presets_with_credits_thumbnails_and_fast_models(client):
    from brushwork.presets import list_style_presets

    styles = client.get("/v1/styles").json()["styles"]
    assert [s["name"] for s in styles] == [p.name for p in list_style_presets()]
    by_name = {s["name"]: s for s in styles}
    night = by_name["starry-night"]
    assert night["artist"] == "Vincent van Gogh" and "Starry Night" in night["credit"]
    assert night["fast_model"] == "starry-night" and night["methods"] == ["feedforward", "optimize"]
    assert by_name["udnie"]["fast_model"] is None and by_name["udnie"]["methods"] == ["optimize"]
    r = client.get(night["thumbnail_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert max(decode(r.content).size) <= 320
    r = client.get(night["image_url"])
    assert r.status_code == 200 and decode(r.content).size[0] > 320
    assert_error(client.get("/v1/styles/no-such-painting/thumbnail"), 404, "unknown style preset")
    assert_error(client.get("/v1/styles/..%2F..%2Fstyles.json/thumbnail"), 404)
    assert_error(client.get("/v1/styles/%2Fetc%2Fpasswd/image"), 404)


def test_models_list_the_model_directory(client, model_dir):
    models = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in models] == ["starry-night"]
    assert models[0]["kind"] == "feedforward" and models[0]["fast"] and models[0]["style"] == "starry-night"
    assert str(model_dir) not in json.dumps(models)  # no server paths
    # A model that appears while the server runs is picked up; a broken file is skipped, not fatal.
    save_tiny_model(model_dir, name="great-wave", preset="great-wave")
    (model_dir / "broken.safetensors").write_bytes(b"not a model")
    assert [m["name"] for m in client.get("/v1/models").json()["models"]] == ["great-wave", "starry-night"]
    assert client.get("/v1/styles").json()["styles"][4]["fast_model"] in (None, "great-wave")


def test_a_preset_a_multi_style_model_holds_is_painted_with_its_row(client, model_dir, save_tiny_multi):
    """As `auto` in the library: a preset with no model of its own goes to a multi-style model that holds it
    (that style's row, each row its own stylizer); a single-style model of the preset comes first."""
    from brushwork.methods.feedforward import FeedForwardStylizer
    from brushwork.methods.one_pass import StylizeOptions

    multi = save_tiny_multi(model_dir / "paintings.safetensors")  # starry-night, great-wave, udnie
    by_name = {s["name"]: s for s in client.get("/v1/styles").json()["styles"]}
    assert by_name["udnie"]["fast_model"] == "paintings" and by_name["udnie"]["methods"][0] == "feedforward"
    assert by_name["udnie"]["fast_model_kind"] == "multi"
    assert by_name["starry-night"]["fast_model_kind"] == "feedforward"
    assert by_name["starry-night"]["fast_model"] == "starry-night" and by_name["water-lilies"]["fast_model"] is None
    painted = {}
    for style in ("udnie", "great-wave", "udnie"):
        r = client.post("/v1/stylize", files=photo(image_bytes((48, 32))), data={"style": style})
        assert r.status_code == 200 and r.headers["x-brushwork-model"] == "paintings", r.text
        painted.setdefault(style, []).append(np.asarray(decode(r.content), dtype=np.int16))
    options = StylizeOptions(style="udnie", model=str(multi), device="cpu")
    expected = np.asarray(FeedForwardStylizer.from_options(options).stylize(decode(image_bytes((48, 32))), options),
                          dtype=np.int16)
    assert np.abs(painted["udnie"][0] - expected).max() <= 2  # the server's own runtime: within rounding
    assert np.array_equal(painted["udnie"][0], painted["udnie"][1])  # its stylizer kept apart from great-wave's
    assert np.abs(painted["udnie"][0] - painted["great-wave"][0]).max() > 10

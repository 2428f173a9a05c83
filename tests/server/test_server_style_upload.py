"""`POST /v1/stylize` with an uploaded style image: the one-pass any-style methods (AdaIN, style
prediction) through the dispatch table, `auto`'s choice, `/v1/info`, and the combinations that get a
422 saying which methods would work."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from server_helpers import assert_error, decode, image_bytes, make_app, photo, save_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def stripes_bytes(size=(40, 40)) -> bytes:
    """A style image unlike the photo: saturated diagonal stripes."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    palette = np.array([[230, 60, 30], [30, 80, 220], [250, 220, 40]], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(palette[((x + y) // 4) % 3]).save(buf, "PNG")
    return buf.getvalue()


def with_style(data=None, photo_data=None):
    painting = image_bytes((40, 40), seed=5) if data is None else data
    return {**photo(photo_data), "style_image": ("painting.png", painting, "image/png")}


@pytest.fixture
def any_client(any_style_model_dir, vgg):
    with TestClient(make_app(any_style_model_dir, vgg)) as c:
        yield c


@pytest.mark.parametrize("method, ran, model", [("adain", "adain", "adain"), ("predict", "predict", "arbitrary"),
                                                ("auto", "predict", "arbitrary")])
def test_an_uploaded_style_is_painted_in_one_pass(any_client, method, ran, model):
    r = any_client.post("/v1/stylize", files=with_style(photo_data=image_bytes((48, 32))), data={"method": method})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert (r.headers["x-brushwork-method"], r.headers["x-brushwork-model"]) == (ran, model)
    assert decode(r.content).size == (48, 32)
    r = any_client.post("/v1/stylize", files=with_style(photo_data=image_bytes((48, 32))),
                        data={"method": method, "size": "24", "preserve_color": "luminance", "strength": "0.5"})
    assert r.status_code == 200, r.text
    assert decode(r.content).size == (24, 16)


def test_the_uploaded_style_is_the_one_used(any_client):
    def paint(style):
        r = any_client.post("/v1/stylize", files=with_style(style), data={"method": "predict"})
        assert r.status_code == 200, r.text
        return np.asarray(decode(r.content).convert("RGB"), dtype=np.float64)

    first = paint(stripes_bytes())
    assert np.array_equal(paint(stripes_bytes()), first)  # the same style again: the same picture
    assert np.abs(paint(image_bytes((40, 40), seed=5)) - first).max() > 1


def test_named_styles_still_use_their_trained_model(any_client):
    r = any_client.post("/v1/stylize", files=photo(), data={"style": "starry-night"})
    assert r.status_code == 200, r.text
    assert (r.headers["x-brushwork-method"], r.headers["x-brushwork-model"]) == ("feedforward", "starry-night")


def test_info_lists_which_one_pass_methods_are_here(any_client, client):
    methods = {m["name"]: m for m in any_client.get("/v1/info").json()["methods"]}
    assert list(methods) == ["feedforward", "predict", "adain", "wct", "optimize"]
    assert methods["adain"]["available"] and not methods["adain"]["auto"] and methods["adain"]["model"] == "adain"
    assert methods["predict"]["available"] and methods["predict"]["auto"]
    assert not methods["wct"]["available"] and methods["wct"]["model"] is None
    assert all(m["style_image"] for name, m in methods.items() if name != "feedforward")
    bare = {m["name"]: m for m in client.get("/v1/info").json()["methods"]}  # only a per-style model here
    assert not any(bare[name]["available"] for name in ("adain", "wct", "predict"))
    assert bare["feedforward"]["available"] and bare["optimize"]["available"]


def test_auto_takes_the_next_method_when_there_is_no_adain_decoder(tmp_path, vgg, save_tiny_arbitrary):
    save_tiny_model(tmp_path)
    save_tiny_arbitrary(tmp_path / "arbitrary.safetensors")
    with TestClient(make_app(tmp_path, vgg)) as c:
        assert [m["name"] for m in c.get("/v1/info").json()["methods"] if m["auto"]] == ["feedforward", "predict"]
        r = c.post("/v1/stylize", files=with_style(), data={"size": "20"})
        assert r.status_code == 200, r.text
        assert r.headers["x-brushwork-method"] == "predict"


def test_bad_combinations_say_which_methods_would_work(any_client, client):
    def post(c, files=None, **form):
        return c.post("/v1/stylize", files=files or photo(), data=form)

    for alias in ("feedforward", "fast"):
        assert_error(post(any_client, with_style(), method=alias), 422, "named style", "predict or adain")
    assert_error(post(any_client, with_style(), method="wct"), 422, "wct is not available", "predict or adain")
    message = assert_error(post(any_client, style="udnie", method="feedforward"), 422,
                           "no trained model for style 'udnie'", "predict or adain", "optimize")
    assert "\n" not in message
    assert_error(post(any_client, style="no-such-painting", method="adain"), 422, "unknown style")
    assert_error(post(any_client, with_style(), style="starry-night"), 422, "not both")
    assert_error(post(any_client, method="magic", style="starry-night"), 422, "unknown method",
                 "adain", "predict", "wct")
    # A server with only per-style models: the style image goes to an optimize job.
    assert_error(post(client, with_style()), 422, "no one-pass method for a style image", "optimize")
    assert_error(post(client, with_style(), method="adain"), 422, "adain is not available", "optimize")
    assert_error(post(client, style="udnie"), 422, "no trained model for style 'udnie'", "optimize")


def test_style_image_uploads_keep_the_server_limits(any_style_model_dir, vgg):
    with TestClient(make_app(any_style_model_dir, vgg, max_upload_bytes=4000, max_pixels=60 * 60)) as c:
        def post(style):
            return c.post("/v1/stylize", files=with_style(style, image_bytes((24, 16))), data={"method": "adain"})

        assert_error(post(b"GIF89a garbage"), 400, "the style image")
        assert_error(post(b""), 400, "the style image", "empty")
        assert_error(post(image_bytes((64, 64))), 413, "the style image", "too large")  # over the pixel limit
        assert_error(post(np.random.default_rng(0).bytes(5000)), 413, "the style image", "4,000 bytes")
        r = c.post("/v1/stylize", files={**photo(image_bytes((24, 16))),
                                         "style_image": ("s.txt", image_bytes((40, 40)), "text/plain")},
                   data={"method": "adain"})
        assert_error(r, 415, "the style image")
        assert post(image_bytes((40, 40))).status_code == 200


@pytest.mark.parametrize("method, ran", [("auto", "predict"), ("adain", "adain"), ("predict", "predict")])
def test_a_preset_painting_without_a_trained_model_is_painted_in_one_pass(any_client, method, ran):
    """udnie has no trained model on this server: its painting goes through an any-style method, and is
    the style used (the same result as uploading the preset's image)."""
    from brushwork.presets import resolve_style

    r = any_client.post("/v1/stylize", files=photo(image_bytes((48, 32))), data={"style": "udnie", "method": method})
    assert r.status_code == 200, r.text
    assert r.headers["x-brushwork-method"] == ran and decode(r.content).size == (48, 32)
    upload = {**photo(image_bytes((48, 32))), "style_image": ("udnie.jpg", resolve_style("udnie").read_bytes(),
                                                              "image/jpeg")}
    uploaded = any_client.post("/v1/stylize", files=upload, data={"method": ran})
    assert uploaded.status_code == 200, uploaded.text
    a = np.asarray(decode(r.content).convert("RGB"), dtype=np.float64)
    b = np.asarray(decode(uploaded.content).convert("RGB"), dtype=np.float64)
    # The server decodes uploads at most STYLE_IMAGE_SIDE px; the preset file is read as it is: nearly equal.
    assert np.abs(a - b).mean() < 3
    styles = {s["name"]: s for s in any_client.get("/v1/styles").json()["styles"]}
    assert styles["udnie"]["methods"] == ["predict", "adain", "optimize"]


def test_alpha_reaches_adain_and_is_refused_elsewhere(any_client):
    def post(**form):
        return any_client.post("/v1/stylize", files=with_style(stripes_bytes()), data=form)

    full, none = post(method="adain"), post(method="adain", alpha="0")
    assert full.status_code == none.status_code == 200, none.text
    a = np.asarray(decode(full.content).convert("RGB"), dtype=np.float64)
    b = np.asarray(decode(none.content).convert("RGB"), dtype=np.float64)
    assert np.abs(a - b).mean() > 1  # alpha 0 is the decoder's reconstruction of the photo, not the styled result
    assert_error(post(method="predict", alpha="0.5"), 422, "alpha")
    assert_error(post(method="adain", alpha="1.5"), 422, "alpha must be between 0 and 1")

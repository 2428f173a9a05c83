"""`POST /v1/stylize` (routes/stylize.py) with a named style: the image, its options, the errors a client can
cause, and 503 when busy. Uploaded style images: test_server_style_upload.py."""

from __future__ import annotations

import threading

import numpy as np
from fastapi.testclient import TestClient
from server_helpers import assert_error, decode, image_bytes, photo


def test_stylize_returns_a_png_of_the_right_size(client):
    r = client.post("/v1/stylize", files=photo(image_bytes((48, 32))), data={"style": "starry-night"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-brushwork-model"] == "starry-night"
    assert decode(r.content).size == (48, 32)
    r = client.post("/v1/stylize", files=photo(image_bytes((48, 32))),
                    data={"style": "Starry_Night", "size": "24", "method": "fast", "preserve_color": "luminance"})
    assert r.status_code == 200, r.text
    assert decode(r.content).size == (24, 16)


def test_stylize_strength_zero_returns_the_photo(client):
    data = image_bytes((40, 24), seed=3)
    r = client.post("/v1/stylize", files=photo(data), data={"style": "starry-night", "strength": "0"})
    assert r.status_code == 200, r.text
    out = np.asarray(decode(r.content).convert("RGB"), dtype=np.float64)
    original = np.asarray(decode(data).convert("RGB"), dtype=np.float64)
    assert np.abs(out - original).max() <= 1.0


def test_stylize_honours_exif_rotation_and_keeps_alpha(client):
    rotated = image_bytes((40, 24), fmt="JPEG", exif_orientation=6)  # stored landscape, shown portrait
    r = client.post("/v1/stylize", files=photo(rotated, "phone.jpg", "image/jpeg"), data={"style": "starry-night"})
    assert r.status_code == 200, r.text
    assert decode(r.content).size == (24, 40)
    r = client.post("/v1/stylize", files=photo(image_bytes((32, 32), mode="RGBA")), data={"style": "starry-night"})
    out = decode(r.content)
    assert out.mode == "RGBA" and out.getchannel("A").getextrema() == (0, 255)


def test_stylize_bad_options_and_styles(client):
    post = lambda **form: client.post("/v1/stylize", files=photo(), data=form)  # noqa: E731
    assert_error(post(style="udnie"), 422, "no trained model for style 'udnie'", "optimize")
    assert_error(post(style="no-such-style"), 422, "unknown style")
    assert_error(post(), 422, "missing style")
    assert_error(post(style="starry-night", method="optimize"), 422, "/v1/jobs")
    assert_error(post(style="starry-night", method="magic"), 422, "unknown method")
    assert_error(post(style="starry-night", strength="1.5"), 422, "strength")
    assert_error(post(style="starry-night", strength="nan"), 422, "strength")
    assert_error(post(style="starry-night", strength="strong"), 422, "strength")
    assert_error(post(style="starry-night", size="4096"), 422, "size")
    assert_error(post(style="starry-night", size="8"), 422, "size")
    assert_error(post(style="starry-night", preserve_color="sepia"), 422, "colour")
    assert_error(post(style="starry-night", refine_steps="31"), 422, "refine_steps must be between 0 and 30")
    assert_error(post(style="starry-night", refine_steps="2"), 422, "refine-steps is for method adain or wct")
    assert_error(post(style="starry-night", steps="3"), 422, "unknown field 'steps'")
    assert_error(post(style="starry-night", vgg_weights="/etc/passwd"), 422, "cannot be set over HTTP")
    r = client.post("/v1/stylize", files={**photo(), "style_image": ("s.png", image_bytes(), "image/png")})
    assert_error(r, 422, "no one-pass method for a style image", "optimize")  # more in test_server_style_upload.py
    r = client.post("/v1/stylize", files={**photo(), "style_image": ("s.png", image_bytes(), "image/png")},
                    data={"style": "starry-night"})
    assert_error(r, 422, "not both")
    assert_error(client.post("/v1/stylize", data={"style": "starry-night"}, files={"x": ("x", b"x")}), 422, "photo")



def test_stylize_answers_503_when_busy(app_factory):
    app = app_factory(stylize_workers=1, stylize_queue=0)
    release, entered = threading.Event(), threading.Event()

    class SlowStylizer:
        def stylize(self, image, options):
            entered.set()
            release.wait(30)
            return image

    app.state.catalog.stylizer = lambda entry, style=None: SlowStylizer()
    with TestClient(app) as client:
        first = {}
        t = threading.Thread(target=lambda: first.setdefault("r", client.post(
            "/v1/stylize", files=photo(), data={"style": "starry-night"})))
        t.start()
        try:
            assert entered.wait(30)
            r = client.post("/v1/stylize", files=photo(), data={"style": "starry-night"})
            assert_error(r, 503, "try again")
            assert int(r.headers["retry-after"]) >= 1
        finally:
            release.set()
            t.join(30)
        assert first["r"].status_code == 200

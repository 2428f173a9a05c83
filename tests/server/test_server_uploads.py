"""Bad uploads on both upload endpoints (uploads.py): not images, too large, not multipart."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_helpers import assert_error, bomb_png, image_bytes, job_form, photo


@pytest.mark.parametrize("endpoint", ["/v1/stylize", "/v1/jobs"])
def test_bad_uploads(endpoint, app_factory):
    form = {"style": "starry-night"} if endpoint == "/v1/stylize" else job_form()
    with TestClient(app_factory(max_upload_bytes=4000, max_pixels=60 * 60)) as client:
        def post(files):
            return client.post(endpoint, files=files, data=form)

        assert_error(post(photo(b"this is not an image", "p.png")), 400, "the photo", "not an image")
        truncated = image_bytes((48, 32))[:-30]
        assert_error(post(photo(truncated)), 400, "the photo")
        corrupt = bytearray(image_bytes((48, 32)))
        corrupt[60:90] = b"\xff" * 30
        assert_error(post(photo(bytes(corrupt))), 400, "the photo")
        assert_error(post(photo(b"")), 400, "empty")
        assert_error(post(photo(image_bytes((64, 64)))), 413, "too large")  # over the pixel limit
        assert_error(post(photo(bomb_png())), 413, "too large")  # refused from the header alone
        assert_error(post(photo(np.random.default_rng(0).bytes(5000))), 413, "4,000 bytes")
        assert_error(post(photo(image_bytes(), "p.txt", "text/plain")), 415, "image")
        assert_error(post(photo(image_bytes(), "p.json", "application/json")), 415, "image")
        # An upload that is not multipart at all.
        assert_error(client.post(endpoint, json={"photo": "x"}), 415, "multipart/form-data")
        assert_error(client.post(endpoint, content=b"photo=x", headers={"content-type": "text/plain"}), 415)
        # A body over the request limit: refused from Content-Length, or while reading a chunked body.
        big = b"x" * (2 * 4000 + 1024 * 1024 + 10)
        assert_error(post({"photo": ("p.png", big, "image/png")}), 413, "request too large")

        def chunks():
            for _ in range(12):
                yield b"y" * (100 * 1024)

        r = client.post(endpoint, content=chunks(), headers={"content-type": "multipart/form-data; boundary=zz"})
        assert_error(r, 413, "request too large")
        # The server still works.
        ok = post(photo(image_bytes((24, 16))))
        assert ok.status_code in (200, 202), ok.text


def test_bad_style_image_upload(client):
    files = {**photo(), "style_image": ("s.png", b"GIF89a garbage", "image/gif")}
    assert_error(client.post("/v1/jobs", files=files, data=job_form(style=None)), 400, "the style image")

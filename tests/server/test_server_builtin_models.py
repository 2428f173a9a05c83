"""The built-in models over HTTP: Magenta's arbitrary-style network is what `auto` paints an uploaded or
named painting with, and the 26-style network's styles are listed, shown (thumbnails painted by the
network) and painted by name."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from server_helpers import assert_error, decode, image_bytes, make_app, photo, save_tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def builtin_client(tmp_path_factory, vgg, save_tiny_adain):
    d = tmp_path_factory.mktemp("models")
    save_tiny_model(d)
    save_tiny_adain(d / "adain.safetensors")
    with TestClient(make_app(d, vgg, builtin_models=True)) as c:
        yield c


def test_the_network_styles_are_listed_with_thumbnails_and_painted_by_name(builtin_client):
    styles = {s["name"]: s for s in builtin_client.get("/v1/styles").json()["styles"]}
    swirl = styles["swirling-blue"]
    assert swirl["fast_model"] == "magenta-26" and swirl["methods"] == ["feedforward"] and swirl["image_url"] is None
    assert sum(1 for s in styles.values() if s["fast_model"] == "magenta-26") == 26
    r = builtin_client.get(swirl["thumbnail_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert max(decode(r.content).size) == 320
    r = builtin_client.post("/v1/stylize", files=photo(image_bytes((48, 32))), data={"style": "swirling-blue"})
    assert r.status_code == 200, r.text
    assert (r.headers["x-brushwork-method"], r.headers["x-brushwork-model"]) == ("feedforward", "magenta-26")
    assert decode(r.content).size == (48, 32)
    assert_error(builtin_client.get("/v1/styles/no-such-style/thumbnail"), 404, "unknown style")


def test_a_painting_goes_to_magentas_network(builtin_client):
    models = {m["name"]: m for m in builtin_client.get("/v1/models").json()["models"]}
    assert models["magenta-arbitrary"]["kind"] == "arbitrary" and models["magenta-26"]["kind"] == "multi"
    methods = {m["name"]: m for m in builtin_client.get("/v1/info").json()["methods"]}
    assert methods["predict"]["auto"] and methods["predict"]["model"] == "magenta-arbitrary"
    upload = {**photo(image_bytes((48, 32))), "style_image": ("p.png", image_bytes((64, 64), seed=3), "image/png")}
    r = builtin_client.post("/v1/stylize", files=upload)
    assert r.status_code == 200, r.text
    assert (r.headers["x-brushwork-method"], r.headers["x-brushwork-model"]) == ("predict", "magenta-arbitrary")
    r = builtin_client.post("/v1/stylize", files=photo(image_bytes((48, 32))), data={"style": "water-lilies"})
    assert r.status_code == 200, r.text
    assert r.headers["x-brushwork-model"] == "magenta-arbitrary"

"""Fixtures for the server tests: a tiny feed-forward model in a temporary model directory (and one
with the models of the any-style methods too), apps built from `create_app(ServerConfig(...))`, and
small images as uploaded bytes."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from server_helpers import make_app, save_tiny_model  # noqa: E402


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    save_tiny_model(d)
    return d


@pytest.fixture(scope="module")
def any_style_model_dir(tmp_path_factory, save_tiny_adain, save_tiny_arbitrary):
    """The tiny feed-forward model plus an AdaIN decoder and an arbitrary-style model (no WCT decoders).
    Module-scoped: the server keeps these stylizers by model file, so each network is loaded (and
    exported to onnxruntime) once per module rather than once per test."""
    d = tmp_path_factory.mktemp("any-style-models")
    save_tiny_model(d)
    save_tiny_adain(d / "adain.safetensors")
    save_tiny_arbitrary(d / "arbitrary.safetensors")
    return d


@pytest.fixture
def app_factory(model_dir, vgg):
    def factory(**overrides):
        return make_app(model_dir, vgg, **overrides)

    return factory


@pytest.fixture
def client(app_factory):
    from fastapi.testclient import TestClient

    with TestClient(app_factory()) as c:
        yield c

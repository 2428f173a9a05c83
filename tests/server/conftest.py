"""Fixtures for the server tests: a tiny feed-forward model in a temporary model directory, apps built
from `create_app(ServerConfig(...))`, and small images as uploaded bytes."""

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

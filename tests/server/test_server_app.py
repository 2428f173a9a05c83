"""The assembled app (`create_app`): the page and its static files, and an OpenAPI description of every route."""

from __future__ import annotations

import re
from pathlib import Path

from server_helpers import assert_error

STATIC = Path(__file__).resolve().parents[2] / "brushwork" / "server" / "static"


def test_page_and_static_files_are_served_without_external_links(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "/static/app.js" in html and "/static/app.css" in html
    for name, ctype in (("app.js", "javascript"), ("app.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and ctype in r.headers["content-type"]
    for f in STATIC.iterdir():  # nothing the page loads comes from elsewhere (no CDN, no fonts)
        text = f.read_text(encoding="utf-8").replace("http://www.w3.org/2000/svg", "")  # a namespace, not a link
        assert not re.search(r"https?://", text), f"{f.name} links outside the app"
    assert_error(client.get("/static/../app.py"), 404)
    assert_error(client.get("/no/such/page"), 404)


def test_openapi_describes_every_endpoint(client):
    spec = client.get("/v1/openapi.json").json()
    paths = spec["paths"]
    for path, method in [("/v1/styles", "get"), ("/v1/models", "get"), ("/v1/stylize", "post"), ("/v1/jobs", "post"),
                         ("/v1/jobs/{job_id}", "get"), ("/v1/jobs/{job_id}", "delete"),
                         ("/v1/jobs/{job_id}/events", "get"), ("/v1/jobs/{job_id}/result", "get"),
                         ("/v1/styles/{name}/thumbnail", "get"), ("/v1/info", "get")]:
        assert method in paths[path], (path, method)
    # The job form is built from OptimizeOptions: its fields and help texts, minus server-only ones.
    ref = paths["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    props = schema["properties"]
    for name in ("photo", "style", "style_image", "size", "steps", "scales", "style_weight", "preserve_color"):
        assert name in props
    assert "optimizer" in props["optimizer"]["description"]
    for name in ("vgg_weights", "mask", "device", "precision"):
        assert name not in props
    assert schema["required"] == ["photo"]

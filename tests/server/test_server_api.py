"""The HTTP API against the real app (FastAPI's TestClient): every endpoint and every error a client can cause."""

from __future__ import annotations

import base64
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server_helpers import assert_error, bomb_png, decode, image_bytes, photo, save_tiny_model, wait_for

STATIC = Path(__file__).resolve().parents[2] / "brushwork" / "server" / "static"


def job_form(**overrides):
    form = {"style": "udnie", "size": "32", "steps": "2", "scales": "1"}
    form.update({k: str(v) for k, v in overrides.items()})
    return {k: v for k, v in form.items() if v != "None"}


def start_job(client, files=None, **form):
    r = client.post("/v1/jobs", files=files or photo(), data=job_form(**form))
    assert r.status_code == 202, r.text
    return r.json()


def wait_state(client, job_id, states=("done", "failed", "cancelled"), timeout=120):
    def check():
        body = client.get(f"/v1/jobs/{job_id}").json()
        return body if body.get("state") in states else None

    return wait_for(check, timeout, 0.05, f"job to reach {states}")


# ---------------------------------------------------------------------------------------------
# Page, static files, OpenAPI, catalog


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


# ---------------------------------------------------------------------------------------------
# Fast stylization


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


def test_stylize_without_the_fast_method_installed(client, monkeypatch):
    import brushwork.server.app as server_app

    monkeypatch.setattr(server_app, "fast_method_available", lambda: False)
    assert_error(client.post("/v1/stylize", files=photo(), data={"style": "starry-night"}), 422,
                 "not installed", "optimize")
    r = client.post("/v1/stylize", files={**photo(), "style_image": ("s.png", image_bytes(), "image/png")})
    assert_error(r, 422, "no one-pass method for a style image", "optimize")
    assert client.get("/v1/styles").json()["styles"][0]["fast_model"] is None


# ---------------------------------------------------------------------------------------------
# Bad uploads (both endpoints)


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


# ---------------------------------------------------------------------------------------------
# Optimization jobs


def test_job_runs_reports_progress_and_returns_the_result(client):
    job = start_job(client)
    assert job["state"] in ("queued", "running") and job["total"] == 2
    assert len(job["id"]) >= 22 and re.fullmatch(r"[A-Za-z0-9_-]+", job["id"])
    done = wait_state(client, job["id"])
    assert done["state"] == "done", done
    assert done["step"] == 2 and done["progress"] == 1.0 and {"content", "style", "total"} <= set(done["losses"])
    assert done["result_url"] == f"/v1/jobs/{job['id']}/result"
    r = client.get(done["result_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert decode(r.content).size == (32, 21)
    r = client.get(f"/v1/jobs/{job['id']}/preview")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    # Deleting a finished job frees its result; the id is gone afterwards.
    r = client.delete(f"/v1/jobs/{job['id']}")
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert_error(client.get(f"/v1/jobs/{job['id']}"), 404, "unknown or expired")
    assert_error(client.get(f"/v1/jobs/{job['id']}/result"), 404)


def test_job_events_stream_progress_previews_and_end(client):
    job = start_job(client, steps=3)
    events = []
    with client.stream("GET", job["events_url"]) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[-1] == "end" and events[-1][1]["state"] == "done"
    steps = [d["step"] for k, d in events if k == "progress"]
    assert steps == sorted(steps) and steps[-1] == 3
    previews = [d for k, d in events if k == "preview"]
    assert previews and previews[-1]["image"].startswith("data:image/jpeg;base64,")
    preview = decode(base64.b64decode(previews[-1]["image"].split(",", 1)[1]))
    assert preview.size == (32, 21)


def test_job_with_an_uploaded_style_image_and_options(client):
    files = {**photo(image_bytes((40, 30))), "style_image": ("mine.jpg", image_bytes((30, 30), "JPEG", seed=5),
                                                          "image/jpeg")}
    r = client.post("/v1/jobs", files=files, data=job_form(style=None, optimizer="adam", learning_rate="2",
                                                           content_layers="relu3_1:1,relu4_2:0.5",
                                                           preserve_color="luminance", init="noise", tv_weight="1"))
    assert r.status_code == 202, r.text
    done = wait_state(client, r.json()["id"])
    assert done["state"] == "done", done
    assert "tv" in done["losses"]


def test_job_bad_options(client):
    post = lambda files=None, **form: client.post("/v1/jobs", files=files or photo(), data=job_form(**form))  # noqa: E731
    assert_error(post(style="no-such-painting"), 422, "unknown style preset")
    assert_error(post(style=None), 422, "missing style")
    files = {**photo(), "style_image": ("s.png", image_bytes(), "image/png")}
    assert_error(post(files=files), 422, "not both")
    assert_error(post(steps="501"), 422, "steps must be at most 500")
    assert_error(post(steps="-1"), 422, "steps")
    assert_error(post(steps="many"), 422, "steps")
    assert_error(post(size="300"), 422, "at most 256")
    assert_error(post(size="32", scales="3"), 422, "scales")
    assert_error(post(optimizer="sgd"), 422, "optimizer")
    assert_error(post(learning_rate="-1"), 422, "learning rate")
    assert_error(post(style_weight="inf"), 422, "style weight")
    assert_error(post(style_scale="100"), 422, "style scale")
    assert_error(post(content_layers="relu9_9"), 422, "relu9_9")
    assert_error(post(style_layers="relu1_1:heavy"), 422, "style_layers")
    assert_error(post(init="/etc/passwd"), 422, "init must be content or noise")
    assert_error(post(method="feedforward"), 422, "/v1/stylize")
    assert_error(post(mask="/etc/passwd"), 422, "cannot be set over HTTP")
    assert_error(post(vgg_weights="/tmp/x.pth"), 422, "cannot be set over HTTP")
    assert_error(post(device="cuda"), 422, "cannot be set over HTTP")
    assert_error(post(colour="blue"), 422, "unknown field 'colour'")
    assert_error(client.post("/v1/jobs", data=job_form(), files={"x": ("x", b"x")}), 422, "missing field 'photo'")
    assert client.get("/v1/info").json()["jobs"]["stored"] == 0  # none of these made a job


def test_unknown_job_ids(client):
    for path in ("/v1/jobs/nope", "/v1/jobs/nope/result", "/v1/jobs/nope/events", "/v1/jobs/nope/preview"):
        assert_error(client.get(path), 404, "unknown or expired")
    assert_error(client.get("/v1/jobs/..%2F..%2Fetc%2Fpasswd"), 404)
    assert_error(client.delete("/v1/jobs/nope"), 404)


def test_cancel_a_running_job_frees_its_worker(app_factory):
    with TestClient(app_factory(workers=1, max_steps=100000)) as client:
        job = start_job(client, steps=100000)
        wait_for(lambda: client.get(job["url"]).json()["step"] >= 1, 60, what="the job to make progress")
        assert_error(client.get(job["url"] + "/result"), 409, "running")
        r = client.delete(job["url"])
        assert r.status_code in (200, 202) and r.json()["state"] in ("running", "cancelled")
        done = wait_state(client, job["id"], timeout=30)
        assert done["state"] == "cancelled" and done["step"] < 100000
        assert_error(client.get(job["url"] + "/result"), 409, "cancelled")
        # The worker is free: the next job runs to the end.
        assert wait_state(client, start_job(client)["id"])["state"] == "done"
        wait_for(lambda: client.get("/v1/info").json()["jobs"]["running"] == 0, 10, what="the worker to idle")


def test_full_queue_answers_503_with_retry_after(app_factory):
    with TestClient(app_factory(workers=1, queue_size=1, max_steps=100000)) as client:
        running = start_job(client, steps=100000)
        wait_for(lambda: client.get(running["url"]).json()["state"] == "running", 60, what="the job to start")
        queued = start_job(client)
        assert client.get(queued["url"]).json()["queue_position"] == 1
        r = client.post("/v1/jobs", files=photo(), data=job_form())
        assert_error(r, 503, "queue is full")
        assert int(r.headers["retry-after"]) >= 1
        # Cancelling a queued job drops it at once; then there is room again.
        r = client.delete(queued["url"])
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert_error(client.get(queued["url"] + "/result"), 409, "cancelled")
        again = start_job(client)
        client.delete(again["url"])
        client.delete(running["url"])
        assert wait_state(client, running["id"], timeout=30)["state"] == "cancelled"


def test_results_expire(app_factory):
    with TestClient(app_factory(result_ttl=0.3)) as client:
        job = start_job(client)
        assert wait_state(client, job["id"])["state"] == "done"
        wait_for(lambda: client.get(job["url"]).status_code == 404, 10, what="the result to expire")
        assert_error(client.get(job["url"] + "/result"), 404, "expired")


def test_a_crashing_job_fails_alone_and_the_worker_lives_on(client, monkeypatch):
    import brushwork.methods.optimize as optimize

    real = optimize.run_optimization

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(optimize, "run_optimization", broken)
    failed = wait_state(client, start_job(client)["id"])
    assert failed["state"] == "failed" and "internal error" in failed["error"] and "boom" in failed["error"]
    assert_error(client.get(failed["url"] + "/result"), 409, "failed")
    monkeypatch.setattr(optimize, "run_optimization", real)
    assert wait_state(client, start_job(client)["id"])["state"] == "done"


def test_job_manager_keeps_at_most_max_jobs():
    from brushwork.server.jobs import JobManager

    jobs = JobManager(workers=1, queue_size=10, ttl=60, max_jobs=2)
    jobs.start()
    try:
        ids = [jobs.submit("test", lambda job: job.update(result=b"x")).id for _ in range(4)]
        # Read each job once: it may be evicted between two lookups.
        wait_for(lambda: all((job := jobs.get(i)) is None or job.state == "done" for i in ids), 10)
        assert [jobs.get(i) is not None for i in ids] == [False, False, True, True]
    finally:
        jobs.stop()

"""Property tests of the HTTP API's parsing of outside input: form fields of any name and value, uploads of
any bytes, file name and content type, and raw bodies that are not well-formed multipart. Every request gets
a JSON error with a 4xx status (or a 503 with Retry-After when the server is busy, which a client retries),
or a well-formed result; never a 500."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from server_helpers import bomb_png, image_bytes, make_app, save_tiny_model, wait_state

pytest.importorskip("hypothesis")
from clips import make_clip  # noqa: E402
from fuzzing import fuzz  # noqa: E402
from hypothesis import event, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from brushwork.methods.optimize import OptimizeOptions  # noqa: E402
from brushwork.server.routes.stylize import STYLIZE_FIELDS  # noqa: E402
from brushwork.server.routes.videos import VIDEO_FIELDS  # noqa: E402

JOB_FIELDS = ["photo", "style", "style_image", "method",
              *(f for f in OptimizeOptions.__dataclass_fields__ if f not in ("device", "precision"))]
FUZZ = fuzz(80, deadline_ms=10_000)


@pytest.fixture(scope="module")
def client(tmp_path_factory, vgg):
    d = tmp_path_factory.mktemp("models")
    save_tiny_model(d)
    # Small limits, so that a fuzzed size or steps value stays cheap and the limits themselves are hit.
    app = make_app(d, vgg, max_upload_bytes=20_000, max_pixels=128 * 128, max_size=64, max_steps=3,
                   queue_size=2, max_video_bytes=40_000, max_video_frames=2)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


values = (st.text(max_size=20) | st.integers(-10**12, 10**12).map(str) | st.sampled_from(
    ["nan", "inf", "-inf", "1e309", "0", "1", "0.5", "32", "9" * 40, "starry-night", "udnie", "auto", "adain",
     "optimize", "feedforward", "noise", "content", "relu4_2:1", "relu1_1:nan", ",", ":", "", "true"]))


def damaged(data: bytes, cut: int, flips: list[int]) -> bytes:
    out = bytearray(data[: max(1, len(data) - cut)])
    for i in flips:
        out[i % len(out)] ^= 0x5A
    return bytes(out)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", w=32, h=24, frames=3).read_bytes()


uploads = st.one_of(
    st.binary(max_size=512),
    st.builds(image_bytes, st.tuples(st.integers(1, 40), st.integers(1, 40)),
              st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP"])),
    st.builds(damaged, st.just(image_bytes((24, 16))), st.integers(0, 400), st.lists(st.integers(0, 10**6),
                                                                                     max_size=4)),
    st.just(bomb_png()),
    st.just(np.random.default_rng(1).bytes(30_000)),  # over the upload limit
)
ctypes = st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", "text/plain", "", "image/x-weird",
                          "application/json", "multipart/mixed", "video/mp4", "video/x-weird"])
filenames = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


def check(r, image: bool = False) -> None:
    """No 500; errors are one-line JSON; with `image`, a success is a PNG."""
    event(f"HTTP {r.status_code}")  # shown by --hypothesis-show-statistics: what the examples reached
    assert r.status_code != 500, r.text
    if r.status_code == 503:
        assert "retry-after" in r.headers
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/json"), r.text
        body = r.json()
        assert set(body) == {"error"} and body["error"] and "\n" not in body["error"]
        assert r.status_code < 500 or r.status_code == 503
    elif r.status_code == 200 and image:
        assert r.headers["content-type"] == "image/png" and r.content.startswith(b"\x89PNG")


VALID_FORMS = {"/v1/stylize": {"style": "starry-night"},
               "/v1/jobs": {"style": "udnie", "size": "32", "steps": "1", "scales": "1"},
               "/v1/video-jobs": {"style": "starry-night", "size": "32"}}
ENDPOINTS = list(VALID_FORMS)
KNOWN_FIELDS = {"/v1/stylize": list(STYLIZE_FIELDS), "/v1/jobs": JOB_FIELDS, "/v1/video-jobs": list(VIDEO_FIELDS)}


def main_upload(endpoint: str, clip: bytes) -> dict:
    """The upload a valid request of `endpoint` carries: a photo, or a video for a video job."""
    if endpoint == "/v1/video-jobs":
        return {"video": ("clip.mp4", clip, "video/mp4")}
    return {"photo": ("photo.png", image_bytes((24, 16)), "image/png")}


@FUZZ
@given(st.sampled_from(ENDPOINTS), st.data())
def test_form_fields(client, clip, endpoint, draw):
    """A valid request with some of its fields changed, added or dropped: every check of the form is
    reached, not only the first."""
    known = KNOWN_FIELDS[endpoint]
    names = st.sampled_from([n for n in known if n not in ("photo", "video", "style_image")]) | st.text(max_size=10)
    form = dict(VALID_FORMS[endpoint])
    for name, value in draw.draw(st.lists(st.tuples(names, values | st.none()), max_size=3)):
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    r = client.post(endpoint, data=form, files=main_upload(endpoint, clip))
    check(r, image=endpoint == "/v1/stylize")
    if r.status_code == 202:  # a job was queued: cancel it, it is not what is tested here
        job = r.json()["id"]
        check(client.delete(f"/v1/jobs/{job}"))


@FUZZ
@given(st.sampled_from(ENDPOINTS), st.data())
def test_uploads(client, clip, endpoint, draw):
    """A valid form with its uploads replaced by any bytes, under any file name and content type (for a
    video job, also its clip cut short or with bytes flipped)."""
    files = main_upload(endpoint, clip)
    main = next(iter(files))
    some_bytes = uploads
    if main == "video":
        some_bytes = uploads | st.builds(damaged, st.just(clip), st.integers(0, len(clip) - 1),
                                         st.lists(st.integers(0, 10**6), max_size=4))
    for field in draw.draw(st.lists(st.sampled_from([main, "style_image", "other"]), min_size=1, max_size=2,
                                    unique=True)):
        name = draw.draw(st.just(f"{field}.png") | filenames)
        files[field] = (name, draw.draw(some_bytes), draw.draw(st.just("image/png") | ctypes))
    form = dict(VALID_FORMS[endpoint])
    if "style_image" in files:
        form.pop("style")
    r = client.post(endpoint, data=form, files=files)
    check(r, image=endpoint == "/v1/stylize")
    if r.status_code == 202 and endpoint == "/v1/video-jobs":  # a damaged clip FFmpeg accepted: painted or failed
        done = wait_state(client, r.json()["id"], timeout=60)
        assert done["state"] in ("done", "failed") and not (done["error"] or "").startswith("internal error"), done
    elif r.status_code == 202:
        check(client.delete(f"/v1/jobs/{r.json()['id']}"))


@FUZZ
@given(st.sampled_from(ENDPOINTS),
       st.sampled_from(["multipart/form-data; boundary=zz", "multipart/form-data", "multipart/form-data; boundary=",
                        "multipart/form-data; boundary=\"zz", "multipart/form-data; charset=nope; boundary=zz"])
       | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
       st.binary(max_size=600) | st.sampled_from([
           b"--zz\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\r\n\x89PNG\r\n--zz--\r\n",
           b"--zz\r\nContent-Disposition: form-data; name=\"photo\"\r\n\r\n",
           b"--zz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zz--\r\n",
           b"--zz--\r\n", b"--\r\n"])
       )
def test_raw_bodies(client, path, content_type, body):
    """Bodies that are not well-formed multipart, under any Content-Type (boundaries missing, unterminated)."""
    check(client.post(path, content=body, headers={"content-type": content_type}))


@fuzz(40, deadline_ms=5000)
@given(st.text(max_size=40))
def test_paths_with_any_ids(client, text):
    from urllib.parse import quote

    for path in (f"/v1/jobs/{quote(text, safe='')}", f"/v1/jobs/{quote(text, safe='')}/result",
                 f"/v1/styles/{quote(text, safe='')}/thumbnail"):
        check(client.get(path))

"""Video jobs (`POST /v1/video-jobs`, routes/videos.py): a clip painted frame by frame in the background,
watched and fetched through /v1/jobs/{id}; bad uploads and options refused before anything is queued;
the job's temporary files gone however it ends."""

from __future__ import annotations

import json
import tempfile

import pytest
from fastapi.testclient import TestClient
from server_helpers import assert_error, image_bytes, start_job, wait_for, wait_state

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from clips import make_clip, read_clip  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def spool(tmp_path, monkeypatch):
    """The folder the server's temporary files go to, watched by the tests."""
    folder = tmp_path / "server-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.mp4", w=64, h=48, frames=6, audio=True).read_bytes()


def post_video(client, data: bytes, ctype="video/mp4", files=None, **form):
    fields = {"style": "starry-night", **{k: str(v) for k, v in form.items()}}
    fields = {k: v for k, v in fields.items() if v != "None"}
    return client.post("/v1/video-jobs", files={"video": ("clip.mp4", data, ctype), **(files or {})}, data=fields)


def test_video_job_paints_every_frame_keeps_the_sound_and_returns_an_mp4(client, clip, spool, tmp_path):
    r = post_video(client, clip, size=32)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["method"] == "video" and job["stylize_method"] == "feedforward" and job["model"] == "starry-night"
    assert job["total"] == 6 and r.headers["location"] == job["url"]
    events = []
    with client.stream("GET", job["events_url"]) as stream:
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    assert events[-1][0] == "end" and events[-1][1]["state"] == "done", events[-1]
    steps = [d["step"] for k, d in events if k == "progress"]
    assert steps == sorted(steps) and steps[-1] == 6
    assert any(k == "preview" for k, _ in events)
    done = wait_state(client, job["id"])
    assert done["audio"] == "copied" and done["width"] == 32 and done["frames_per_s"] > 0
    r = client.get(done["result_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.headers["content-disposition"].endswith('.mp4"')
    out = tmp_path / "painted.mp4"
    out.write_bytes(r.content)
    frames, times, audio = read_clip(out)
    assert len(frames) == 6 and frames[0].shape == (24, 32, 3)
    assert times == pytest.approx([i / 12 for i in range(6)], abs=1e-3)
    assert audio == pytest.approx(0.5, abs=0.05)
    # The painted video waits on disk, not in memory, until the job is deleted; then the job's folder is gone.
    assert len(list(spool.iterdir())) == 1
    assert client.delete(job["url"]).json()["deleted"] is True
    assert not list(spool.iterdir())


def test_an_expired_video_job_takes_its_files_with_it(app_factory, clip, spool):
    with TestClient(app_factory(result_ttl=0.5)) as client:
        job = post_video(client, clip, size=24).json()
        wait_state(client, job["id"])
        wait_for(lambda: client.get(job["url"]).status_code == 404, 30, what="the job to expire")
        assert_error(client.get(job["result_url"] if job["result_url"] else job["url"] + "/result"), 404)
        assert not list(spool.iterdir())


def test_video_job_options_max_frames_no_sound_and_a_style_image(app_factory, clip, spool, tmp_path):
    with TestClient(app_factory(max_video_frames=4)) as client:
        assert_error(post_video(client, clip, max_frames=5), 422, "max_frames", "between 1 and 4")
        files = {"style_image": ("mine.png", image_bytes((30, 30)), "image/png")}
        r = post_video(client, clip, files=files, style=None, method="feedforward")
        assert_error(r, 422, "feedforward", "style image")
        r = post_video(client, clip, size=24, max_frames=3, audio="false", stability=0)
        assert r.status_code == 202, r.text
        done = wait_state(client, r.json()["id"])
        assert done["state"] == "done" and done["step"] == 3 and done["audio"] == "none"
        out = tmp_path / "cut.mp4"
        out.write_bytes(client.get(done["result_url"]).content)
        frames, _, audio = read_clip(out)
        assert len(frames) == 3 and frames[0].shape == (18, 24, 3) and audio is None
        # Without max_frames the server's limit cuts the video.
        done = wait_state(client, post_video(client, clip, size=24).json()["id"])
        assert done["state"] == "done" and done["step"] == 4
    assert not list(spool.iterdir())


def test_bad_video_uploads_and_options_get_one_clear_4xx_and_leave_no_files(app_factory, clip, spool):
    with TestClient(app_factory(max_video_bytes=len(clip) - 1)) as client:
        assert_error(post_video(client, clip), 413, "too large")
    with TestClient(app_factory()) as client:
        assert_error(post_video(client, image_bytes((40, 30)), ctype="application/octet-stream"), 400, "still image")
        r = post_video(client, b"not a video at all" * 100)
        assert_error(r, 400, "the video")
        assert "brushwork-video" not in r.text and str(spool) not in r.text
        assert_error(post_video(client, b"", ctype="video/mp4"), 400, "empty")
        no_decoder = clip[:32] + clip[32:].replace(b"avc1", b"zzzz")  # a video stream FFmpeg has no decoder for
        assert_error(post_video(client, no_decoder), 400, "no video stream FFmpeg can decode")
        assert_error(post_video(client, clip, ctype="image/png"), 415, "video")
        assert_error(post_video(client, clip, style="no-such-style"), 422, "unknown style")
        assert_error(post_video(client, clip, stability=1), 422, "stability")
        assert_error(post_video(client, clip, size=5000), 422, "size")
        assert_error(post_video(client, clip, strength=2), 422, "strength")
        assert_error(post_video(client, clip, colour="red"), 422, "unknown field")
        assert_error(client.post("/v1/video-jobs", data={"style": "starry-night"}), 415)
    assert not list(spool.iterdir())


def test_a_video_that_fails_while_painting_fails_its_job_without_server_paths(client, clip, spool, monkeypatch):
    from brushwork.errors import BrushworkError
    from brushwork.server.routes import videos

    def fails(source, output, **kwargs):
        raise BrushworkError(f"cannot decode a frame of {str(source)!r}")

    monkeypatch.setattr(videos, "stylize_video", fails)
    done = wait_state(client, post_video(client, clip, size=32).json()["id"])
    assert done["state"] == "failed" and done["error"] == "cannot decode a frame of the video"
    assert not list(spool.iterdir())


def test_a_clip_cut_short_is_painted_as_far_as_it_decodes(client, tmp_path, spool):
    whole = make_clip(tmp_path / "clip.mkv", frames=24, audio=False).read_bytes()  # Matroska: headers first
    cut = whole[:len(whole) // 2] + bytes(len(whole) - len(whole) // 2)
    done = wait_state(client, post_video(client, cut, size=32).json()["id"])
    assert done["state"] == "done" and 1 <= done["step"] < 24
    client.delete(done["url"])
    assert not list(spool.iterdir())


def test_a_video_job_cancelled_while_queued_removes_its_files(app_factory, clip, spool):
    with TestClient(app_factory(workers=1, max_steps=100000)) as client:
        blocker = start_job(client, steps=100000)  # holds the only worker
        wait_state(client, blocker["id"], states=("running",))
        r = post_video(client, clip, size=32)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["state"] == "queued" and len(list(spool.iterdir())) == 1
        r = client.delete(job["url"])
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert not list(spool.iterdir())
        client.delete(blocker["url"])
        wait_state(client, blocker["id"])

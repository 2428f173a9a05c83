"""Optimization jobs (`/v1/jobs`, routes/jobs.py, and the JobManager of jobs.py): progress, events, results,
bad options, cancelling, a full queue, expiry and a crashing job."""

from __future__ import annotations

import base64
import json
import re

from fastapi.testclient import TestClient
from server_helpers import assert_error, decode, image_bytes, job_form, photo, start_job, wait_for, wait_state


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

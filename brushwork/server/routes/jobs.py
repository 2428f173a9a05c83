"""Optimization jobs (`/v1/jobs`): started from an upload, run in the background by the `JobManager`,
watched (state, live previews, server-sent events), fetched, cancelled or deleted.

The submission form is built from `OptimizeOptions`' fields and help texts (less the server-only
ones), so the API and the library cannot drift apart; it documents this server's limits, so its
route is built per app (`submission_router`).
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import io
import json
import math
import os
import time
from dataclasses import MISSING, fields
from typing import Optional

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from brushwork.imaging import resize_long_side, tensor_to_image
from brushwork.methods import optimize
from brushwork.methods.optimize import OptimizeOptions
from brushwork.options import parse_float_list, parse_layer_weights
from brushwork.server.catalog import Catalog
from brushwork.server.config import ServerConfig
from brushwork.server.http_errors import fail
from brushwork.server.jobs import CANCELLED, DONE, FAILED, FINISHED, RUNNING, Job, JobManager, QueueFull
from brushwork.server.state import CatalogDep, ConfigDep, JobsDep, UploadsDep, VggCache, VggsDep
from brushwork.server.uploads import (
    SERVER_ONLY_OPTIONS,
    UploadReader,
    check_fields,
    choose_style,
    encode_png,
    form_field_names,
)

INIT_CHOICES = ("content", "noise")  # not a file: a request names no path on the server
DEFAULT_JOB_SIZE = 512
SSE_POLL_S = 0.2
SSE_KEEPALIVE_S = 15.0
RESULT_SUFFIXES = {"image/png": ".png", "video/mp4": ".mp4"}

JOB_FIELDS = [f for f in fields(OptimizeOptions) if f.name not in SERVER_ONLY_OPTIONS]
JOB_FORM_FIELDS = {"photo", "style", "style_image", "method", *(f.name for f in JOB_FIELDS)}

router = APIRouter(tags=["jobs"])


def job_json(job: Job, jobs: JobManager, config: ServerConfig) -> dict:
    return {
        "id": job.id,
        "method": job.kind,
        "state": job.state,
        "step": job.step,
        "total": job.total,
        "progress": round(job.step / job.total, 4) if job.total else (1.0 if job.state == DONE else 0.0),
        "losses": job.losses,
        **job.info,
        "error": job.error,
        "queue_position": jobs.queue_position(job),
        "cancelling": job.state == RUNNING and job.cancel.is_set(),
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "elapsed": round(job.elapsed, 3),
        "expires": job.finished + config.result_ttl if job.finished is not None else None,
        "url": f"/v1/jobs/{job.id}",
        "events_url": f"/v1/jobs/{job.id}/events",
        "preview_url": f"/v1/jobs/{job.id}/preview" if job.preview is not None else None,
        "result_url": f"/v1/jobs/{job.id}/result" if job.state == DONE else None,
    }


# ---------------------------------------------------------------------------------------------
# Starting a job


def parse_job_options(values: dict, config: ServerConfig) -> OptimizeOptions:
    """The form's option fields as `OptimizeOptions`, checked by the library and held to this server's limits."""
    given = {k: v for k, v in values.items() if v is not None and v != ""}
    opts = {}
    for f in JOB_FIELDS:
        if f.name not in given:
            continue
        v = given[f.name]
        try:
            if isinstance(field_default(f), dict):
                v = parse_layer_weights(str(v))
            elif f.name == "style_blend":
                v = parse_float_list(str(v))
        except Exception as exc:  # argparse.ArgumentTypeError
            fail(422, f"{f.name}: {exc}")
        opts[f.name] = v
    if opts.get("init", "content") not in INIT_CHOICES:
        fail(422, f"init must be content or noise, got {opts['init']!r}")
    opts.setdefault("size", min(DEFAULT_JOB_SIZE, config.max_size))
    options = OptimizeOptions(**opts, device=config.device, precision=config.precision)
    options.validate()
    if options.size > config.max_size:
        fail(422, f"size must be at most {config.max_size} pixels on this server, got {options.size}")
    if options.steps > config.max_steps:
        fail(422, f"steps must be at most {config.max_steps} on this server, got {options.steps}")
    return options


def preview_jpeg(image, config: ServerConfig) -> bytes:
    """A job's live preview: `image` (1 x 3 x H x W in [0, 1]) as a JPEG at most `preview_size` px long."""
    if max(image.shape[-2:]) > config.preview_size:
        image = resize_long_side(image, config.preview_size).clamp(0, 1)
    buf = io.BytesIO()
    tensor_to_image(image).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def optimization_runner(content, style, options: OptimizeOptions, config: ServerConfig, vggs: VggCache):
    """The job's `run(job)`: optimizes, reports each step, and a preview at most every `preview_interval`."""
    def run(job: Job) -> None:
        last_preview = [0.0]

        def progress(p) -> None:
            job.check_cancelled()
            info = {"scale": p.scale, "scales": p.scales, "width": p.size[1], "height": p.size[0]}
            job.update(step=p.step, total=p.total, losses=dict(p.losses), info=info)
            now = time.monotonic()
            due = now - last_preview[0] >= config.preview_interval or p.step == p.total
            if p.image is not None and due:
                last_preview[0] = now
                job.update(preview=preview_jpeg(p.image(), config), preview_step=p.step)

        vgg = vggs.get(options.pooling)
        job.check_cancelled()
        # Looked up on the module at run time, so that a test can make a job crash.
        result = optimize.run_optimization(content, [style], options, progress=progress, vgg=vgg)
        job.check_cancelled()
        png = encode_png(tensor_to_image(result.image, result.alpha))
        job.update(result=png, losses=dict(result.losses), step=max(job.step, result.steps))

    return run


def submit_job(*, config: ServerConfig, catalog: Catalog, jobs: JobManager, uploads: UploadReader, vggs: VggCache,
               sent: list, photo: UploadFile, style: str | None, style_image: UploadFile | None, method: str | None,
               **options) -> JSONResponse:
    check_fields(sent, JOB_FORM_FIELDS)
    method = method or "optimize"
    if method != "optimize":
        fail(422, f"jobs run method optimize, got {method!r} (fast methods: POST /v1/stylize)")
    choose_style(style, style_image)
    options = parse_job_options(options, config)
    if not jobs.has_room():  # before decoding anything
        fail(503, "the job queue is full: try again later", headers={"Retry-After": str(jobs.retry_after())})
    style_path = None
    if style_image is None:
        preset = catalog.preset(style)
        if preset is None:
            fail(422, f"unknown style preset {style!r}: see GET /v1/styles")
        style_path = preset.path  # a file the app ships, never one a request names
    photo_bytes = uploads.read(photo, "the photo")
    style_bytes = uploads.read(style_image, "the style image") if style_image is not None else None
    content = uploads.decode(photo_bytes, "the photo", max_side=options.size)
    del photo_bytes
    style_long = max(16, math.ceil(options.size * options.style_scale))
    if style_bytes is not None:
        style_img = uploads.decode(style_bytes, "the style image", max_side=style_long)
    else:
        style_img = uploads.decode(style_path.read_bytes(), f"style preset {preset.name!r}", max_side=style_long,
                                   trusted=True)
    del style_bytes
    jobs.start()  # idempotent; normally started by the lifespan
    try:
        job = jobs.submit("optimize", optimization_runner(content, style_img, options, config, vggs))
    except QueueFull as exc:
        fail(503, str(exc), headers={"Retry-After": str(exc.retry_after)})
    job.update(total=sum(options.steps_per_scale()))
    return JSONResponse(job_json(job, jobs, config), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


def field_default(f):
    return f.default if f.default is not MISSING else f.default_factory()


def form_type(f):
    """int, float or str for an options field (dicts and lists are sent as text)."""
    ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    ann = ann.replace(" ", "")
    for name, typ in (("int", int), ("float", float), ("bool", bool)):
        if ann.startswith(name):
            return typ
    return str


def default_text(f) -> str:
    default = field_default(f)
    if isinstance(default, dict):
        return ",".join(f"{k}:{v:g}" for k, v in default.items())
    return "" if default is None else str(default)


def job_form_signature(config: ServerConfig) -> inspect.Signature:
    """The parameters FastAPI reads the submission from: the shared pieces, the files, and a form field
    per option, each documented with its help text, default and this server's limit."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("config", keyword, annotation=ConfigDep),
        inspect.Parameter("catalog", keyword, annotation=CatalogDep),
        inspect.Parameter("jobs", keyword, annotation=JobsDep),
        inspect.Parameter("uploads", keyword, annotation=UploadsDep),
        inspect.Parameter("vggs", keyword, annotation=VggsDep),
        inspect.Parameter("photo", keyword, annotation=UploadFile,
                          default=File(..., description="the photo (EXIF orientation is honoured)")),
        inspect.Parameter("style", keyword, annotation=Optional[str],
                          default=Form(None, description="a style preset name (GET /v1/styles)")),
        inspect.Parameter("style_image", keyword, annotation=Optional[UploadFile],
                          default=File(None, description="your own style image, instead of a preset")),
        inspect.Parameter("method", keyword, annotation=str,
                          default=Form("optimize", description="optimize (the only job method)")),
    ]
    for f in JOB_FIELDS:
        help_text = f.metadata.get("help", "")
        shown = default_text(f)
        if f.name == "size":
            shown = str(min(DEFAULT_JOB_SIZE, config.max_size))
            help_text += f" (at most {config.max_size})"
        elif f.name == "steps":
            help_text += f" (at most {config.max_steps})"
        elif f.name == "init":
            help_text = "initial image: content or noise"
        choices = f.metadata.get("choices")
        if choices:
            help_text += f"; one of {', '.join(choices)}"
        if shown:
            help_text += f" (default: {shown})"
        params.append(inspect.Parameter(f.name, keyword, annotation=Optional[form_type(f)],
                                        default=Form(None, description=help_text)))
    params.append(inspect.Parameter("sent", keyword, annotation=list, default=Depends(form_field_names)))
    return inspect.Signature(params)


def submission_router(config: ServerConfig) -> APIRouter:
    """`POST /v1/jobs` for one app: its form says this server's limits, so each app gets its own endpoint."""
    def create_job(**form):
        return submit_job(**form)

    create_job.__signature__ = job_form_signature(config)
    submission = APIRouter(tags=["jobs"])
    submission.add_api_route(
        "/v1/jobs", create_job, methods=["POST"], status_code=202,
        summary="Start an optimization job; returns its id at once",
        responses={202: {"description": "the job, queued"}, 413: {"description": "upload too large"},
                   415: {"description": "not an image upload"}, 422: {"description": "bad options or style"},
                   503: {"description": "the queue is full: retry after the Retry-After header's seconds"}},
    )
    return submission


# ---------------------------------------------------------------------------------------------
# A job once started


def get_job(jobs: JobManager, job_id: str) -> Job:
    job = jobs.get(job_id)
    if job is None:
        fail(404, "unknown or expired job id")
    return job


@router.get("/v1/jobs/{job_id}", summary="A job's state and progress")
def job_status(job_id: str, jobs: JobsDep, config: ConfigDep):
    return job_json(get_job(jobs, job_id), jobs, config)


@router.get("/v1/jobs/{job_id}/result", summary="A finished job's result: an image (PNG) or a video (MP4)",
            response_class=Response,
            responses={200: {"content": {"image/png": {}, "video/mp4": {}}},
                       404: {"description": "unknown or expired job"},
                       409: {"description": "not finished, failed or cancelled"}})
def job_result(job_id: str, jobs: JobsDep):
    job = get_job(jobs, job_id)
    result, result_file = job.result, job.result_file
    if job.state == DONE and (result is not None or result_file is not None):
        suffix = RESULT_SUFFIXES.get(job.result_type, ".bin")
        headers = {"Cache-Control": "no-store",
                   "Content-Disposition": f'inline; filename="brushwork-{job.id[:8]}{suffix}"'}
        if result is not None:
            return Response(result, media_type=job.result_type, headers=headers)
        try:  # opened now: a job that expires while the file is sent still sends it whole
            stream = open(result_file, "rb")  # noqa: SIM115 - closed by the response
        except OSError:
            fail(404, "the job's result is gone (deleted or expired)")
        return StreamingResponse(_chunks(stream), media_type=job.result_type,
                                 headers={**headers, "Content-Length": str(os.fstat(stream.fileno()).st_size)})
    if job.state == FAILED:
        fail(409, f"the job failed: {job.error}")
    if job.state == CANCELLED:
        fail(409, "the job was cancelled")
    fail(409, f"the job is {job.state}: no result yet")


@router.get("/v1/jobs/{job_id}/preview", summary="The latest preview image of a job (JPEG)", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "unknown job or no preview yet"}})
def job_preview(job_id: str, jobs: JobsDep):
    data = get_job(jobs, job_id).preview
    if data is None:
        fail(404, "no preview yet")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.delete("/v1/jobs/{job_id}", summary="Cancel a queued or running job, or delete a finished one (and its result)")
def delete_job(job_id: str, jobs: JobsDep, config: ConfigDep):
    job = jobs.cancel(job_id)
    if job is None:
        fail(404, "unknown or expired job id")
    body = job_json(job, jobs, config)
    body["deleted"] = jobs.get(job_id) is None
    return JSONResponse(body, status_code=202 if job.state == RUNNING else 200)


def _chunks(stream, size: int = 1024 * 1024):
    with stream:
        while chunk := stream.read(size):
            yield chunk


def sse(event: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def job_event_stream(job_id: str, request: Request, jobs: JobManager, config: ServerConfig):
    """Progress on every change, each new preview, and an end event; a comment now and then keeps
    proxies from closing a quiet stream."""
    seen_version, seen_preview = -1, -1
    last_sent = time.monotonic()
    yield "retry: 2000\n\n"
    while True:
        job = jobs.get(job_id)
        if job is None:
            yield sse("end", {"id": job_id, "state": "expired", "error": "the job was deleted or expired"})
            return
        if job.version != seen_version:
            seen_version = job.version
            yield sse("progress", job_json(job, jobs, config), seen_version)
            preview = job.preview
            if preview is not None and job.preview_step != seen_preview:
                seen_preview = job.preview_step
                url = "data:image/jpeg;base64," + base64.b64encode(preview).decode("ascii")
                yield sse("preview", {"id": job.id, "step": job.preview_step, "image": url})
            if job.state in FINISHED:
                yield sse("end", job_json(job, jobs, config))
                return
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > SSE_KEEPALIVE_S:
            last_sent = time.monotonic()
            yield ": keepalive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(SSE_POLL_S)


@router.get("/v1/jobs/{job_id}/events", summary="Server-sent events: progress, preview (a data: URL of a JPEG) and end",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def job_events(job_id: str, request: Request, jobs: JobsDep, config: ConfigDep):
    get_job(jobs, job_id)
    return StreamingResponse(job_event_stream(job_id, request, jobs, config), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

"""`POST /v1/video-jobs`: a video painted frame by frame by a one-pass method, as a background job.

The style is chosen as for `POST /v1/stylize` (a named style's trained model, or a painting through a
method that takes any style), every frame is painted by `brushwork.stylize_video` with its flicker
removal (`stability`), and the job is watched, fetched (an MP4 with the sound kept) and cancelled
through the `/v1/jobs/{id}` routes like an optimization job. The upload is checked before the job is
queued: too large is a 413, a file FFmpeg cannot read as a video a 400. The upload and the painted video
live in a temporary folder of the job's, removed when the job fails or is cancelled, or, once done, when
it is deleted or expires.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse

from brushwork.errors import BrushworkError
from brushwork.methods.dispatch import check_options
from brushwork.methods.one_pass import StylizeOptions
from brushwork.server.config import ServerConfig
from brushwork.server.http_errors import fail
from brushwork.server.jobs import Job, QueueFull
from brushwork.server.routes.jobs import job_json, preview_jpeg
from brushwork.server.routes.stylize import STYLE_IMAGE_SIDE, load_stylizer, plan_stylize
from brushwork.server.state import CatalogDep, ConfigDep, JobsDep, UploadsDep
from brushwork.server.uploads import check_fields, form_field_names, spool_video
from brushwork.video import DEFAULT_STABILITY, probe_video, stylize_video

VIDEO_FIELDS = ("video", "style", "style_image", "method", "strength", "preserve_color", "size", "stability",
                "max_frames", "audio")
DEFAULT_VIDEO_SIZE = 512  # long side of the painted frames unless asked: a CPU paints about one a second

router = APIRouter(tags=["jobs"])


def without_paths(message: str, source: Path, output: Path) -> str:
    """An error message with the server's temporary file names replaced by what they are to the client."""
    for path, name in ((source, "the video"), (output, "the output")):
        message = message.replace(f"video {str(path)!r}", name).replace(repr(str(path)), name)
    return message


def video_runner(source: Path, stylizer, options: StylizeOptions, *, stability: float, max_frames: int, audio: bool,
                 config: ServerConfig):
    """The job's `run(job)`: paints the video, reports each frame and a preview at most every
    `preview_interval`, and keeps the finished MP4 as the job's result."""
    def run(job: Job) -> None:
        last_preview = [0.0]
        started = time.monotonic()

        def progress(p) -> None:
            job.check_cancelled()
            seconds = time.monotonic() - started
            info = {"width": p.size[1], "height": p.size[0],
                    "frames_per_s": round(p.step / seconds, 3) if seconds > 0 else None}
            job.update(step=p.step, total=p.total, info={**job.info, **info})
            now = time.monotonic()
            if p.image is not None and (now - last_preview[0] >= config.preview_interval or p.step == p.total):
                last_preview[0] = now
                job.update(preview=preview_jpeg(p.image(), config), preview_step=p.step)

        output = source.with_name("painted.mp4")
        try:
            result = stylize_video(source, output, options=options, stylizer=stylizer, progress=progress,
                                   max_frames=max_frames, audio=audio, stability=stability)
        except BrushworkError as exc:  # the client sees its video, not the server's temporary paths
            raise BrushworkError(without_paths(str(exc), source, output)) from None
        job.check_cancelled()
        # Served from its file until the job is deleted or expires: a video is not held in memory.
        job.update(result_file=output, result_type="video/mp4", step=result.frames, total=result.frames,
                   info={**job.info, "audio": result.audio, "scene_cuts": result.scene_cuts})

    return run


@router.post(
    "/v1/video-jobs", status_code=202,
    summary="Start painting a video (a background job); returns its id at once. Watch it, fetch the MP4 and "
            "cancel it at /v1/jobs/{id}",
    responses={202: {"description": "the job, queued"}, 400: {"description": "not a video FFmpeg can read"},
               413: {"description": "upload too large"}, 415: {"description": "not a video upload"},
               422: {"description": "bad options, unknown style, or no method here for this style"},
               503: {"description": "the queue is full: retry after the Retry-After header's seconds"}},
)
def create_video_job(
    config: ConfigDep,
    catalog: CatalogDep,
    jobs: JobsDep,
    uploads: UploadsDep,
    sent: Annotated[list, Depends(form_field_names)],
    video: UploadFile = File(..., description="the video (MP4, MOV, MKV, WebM, ...; what FFmpeg reads)"),
    style: Optional[str] = Form(None, description="a style preset or model name (GET /v1/styles, GET /v1/models); "
                                "or give style_image"),
    style_image: Optional[UploadFile] = File(None, description="your own style image, painted by a one-pass method "
                                             "that takes any style"),
    method: str = Form("auto", description="as for POST /v1/stylize: auto, feedforward, or a method that takes any "
                       "style (GET /v1/info)"),
    strength: float = Form(1.0, description="1 = fully stylized, 0 = the video unchanged"),
    preserve_color: str = Form("none", description="none, luminance or histogram: keep the video's colours"),
    size: Optional[int] = Form(None, description=f"long side of the painted frames in pixels (default: the video's, "
                               f"at most {DEFAULT_VIDEO_SIZE} and the server's max size)"),
    stability: float = Form(DEFAULT_STABILITY, description="0 to below 1: share of the previous painted frame kept "
                            "along the motion where it is reliable, against flicker (0: every frame on its own)"),
    max_frames: Optional[int] = Form(None, description="paint at most this many frames (default and at most: the "
                                     "server's video frame limit; the sound is cut with the video)"),
    audio: bool = Form(True, description="keep the sound"),
):
    check_fields(sent, VIDEO_FIELDS)
    chosen, entry, preset_painting = plan_stylize(catalog, method, style, style_image)
    if size is not None and not 16 <= size <= config.max_size:
        fail(422, f"size must be between 16 and {config.max_size} pixels, got {size}")
    if not 0.0 <= stability < 1.0:
        fail(422, f"stability must be at least 0 and below 1, got {stability}")
    if max_frames is not None and not 1 <= max_frames <= config.max_video_frames:
        fail(422, f"max_frames must be between 1 and {config.max_video_frames} on this server, got {max_frames}")
    options = StylizeOptions(method=chosen, strength=strength, preserve_color=preserve_color, size=size)
    options.validate()
    check_options(chosen, options)
    if not jobs.has_room():  # before reading the upload
        fail(503, "the job queue is full: try again later", headers={"Retry-After": str(jobs.retry_after())})

    painting = None
    if style_image is not None:
        painting = uploads.decode(uploads.read(style_image, "the style image"), "the style image",
                                  max_side=STYLE_IMAGE_SIDE)
    folder = Path(tempfile.mkdtemp(prefix="brushwork-video-"))

    def cleanup() -> None:
        shutil.rmtree(folder, ignore_errors=True)

    try:
        source = folder / "source"
        spool_video(video, source, config.max_video_bytes)
        try:
            info = probe_video(source)
        except BrushworkError as exc:
            fail(400, without_paths(str(exc), source, source))
        if info.still_image:
            fail(400, "the video is a still image: POST /v1/stylize paints images")
        long_side = size or min(max(info.width, info.height), DEFAULT_VIDEO_SIZE, config.max_size)
        style_source = painting if painting is not None else (
            str(preset_painting) if preset_painting is not None else entry.name)
        options = dataclasses.replace(options, style=style_source, size=long_side)
        stylizer = load_stylizer(catalog, entry, style)
        run = video_runner(source, stylizer, options, stability=stability,
                           max_frames=max_frames or config.max_video_frames, audio=audio, config=config)
    except BaseException:
        cleanup()
        raise
    jobs.start()  # idempotent; normally started by the lifespan
    try:
        job = jobs.submit("video", run, cleanup=cleanup)
    except QueueFull as exc:
        fail(503, str(exc), headers={"Retry-After": str(exc.retry_after)})
    frames = min(info.frames, max_frames or config.max_video_frames) if info.frames else 0
    job.update(total=frames, info={"stylize_method": chosen, "model": entry.name})
    return JSONResponse(job_json(job, jobs, config), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

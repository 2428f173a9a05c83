"""What a request uploads: a multipart form of options and image files, held to the server's limits.

Images are decoded from the uploaded bytes in memory. A video is copied to a temporary file the server
names (FFmpeg reads files), deleted when its job ends; nothing a request sends is used as a path.
"""

from __future__ import annotations

import io
import threading

from fastapi import Request, UploadFile
from starlette.exceptions import HTTPException

from brushwork.errors import BrushworkError
from brushwork.imaging import load_image, open_image, tensor_to_image
from brushwork.server.http_errors import fail, send_error

UPLOAD_PATHS = ("/v1/stylize", "/v1/jobs", "/v1/video-jobs")
VIDEO_CHUNK = 1024 * 1024
# Options a request may not set: they name files on the server, or pick its hardware.
SERVER_ONLY_OPTIONS = {"mask", "vgg_weights", "device", "precision", "style_blend"}


class UploadGuard:
    """ASGI middleware: uploads must be multipart (else 415) and their bodies at most `max_body` bytes
    (else 413), checked from Content-Length before reading and while reading a chunked body."""

    def __init__(self, app, max_body: int, path_limits: dict[str, int] | None = None):
        """`path_limits`: a larger (or smaller) body limit for some upload paths (a video's)."""
        self.app = app
        self.max_body = max_body
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        limit = self.path_limits.get(scope["path"].rstrip("/"), self.max_body)
        if scope["method"] == "POST" and scope["path"].rstrip("/") in UPLOAD_PATHS:
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if ctype != "multipart/form-data":
                shown = ctype or "none"
                return await send_error(send, 415, f"expected a multipart/form-data upload, got content type {shown}")
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                return await send_error(send, 400, "bad Content-Length header")
            if too_big:
                return await send_error(send, 413, f"request too large: the limit is {limit:,} bytes")
        received = 0
        max_body = limit

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise HTTPException(413, f"request too large: the limit is {max_body:,} bytes")
            return message

        await self.app(scope, limited_receive, send)


class UploadReader:
    """Reads an uploaded image file (at most `max_bytes`) and decodes it (at most `max_pixels`, checked
    from the header before decoding), at most `decode_slots` decodes at once to bound the memory that
    huge images take."""

    def __init__(self, max_bytes: int, max_pixels: int, decode_slots: int):
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self._decode_gate = threading.BoundedSemaphore(decode_slots)

    def read(self, upload: UploadFile, what: str) -> bytes:
        ctype = (upload.content_type or "").split(";")[0].strip().lower()
        if ctype and not (ctype.startswith("image/") or ctype == "application/octet-stream"):
            fail(415, f"{what} must be an image file, got content type {ctype}")
        data = upload.file.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            fail(413, f"{what} is too large: the limit is {self.max_bytes:,} bytes")
        if not data:
            fail(400, f"{what} is empty")
        return data

    def decode(self, data: bytes, what: str, max_side: int | None = None, trusted: bool = False):
        """(PIL image, RGB or RGBA) from uploaded bytes, shrunk to `max_side` when given.
        `trusted`: a file the app ships (a preset), exempt from the upload pixel limit."""
        max_pixels = None if trusted else self.max_pixels
        try:
            with self._decode_gate:
                if max_side is None:
                    return open_image(data, max_pixels=max_pixels)
                rgb, alpha = load_image(data, max_side=max_side, max_pixels=max_pixels)
                return tensor_to_image(rgb, alpha)
        except BrushworkError as exc:  # the bytes, not the options: 400 (or 413), not the handler's 422
            message = str(exc).replace("image '<bytes>'", what)
            fail(413 if "too large" in message else 400, message)
        except MemoryError:
            fail(413, f"{what} is too large to decode")


def spool_video(upload: UploadFile, path, max_bytes: int) -> int:
    """Copy an uploaded video to `path` (a file the server names), at most `max_bytes`; returns its size."""
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    if ctype and not (ctype.startswith("video/") or ctype == "application/octet-stream"):
        fail(415, f"the video must be a video file, got content type {ctype}")
    size = 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(VIDEO_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                fail(413, f"the video is too large: the limit is {max_bytes:,} bytes")
            out.write(chunk)
    if size == 0:
        fail(400, "the video is empty")
    return size


async def form_field_names(request: Request) -> list[str]:
    """The names of the form fields a request sent (the form is parsed once and cached): a dependency,
    so that a route can refuse fields it does not take, which FastAPI would ignore."""
    return list((await request.form()).keys())


def check_fields(sent: list[str], allowed) -> None:
    for name in sent:
        if name in SERVER_ONLY_OPTIONS:
            fail(422, f"option {name!r} cannot be set over HTTP")
        if name not in allowed:
            fail(422, f"unknown field {name!r}: expected one of {', '.join(sorted(allowed))}")


def choose_style(style: str | None, style_image: UploadFile | None) -> None:
    """A request names a style or uploads one: exactly one of the two."""
    if style_image is not None and style:
        fail(422, "give either a style preset name or a style image, not both")
    if style_image is None and not style:
        fail(422, "missing style: give a preset name (see GET /v1/styles) or upload a style image")


def encode_png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=3)
    return buf.getvalue()

"""The HTTP API (`/v1`) and the web page (`/`), built on the library's methods: a front end only.

Requests are parsed and checked here, images are decoded from the uploaded bytes in memory, and
the work is handed to `brushwork.methods` (fast stylization inline, bounded, through the method
table of `brushwork.methods.dispatch`; optimization as a background job). Every error a client can
cause is a 4xx with a JSON body `{"error": "..."}`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import io
import json
import logging
import math
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Optional

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

import brushwork
from brushwork.errors import BrushworkError
from brushwork.methods.dispatch import check_options, registered_methods
from brushwork.server.catalog import Catalog, fast_method_available, normalize_name
from brushwork.server.config import ServerConfig
from brushwork.server.jobs import CANCELLED, DONE, FAILED, FINISHED, RUNNING, Job, JobManager, QueueFull
from brushwork.options import parse_float_list, parse_layer_weights
from brushwork.features import shared_vgg19
from brushwork.imaging import load_image, open_image, resize_long_side, tensor_to_image
from brushwork.methods.one_pass import StylizeOptions
from brushwork.methods.optimize import run_optimization, OptimizeOptions
from brushwork.runtime import resolve_runtime

log = logging.getLogger("brushwork.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"
UPLOAD_PATHS = ("/v1/stylize", "/v1/jobs")
FAST_METHODS = ("feedforward", "fast")  # a named style's trained model ("fast": the older name)
# The one-pass methods that take any style image, in the dispatch table's order: adain, wct, predict;
# and those of them that `auto` may pick, in the order it tries them.
ANY_STYLE_METHODS = tuple(m.name for m in registered_methods() if m.any_style)
AUTO_ANY_STYLE_METHODS = tuple(m.name for m in registered_methods() if m.any_style and m.auto is not None)
# What /v1/info says of them; the table's own descriptions are written for the command line.
ANY_STYLE_DESCRIPTIONS = {
    "adain": "fast, any style image: adaptive instance normalization of VGG-19 features, then a trained decoder "
             "(Huang and Belongie 2017)",
    "wct": "fast, any style image: whitening and colouring of VGG-19 features at five layers (Li et al. 2017); "
           "slower than adain",
    "predict": "fast, any style image: a style-prediction network sets the norm parameters of a transformation "
               "network (Ghiasi et al. 2017); strength moves between the photo's own style and the image's",
}
# An uploaded style image is decoded no larger than this: adain and wct look at it at 512 px (long
# side), predict at its model's style size (short side; 256 for the shipped model).
STYLE_IMAGE_SIDE = 1024
STYLIZE_FIELDS = ("photo", "style", "style_image", "method", "strength", "alpha", "refine_steps", "preserve_color",
                  "size")
# Each refine step costs about a VGG-19 forward and backward (AdaIN at 512 x 512 on the development
# CPU's two cores: ~2 s a step), and WCT takes them at each of its five levels: a cap bounds how long
# one request holds a worker.
HTTP_MAX_REFINE_STEPS = 30
# Optimization options a request may not set: they name files on the server, or pick its hardware.
SERVER_ONLY_OPTIONS = {"mask", "vgg_weights", "device", "precision", "style_blend"}
INIT_CHOICES = ("content", "noise")
DEFAULT_JOB_SIZE = 512
SSE_POLL_S = 0.2
SSE_KEEPALIVE_S = 15.0


def fail(status: int, message: str, headers: dict | None = None):
    raise HTTPException(status_code=status, detail=message, headers=headers)


def _or_list(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


# ---------------------------------------------------------------------------------------------
# Pieces shared by the routes


class Busy(Exception):
    pass


class Gate:
    """At most `slots` callers inside at once and `queue` more waiting; anyone beyond gets `Busy`."""

    def __init__(self, slots: int, queue: int):
        self._sem = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._inside = 0
        self._limit = slots + queue

    @contextlib.contextmanager
    def enter(self):
        with self._lock:
            if self._inside >= self._limit:
                raise Busy()
            self._inside += 1
        try:
            with self._sem:
                yield
        finally:
            with self._lock:
                self._inside -= 1


class VggCache:
    """The loss network, loaded once per pooling mode for the jobs' runtime and shared by every job
    (forward is read-only) and, for max pooling, with the one-pass stylizers of that runtime
    (`shared_vgg19`); held here between jobs. Prepared for the jobs' runtime here, so that a job does
    not re-lay-out a network the stylizers of another precision are reading."""

    def __init__(self, device: str = "auto", precision: str = "auto"):
        self._lock = threading.Lock()
        self._nets = {}
        self._device, self._precision = device, precision

    def put(self, pooling: str, net) -> None:
        with self._lock:
            self._nets[pooling] = net

    def get(self, pooling: str):
        with self._lock:
            if pooling not in self._nets:
                runtime = resolve_runtime(self._device, self._precision)
                self._nets[pooling] = shared_vgg19(runtime, pooling=pooling)
            return self._nets[pooling]


class UploadGuard:
    """ASGI middleware: uploads must be multipart (else 415) and their bodies at most `max_body` bytes
    (else 413), checked from Content-Length before reading and while reading a chunked body."""

    def __init__(self, app, max_body: int):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if scope["method"] == "POST" and scope["path"].rstrip("/") in UPLOAD_PATHS:
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if ctype != "multipart/form-data":
                shown = ctype or "none"
                return await _send_error(send, 415, f"expected a multipart/form-data upload, got content type {shown}")
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                return await _send_error(send, 400, "bad Content-Length header")
            if too_big:
                return await _send_error(send, 413, f"request too large: the limit is {self.max_body:,} bytes")
        received = 0
        max_body = self.max_body

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise HTTPException(413, f"request too large: the limit is {max_body:,} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _form_fields(request: Request) -> list[str]:
    """The names of the form fields a request sent (the form is parsed once and cached)."""
    return list((await request.form()).keys())


def _check_fields(sent: list[str], allowed) -> None:
    for name in sent:
        if name in SERVER_ONLY_OPTIONS:
            fail(422, f"option {name!r} cannot be set over HTTP")
        if name not in allowed:
            fail(422, f"unknown field {name!r}: expected one of {', '.join(sorted(allowed))}")


def _encode_png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def _validation_message(errors) -> str:
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header")]
        name = ".".join(loc) or "request"
        if e.get("type") == "missing":
            parts.append(f"missing field '{name}'")
        else:
            parts.append(f"{name}: {e.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def _field_type(f):
    """int, float or str for an options field (dicts and lists are sent as text)."""
    ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    ann = ann.replace(" ", "")
    for name, typ in (("int", int), ("float", float), ("bool", bool)):
        if ann.startswith(name):
            return typ
    return str


def _default_text(f) -> str:
    from dataclasses import MISSING

    default = f.default if f.default is not MISSING else f.default_factory()
    if isinstance(default, dict):
        return ",".join(f"{k}:{v:g}" for k, v in default.items())
    return "" if default is None else str(default)


# ---------------------------------------------------------------------------------------------
# The app


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The web app and API. `config` holds the limits, worker counts and the model directory."""
    cfg = config or ServerConfig()
    cfg.validate()
    catalog = Catalog(cfg.model_dir, device=cfg.device, precision=cfg.precision, builtin=cfg.builtin_models)
    jobs = JobManager(workers=cfg.workers, queue_size=cfg.queue_size, ttl=cfg.result_ttl, max_jobs=cfg.max_jobs)
    gate = Gate(cfg.stylize_workers, cfg.stylize_queue)
    decode_gate = threading.BoundedSemaphore(max(2, cfg.stylize_workers))  # bounds memory for huge decodes
    vggs = VggCache(cfg.device, cfg.precision)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        jobs.start()
        try:
            yield
        finally:
            await asyncio.to_thread(jobs.stop, 10.0)

    app = FastAPI(
        title="Brushwork",
        version=brushwork.__version__,
        description="Neural style transfer over HTTP: fast stylization in one pass, with a style's trained model "
        "or any uploaded style image (`POST /v1/stylize`), and image optimization as background jobs "
        "(`/v1/jobs`). `GET /v1/info` lists the methods and which this server can run. "
        "Errors are JSON objects `{\"error\": \"...\"}`.",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # the interactive docs pages load scripts from a CDN; the app serves none
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.config, app.state.catalog, app.state.jobs, app.state.vggs = cfg, catalog, jobs, vggs
    app.add_middleware(UploadGuard, max_body=2 * cfg.max_upload_bytes + 1024 * 1024)

    # -- errors ------------------------------------------------------------------------------

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc.errors())}, status_code=422)

    @app.exception_handler(BrushworkError)
    async def _user_error(request: Request, exc: BrushworkError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal server error"}, status_code=500)

    # -- uploads -----------------------------------------------------------------------------

    def read_upload(upload: UploadFile, what: str) -> bytes:
        ctype = (upload.content_type or "").split(";")[0].strip().lower()
        if ctype and not (ctype.startswith("image/") or ctype == "application/octet-stream"):
            fail(415, f"{what} must be an image file, got content type {ctype}")
        data = upload.file.read(cfg.max_upload_bytes + 1)
        if len(data) > cfg.max_upload_bytes:
            fail(413, f"{what} is too large: the limit is {cfg.max_upload_bytes:,} bytes")
        if not data:
            fail(400, f"{what} is empty")
        return data

    def decode(data: bytes, what: str, max_side: int | None = None, trusted: bool = False):
        """(PIL image, RGB or RGBA) from uploaded bytes, shrunk to `max_side` when given.
        `trusted`: a file the app ships (a preset), exempt from the upload pixel limit."""

        max_pixels = None if trusted else cfg.max_pixels
        try:
            with decode_gate:
                if max_side is None:
                    return open_image(data, max_pixels=max_pixels)
                rgb, alpha = load_image(data, max_side=max_side, max_pixels=max_pixels)
                return tensor_to_image(rgb, alpha)
        except BrushworkError as exc:
            message = str(exc).replace("image '<bytes>'", what)
            fail(413 if "too large" in message else 400, message)
        except MemoryError:
            fail(413, f"{what} is too large to decode")

    def choose_style(style: str | None, style_image: UploadFile | None):
        if style_image is not None and style:
            fail(422, "give either a style preset name or a style image, not both")
        if style_image is None and not style:
            fail(422, "missing style: give a preset name (see GET /v1/styles) or upload a style image")

    # -- page and static files ---------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # -- catalog -----------------------------------------------------------------------------

    def any_style_methods(models: list | None = None) -> dict:
        """Method name -> model entry, for the one-pass methods that take any style image and have a
        model in the model directory (the dispatch table's order)."""
        if not fast_method_available():
            return {}
        return {name: entry for name, entry in catalog.any_style_models(models).items() if entry is not None}

    def auto_any_style_method(available: dict) -> str | None:
        """What method auto runs for a style image: the dispatch table's first auto method present here."""
        return next((name for name in AUTO_ANY_STYLE_METHODS if name in available), None)

    def method_list() -> list[dict]:
        models = catalog.models()
        fast = fast_method_available() and any(m.public()["fast"] for m in models)
        available = any_style_methods(models)
        auto = auto_any_style_method(available)
        methods = [
            {"name": "feedforward", "endpoint": "/v1/stylize", "available": fast, "style_image": False,
             "auto": True, "description": "fast: one pass of a network trained on one painting (seconds); only for "
                                          "named styles with a trained model"},
        ]
        for name in ANY_STYLE_METHODS:
            entry = available.get(name)
            methods.append({"name": name, "endpoint": "/v1/stylize", "available": entry is not None,
                            "style_image": True, "auto": name == auto, "model": entry.name if entry else None,
                            "description": ANY_STYLE_DESCRIPTIONS.get(name, "fast, any style image")})
        methods.append({"name": "optimize", "endpoint": "/v1/jobs", "available": True, "style_image": True,
                        "auto": False,
                        "description": "slow, best quality: the image itself is optimized step by step; any style "
                                       "image or preset"})
        return methods

    @app.get("/v1/info", tags=["catalog"], summary="Version, limits and methods")
    def info():
        return {
            "version": brushwork.__version__,
            "methods": method_list(),
            "limits": {"max_upload_bytes": cfg.max_upload_bytes, "max_pixels": cfg.max_pixels,
                       "max_size": cfg.max_size, "max_steps": cfg.max_steps, "result_ttl": cfg.result_ttl},
            "jobs": jobs.stats(),
        }

    @app.get("/v1/styles", tags=["catalog"], summary="Style presets (paintings) with thumbnails and credits")
    def styles():
        fast_ok = fast_method_available()
        models = catalog.models()
        any_style = list(any_style_methods(models))  # one-pass methods that paint any preset from its image
        out = []
        for p in catalog.presets():
            model = catalog.fast_model_for(p.name, models) if fast_ok else None
            out.append({
                "name": p.name, "title": p.title, "artist": p.artist, "year": p.year,
                "credit": f"{p.title}, {p.artist}" + (f", {p.year}" if p.year else ""),
                "thumbnail_url": f"/v1/styles/{p.name}/thumbnail",
                "image_url": f"/v1/styles/{p.name}/image",
                "fast_model": model.name if model is not None else None,
                "fast_model_kind": model.kind if model is not None else None,  # "multi": a many-style model's row
                "methods": (["feedforward"] if model is not None else []) + any_style + ["optimize"],
            })
        if fast_ok:  # the styles of a built-in many-style network: no painting, so its own thumbnail, one method
            for name, entry in catalog.network_styles(models):
                out.append({
                    "name": name, "title": name.replace("-", " ").capitalize(), "artist": f"{entry.name} network",
                    "year": None, "credit": f"{name}, a style of the {entry.name} network",
                    "thumbnail_url": f"/v1/styles/{name}/thumbnail", "image_url": None,
                    "fast_model": entry.name, "fast_model_kind": "multi", "methods": ["feedforward"],
                })
        return {"styles": out}

    @app.get("/v1/styles/{name}/thumbnail", tags=["catalog"], summary="A preset's thumbnail (JPEG)",
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "unknown preset"}})
    def style_thumbnail(name: str):
        data = catalog.thumbnail(name)
        if data is None:
            fail(404, f"unknown style preset {name!r}")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/v1/styles/{name}/image", tags=["catalog"], summary="A preset's full painting",
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "unknown preset"}})
    def style_image_file(name: str):
        preset = catalog.preset(name)
        if preset is None:
            fail(404, f"unknown style preset {name!r}")
        return FileResponse(preset.path, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/v1/models", tags=["catalog"], summary="Trained models the server can use")
    def models():
        return {"models": [m.public() for m in catalog.models()]}

    # -- fast stylization --------------------------------------------------------------------

    def style_image_advice(available: dict) -> str:
        """What a client can do with its own style image on this server."""
        if not available:
            return "start an optimize job (POST /v1/jobs); this server has no one-pass method for a style image"
        return f"use method {_or_list(available)} (or auto), or start an optimize job (POST /v1/jobs)"

    def plan_stylize(method: str, style: str | None, style_image: UploadFile | None):
        """(method, model entry, preset painting for an any-style method or None) for a request, or a 422
        that says which methods would work."""
        if method == "optimize":
            fail(422, "method optimize is slow: start a job with POST /v1/jobs")
        if method not in ("auto", *FAST_METHODS, *ANY_STYLE_METHODS):
            fail(422, f"unknown method {method!r}: expected {_or_list(['auto', 'feedforward', *ANY_STYLE_METHODS])} "
                      "(POST /v1/jobs runs optimize)")
        choose_style(style, style_image)
        if style_image is not None:
            available = any_style_methods()
            if method in FAST_METHODS:
                fail(422, "method feedforward takes a named style with a trained model, not a style image: "
                          + style_image_advice(available))
            chosen = any_style_choice(method, available, "no one-pass method for a style image is installed on this "
                                                         "server: start an optimize job (POST /v1/jobs)")
            return chosen, available[chosen], None
        preset = catalog.preset(style)
        entry = catalog.fast_model_for(style) if method not in ANY_STYLE_METHODS else None
        if entry is None and preset is None:
            fail(422, f"unknown style {style!r}: see GET /v1/styles and GET /v1/models")
        if entry is not None:
            if not fast_method_available():
                fail(422, "fast stylization is not installed on this server: start an optimize job (POST /v1/jobs)")
            return "feedforward", entry, None
        # A preset painting with no trained model (or an any-style method asked for): the painting itself
        # goes to a one-pass method that takes any style, as an upload would. (The any-style models are
        # looked up only here: a named style with a trained model, the common request, needs none.)
        available = any_style_methods()
        upload = f"use method {_or_list(available)} (they paint any style), or " if available else ""
        no_model = (f"no trained model for style {normalize_name(style)!r}: {upload}start an optimize job "
                    "(POST /v1/jobs), which takes the style by name")
        if method in FAST_METHODS:
            fail(422, no_model)
        chosen = any_style_choice(method, available, no_model)
        return chosen, available[chosen], preset.path

    def any_style_choice(method: str, available: dict, none_installed: str) -> str:
        """The any-style method that runs for `method` (auto: the preferred one this server has), or a 422."""
        chosen = auto_any_style_method(available) if method == "auto" else method
        if chosen is None:
            fail(422, none_installed)
        if chosen not in available:
            why = "one-pass methods are not installed" if not fast_method_available() else f"it has no {chosen} model"
            fail(422, f"method {chosen} is not available on this server ({why}): {style_image_advice(available)}")
        return chosen

    @app.post(
        "/v1/stylize", tags=["stylize"], summary="Stylize a photo in one pass; returns the image (PNG)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the stylized image; the headers "
                         "X-Brushwork-Method and X-Brushwork-Model say what painted it"},
                   413: {"description": "upload too large"}, 415: {"description": "not an image upload"},
                   422: {"description": "bad options, unknown style, or no method here for this style: "
                                        "the message says which would work"},
                   503: {"description": "busy: retry after the Retry-After header's seconds"}},
    )
    def stylize(
        photo: UploadFile = File(..., description="the photo (JPEG, PNG, WebP, ...; EXIF orientation is honoured)"),
        style: Optional[str] = Form(None, description="a style preset or model name (GET /v1/styles, GET /v1/models): "
                                    "its trained model, else (method auto) the painting through a one-pass "
                                    "any-style method; or give style_image"),
        style_image: Optional[UploadFile] = File(None, description="your own style image, instead of style: painted "
                                                 "by a one-pass method that takes any style (adain, predict, wct; "
                                                 "GET /v1/info says which this server has)"),
        method: str = Form("auto", description="auto: feedforward for a named style with a trained model; else "
                           "(a style_image, or a preset painting without one) "
                           f"{' if this server has its model, else '.join(AUTO_ANY_STYLE_METHODS)} (GET /v1/info: "
                           f"auto); or feedforward (alias fast), {_or_list(ANY_STYLE_METHODS)}"),
        strength: float = Form(1.0, description="1 = fully stylized, 0 = the photo unchanged (predict: between the "
                               "photo's own style and the style image's)"),
        alpha: float = Form(1.0, description="adain and wct: how far the features move to the style's statistics "
                            "(1: all the way, 0: the decoder's reconstruction of the photo)"),
        refine_steps: int = Form(0, description="adain and wct: L-BFGS steps after the decoder that bring the "
                                 "image's features closer to the transferred ones (slower; closer to the style and "
                                 f"the photo), at most {HTTP_MAX_REFINE_STEPS}"),
        preserve_color: str = Form("none", description="none, luminance or histogram: keep the photo's colours"),
        size: Optional[int] = Form(None, description="long side of the output in pixels (default: the photo's, "
                                   "at most the server's max size)"),
        sent: list = Depends(_form_fields),
    ):
        _check_fields(sent, STYLIZE_FIELDS)
        chosen, entry, preset_painting = plan_stylize(method, style, style_image)
        if not (isinstance(strength, (int, float)) and math.isfinite(strength) and 0 <= strength <= 1):
            fail(422, f"strength must be between 0 and 1, got {strength}")
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0 <= alpha <= 1):
            fail(422, f"alpha must be between 0 and 1, got {alpha}")
        if not 0 <= refine_steps <= HTTP_MAX_REFINE_STEPS:
            fail(422, f"refine_steps must be between 0 and {HTTP_MAX_REFINE_STEPS}, got {refine_steps}")

        try:  # the catalog keeps stylizers, so their factories' checks of the options ran only once
            check_options(chosen, StylizeOptions(method=chosen, alpha=float(alpha), refine_steps=int(refine_steps)))
        except BrushworkError as exc:
            fail(422, str(exc).replace("--", ""))
        if preserve_color not in ("none", "luminance", "histogram"):
            fail(422, f"unknown colour preservation {preserve_color!r}: expected none, luminance or histogram")
        if size is not None and not 16 <= size <= cfg.max_size:
            fail(422, f"size must be between 16 and {cfg.max_size} pixels, got {size}")

        data = read_upload(photo, "the photo")
        style_data = read_upload(style_image, "the style image") if style_image is not None else None
        started = time.perf_counter()
        try:
            with gate.enter():
                image = decode(data, "the photo")
                del data
                painting = None
                if style_data is not None:
                    painting = decode(style_data, "the style image", max_side=STYLE_IMAGE_SIDE)
                    del style_data
                style_source = painting if painting is not None else (
                    str(preset_painting) if preset_painting is not None else entry.name)
                options = StylizeOptions(style=style_source, method=chosen,
                                         strength=float(strength), alpha=float(alpha), refine_steps=int(refine_steps),
                                         preserve_color=preserve_color,
                                         size=size or min(max(image.size), cfg.max_size))
                try:
                    stylizer = catalog.stylizer(entry, style)
                except BrushworkError as exc:
                    log.error("model %s cannot be loaded: %s", entry.name, exc)
                    fail(500, f"model {entry.name!r} cannot be loaded on this server")
                try:
                    result = stylizer.stylize(image, options)
                except BrushworkError as exc:
                    fail(422, str(exc))
                except MemoryError:
                    fail(413, "out of memory: try a smaller size")
                png = _encode_png(result)
        except Busy:
            fail(503, "too many stylizations at once: try again shortly", headers={"Retry-After": "2"})
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Response(png, media_type="image/png",
                        headers={"X-Brushwork-Method": chosen, "X-Brushwork-Model": entry.name,
                                 "X-Brushwork-Time-Ms": f"{elapsed_ms:.0f}", "Cache-Control": "no-store"})

    # -- optimization jobs -------------------------------------------------------------------

    job_fields = [f for f in fields(OptimizeOptions) if f.name not in SERVER_ONLY_OPTIONS]

    def job_json(job: Job) -> dict:
        d = {
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
            "expires": job.finished + cfg.result_ttl if job.finished is not None else None,
            "url": f"/v1/jobs/{job.id}",
            "events_url": f"/v1/jobs/{job.id}/events",
            "preview_url": f"/v1/jobs/{job.id}/preview" if job.preview is not None else None,
            "result_url": f"/v1/jobs/{job.id}/result" if job.state == DONE else None,
        }
        return d

    def parse_job_options(values: dict) -> OptimizeOptions:
        given = {k: v for k, v in values.items() if v is not None and v != ""}
        opts = {}
        for f in job_fields:
            if f.name not in given:
                continue
            v = given[f.name]
            default = f.default if not callable(getattr(f, "default_factory", None)) else f.default_factory()
            try:
                if isinstance(default, dict):
                    v = parse_layer_weights(str(v))
                elif f.name == "style_blend":
                    v = parse_float_list(str(v))
            except Exception as exc:  # argparse.ArgumentTypeError
                fail(422, f"{f.name}: {exc}")
            opts[f.name] = v
        if opts.get("init", "content") not in INIT_CHOICES:
            fail(422, f"init must be content or noise, got {opts['init']!r}")
        opts.setdefault("size", min(DEFAULT_JOB_SIZE, cfg.max_size))
        options = OptimizeOptions(**opts, device=cfg.device, precision=cfg.precision)
        try:
            options.validate()
        except BrushworkError as exc:
            fail(422, str(exc))
        if options.size > cfg.max_size:
            fail(422, f"size must be at most {cfg.max_size} pixels on this server, got {options.size}")
        if options.steps > cfg.max_steps:
            fail(422, f"steps must be at most {cfg.max_steps} on this server, got {options.steps}")
        return options

    def make_runner(content, style, options: OptimizeOptions):
        def run(job: Job) -> None:
            last_preview = [0.0]

            def progress(p) -> None:
                job.check_cancelled()
                info = {"scale": p.scale, "scales": p.scales, "width": p.size[1], "height": p.size[0]}
                job.update(step=p.step, total=p.total, losses=dict(p.losses), info=info)
                now = time.monotonic()
                due = now - last_preview[0] >= cfg.preview_interval or p.step == p.total
                if p.image is not None and due:
                    last_preview[0] = now
                    img = p.image()
                    if max(img.shape[-2:]) > cfg.preview_size:
                        img = resize_long_side(img, cfg.preview_size).clamp(0, 1)
                    buf = io.BytesIO()
                    tensor_to_image(img).save(buf, "JPEG", quality=85)
                    job.update(preview=buf.getvalue(), preview_step=p.step)

            vgg = vggs.get(options.pooling)
            job.check_cancelled()
            result = run_optimization(content, [style], options, progress=progress, vgg=vgg)
            job.check_cancelled()
            png = _encode_png(tensor_to_image(result.image, result.alpha))
            job.update(result=png, losses=dict(result.losses), step=max(job.step, result.steps))

        return run

    job_form_fields = {"photo", "style", "style_image", "method", *(f.name for f in job_fields)}

    def create_job(**form):
        _check_fields(form.pop("sent"), job_form_fields)
        photo = form.pop("photo")
        style = form.pop("style")
        style_image = form.pop("style_image")
        method = form.pop("method") or "optimize"
        if method != "optimize":
            fail(422, f"jobs run method optimize, got {method!r} (fast methods: POST /v1/stylize)")
        choose_style(style, style_image)
        options = parse_job_options(form)
        if not jobs.has_room():  # before decoding anything
            fail(503, "the job queue is full: try again later", headers={"Retry-After": str(jobs.retry_after())})
        style_path = None
        if style_image is None:
            preset = catalog.preset(style)
            if preset is None:
                fail(422, f"unknown style preset {style!r}: see GET /v1/styles")
            style_path = preset.path  # a file the app ships, never one a request names
        photo_bytes = read_upload(photo, "the photo")
        style_bytes = read_upload(style_image, "the style image") if style_image is not None else None
        content = decode(photo_bytes, "the photo", max_side=options.size)
        del photo_bytes
        style_long = max(16, math.ceil(options.size * options.style_scale))
        if style_bytes is not None:
            style_img = decode(style_bytes, "the style image", max_side=style_long)
        else:
            style_img = decode(style_path.read_bytes(), f"style preset {preset.name!r}", max_side=style_long,
                               trusted=True)
        del style_bytes
        jobs.start()  # idempotent; normally started by the lifespan
        try:
            job = jobs.submit("optimize", make_runner(content, style_img, options))
        except QueueFull as exc:
            fail(503, str(exc), headers={"Retry-After": str(exc.retry_after)})
        job.update(total=sum(options.steps_per_scale()))
        return JSONResponse(job_json(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    params = [
        inspect.Parameter("photo", inspect.Parameter.KEYWORD_ONLY, annotation=UploadFile,
                          default=File(..., description="the photo (EXIF orientation is honoured)")),
        inspect.Parameter("style", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                          default=Form(None, description="a style preset name (GET /v1/styles)")),
        inspect.Parameter("style_image", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[UploadFile],
                          default=File(None, description="your own style image, instead of a preset")),
        inspect.Parameter("method", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                          default=Form("optimize", description="optimize (the only job method)")),
    ]
    for f in job_fields:
        help_text = f.metadata.get("help", "")
        shown = _default_text(f)
        if f.name == "size":
            shown = str(min(DEFAULT_JOB_SIZE, cfg.max_size))
            help_text += f" (at most {cfg.max_size})"
        elif f.name == "steps":
            help_text += f" (at most {cfg.max_steps})"
        elif f.name == "init":
            help_text = "initial image: content or noise"
        choices = f.metadata.get("choices")
        if choices:
            help_text += f"; one of {', '.join(choices)}"
        if shown:
            help_text += f" (default: {shown})"
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Optional[_field_type(f)],
                                        default=Form(None, description=help_text)))
    params.append(inspect.Parameter("sent", inspect.Parameter.KEYWORD_ONLY, annotation=list,
                                    default=Depends(_form_fields)))
    create_job.__signature__ = inspect.Signature(params)
    app.post(
        "/v1/jobs", tags=["jobs"], status_code=202,
        summary="Start an optimization job; returns its id at once",
        responses={202: {"description": "the job, queued"}, 413: {"description": "upload too large"},
                   415: {"description": "not an image upload"}, 422: {"description": "bad options or style"},
                   503: {"description": "the queue is full: retry after the Retry-After header's seconds"}},
    )(create_job)

    def get_job(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            fail(404, "unknown or expired job id")
        return job

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], summary="A job's state and progress")
    def job_status(job_id: str):
        return job_json(get_job(job_id))

    @app.get("/v1/jobs/{job_id}/result", tags=["jobs"], summary="A finished job's image (PNG)",
             response_class=Response,
             responses={200: {"content": {"image/png": {}}}, 404: {"description": "unknown or expired job"},
                        409: {"description": "not finished, failed or cancelled"}})
    def job_result(job_id: str):
        job = get_job(job_id)
        if job.state == DONE and job.result is not None:
            return Response(job.result, media_type=job.result_type,
                            headers={"Cache-Control": "no-store",
                                     "Content-Disposition": f'inline; filename="brushwork-{job.id[:8]}.png"'})
        if job.state == FAILED:
            fail(409, f"the job failed: {job.error}")
        if job.state == CANCELLED:
            fail(409, "the job was cancelled")
        fail(409, f"the job is {job.state}: no result yet")

    @app.get("/v1/jobs/{job_id}/preview", tags=["jobs"], summary="The latest preview image of a job (JPEG)",
             response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "unknown job or no preview yet"}})
    def job_preview(job_id: str):
        job = get_job(job_id)
        data = job.preview
        if data is None:
            fail(404, "no preview yet")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"],
                summary="Cancel a queued or running job, or delete a finished one (and its result)")
    def delete_job(job_id: str):
        job = jobs.cancel(job_id)
        if job is None:
            fail(404, "unknown or expired job id")
        body = job_json(job)
        body["deleted"] = jobs.get(job_id) is None
        return JSONResponse(body, status_code=202 if job.state == RUNNING else 200)

    @app.get("/v1/jobs/{job_id}/events", tags=["jobs"],
             summary="Server-sent events: progress, preview (a data: URL of a JPEG) and end",
             response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def job_events(job_id: str, request: Request):
        get_job(job_id)

        def sse(event: str, data: dict, event_id: int | None = None) -> str:
            head = f"id: {event_id}\n" if event_id is not None else ""
            return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

        async def stream():
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
                    yield sse("progress", job_json(job), seen_version)
                    preview = job.preview
                    if preview is not None and job.preview_step != seen_preview:
                        seen_preview = job.preview_step
                        url = "data:image/jpeg;base64," + base64.b64encode(preview).decode("ascii")
                        yield sse("preview", {"id": job.id, "step": job.preview_step, "image": url})
                    if job.state in FINISHED:
                        yield sse("end", job_json(job))
                        return
                    last_sent = time.monotonic()
                elif time.monotonic() - last_sent > SSE_KEEPALIVE_S:
                    last_sent = time.monotonic()
                    yield ": keepalive\n\n"
                if await request.is_disconnected():
                    return
                await asyncio.sleep(SSE_POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app

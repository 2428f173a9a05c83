"""`POST /v1/stylize`: a photo stylized in one pass, answered with the image.

A named style with a trained model goes to its model (feedforward); an uploaded style image, or a
preset painting without a model, goes to a one-pass method that takes any style image (the dispatch
table's adain, wct, predict), when this server has its model. Requests that cannot be painted here
get a 422 that says what would work. At most `stylize_workers` run at once and `stylize_queue` wait;
beyond that, 503.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Annotated, Optional

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from brushwork.errors import BrushworkError
from brushwork.methods.dispatch import check_options
from brushwork.methods.one_pass import StylizeOptions
from brushwork.server.catalog import (
    ANY_STYLE_METHODS,
    AUTO_ANY_STYLE_METHODS,
    Catalog,
    ModelEntry,
    auto_any_style_method,
    normalize_name,
)
from brushwork.server.http_errors import fail
from brushwork.server.state import Busy, CatalogDep, ConfigDep, StylizeGateDep, UploadsDep
from brushwork.server.uploads import check_fields, choose_style, encode_png, form_field_names

log = logging.getLogger("brushwork.server")

FAST_METHODS = ("feedforward", "fast")  # a named style's trained model ("fast": the older name)
STYLIZE_FIELDS = ("photo", "style", "style_image", "method", "strength", "alpha", "refine_steps", "preserve_color",
                  "size")
# An uploaded style image is decoded no larger than this: adain and wct look at it at 512 px (long
# side), predict at its model's style size (short side; 256 for the shipped model).
STYLE_IMAGE_SIDE = 1024
# Each refine step costs about a VGG-19 forward and backward (AdaIN at 512 x 512 on the development
# CPU's two cores: ~2 s a step), and WCT takes them at each of its five levels: a cap bounds how long
# one request holds a worker.
HTTP_MAX_REFINE_STEPS = 30

router = APIRouter(tags=["stylize"])


def or_list(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def style_image_advice(available: dict) -> str:
    """What a client can do with its own style image on this server."""
    if not available:
        return "start an optimize job (POST /v1/jobs); this server has no one-pass method for a style image"
    return f"use method {or_list(available)} (or auto), or start an optimize job (POST /v1/jobs)"


def any_style_choice(method: str, available: dict, none_installed: str) -> str:
    """The any-style method that runs for `method` (auto: the preferred one this server has), or a 422."""
    chosen = auto_any_style_method(available) if method == "auto" else method
    if chosen is None:
        fail(422, none_installed)
    if chosen not in available:
        fail(422, f"method {chosen} is not available on this server (it has no {chosen} model): "
                  f"{style_image_advice(available)}")
    return chosen


def plan_stylize(catalog: Catalog, method: str, style: str | None, style_image: UploadFile | None):
    """(method, model entry, preset painting for an any-style method or None) for a request, or a 422
    that says which methods would work."""
    if method == "optimize":
        fail(422, "method optimize is slow: start a job with POST /v1/jobs")
    if method not in ("auto", *FAST_METHODS, *ANY_STYLE_METHODS):
        fail(422, f"unknown method {method!r}: expected {or_list(['auto', 'feedforward', *ANY_STYLE_METHODS])} "
                  "(POST /v1/jobs runs optimize)")
    choose_style(style, style_image)
    if style_image is not None:
        available = catalog.any_style_models()
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
        return "feedforward", entry, None
    # A preset painting with no trained model (or an any-style method asked for): the painting itself
    # goes to a one-pass method that takes any style, as an upload would. (The any-style models are
    # looked up only here: a named style with a trained model, the common request, needs none.)
    available = catalog.any_style_models()
    upload = f"use method {or_list(available)} (they paint any style), or " if available else ""
    no_model = (f"no trained model for style {normalize_name(style)!r}: {upload}start an optimize job "
                "(POST /v1/jobs), which takes the style by name")
    if method in FAST_METHODS:
        fail(422, no_model)
    chosen = any_style_choice(method, available, no_model)
    return chosen, available[chosen], preset.path


def load_stylizer(catalog: Catalog, entry: ModelEntry, style: str | None):
    try:
        return catalog.stylizer(entry, style)
    except BrushworkError as exc:  # a model file the server holds, not the request, is at fault
        log.error("model %s cannot be loaded: %s", entry.name, exc)
        fail(500, f"model {entry.name!r} cannot be loaded on this server")


@router.post(
    "/v1/stylize", summary="Stylize a photo in one pass; returns the image (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the stylized image; the headers "
                     "X-Brushwork-Method and X-Brushwork-Model say what painted it"},
               413: {"description": "upload too large"}, 415: {"description": "not an image upload"},
               422: {"description": "bad options, unknown style, or no method here for this style: "
                                    "the message says which would work"},
               503: {"description": "busy: retry after the Retry-After header's seconds"}},
)
def stylize(
    config: ConfigDep,
    catalog: CatalogDep,
    gate: StylizeGateDep,
    uploads: UploadsDep,
    sent: Annotated[list, Depends(form_field_names)],
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
                       f"auto); or feedforward (alias fast), {or_list(ANY_STYLE_METHODS)}"),
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
):
    check_fields(sent, STYLIZE_FIELDS)
    chosen, entry, preset_painting = plan_stylize(catalog, method, style, style_image)
    # This server's own limits; the library checks the rest (a BrushworkError is a 422).
    if not 0 <= refine_steps <= HTTP_MAX_REFINE_STEPS:
        fail(422, f"refine_steps must be between 0 and {HTTP_MAX_REFINE_STEPS}, got {refine_steps}")
    if size is not None and not 16 <= size <= config.max_size:
        fail(422, f"size must be between 16 and {config.max_size} pixels, got {size}")
    options = StylizeOptions(method=chosen, strength=strength, alpha=alpha, refine_steps=refine_steps,
                             preserve_color=preserve_color, size=size)
    options.validate()
    check_options(chosen, options)  # the catalog keeps stylizers: their factories checked only the first request

    data = uploads.read(photo, "the photo")
    style_data = uploads.read(style_image, "the style image") if style_image is not None else None
    started = time.perf_counter()
    try:
        with gate.enter():
            image = uploads.decode(data, "the photo")
            del data
            painting = None
            if style_data is not None:
                painting = uploads.decode(style_data, "the style image", max_side=STYLE_IMAGE_SIDE)
                del style_data
            style_source = painting if painting is not None else (
                str(preset_painting) if preset_painting is not None else entry.name)
            options = dataclasses.replace(options, style=style_source,
                                          size=size or min(max(image.size), config.max_size))
            stylizer = load_stylizer(catalog, entry, style)
            try:
                result = stylizer.stylize(image, options)
            except MemoryError:
                fail(413, "out of memory: try a smaller size")
            png = encode_png(result)
    except Busy:
        fail(503, "too many stylizations at once: try again shortly", headers={"Retry-After": "2"})
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Response(png, media_type="image/png",
                    headers={"X-Brushwork-Method": chosen, "X-Brushwork-Model": entry.name,
                             "X-Brushwork-Time-Ms": f"{elapsed_ms:.0f}", "Cache-Control": "no-store"})

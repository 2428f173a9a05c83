"""What this server can paint with: `/v1/info` (version, limits, methods), `/v1/styles` (the presets'
paintings and the built-in networks' styles) and `/v1/models`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from brushwork import version
from brushwork.server.catalog import ANY_STYLE_METHODS, Catalog, auto_any_style_method
from brushwork.server.http_errors import fail
from brushwork.server.state import CatalogDep, ConfigDep, JobsDep

# What /v1/info says of the any-style methods; the dispatch table's descriptions are written for the command line.
ANY_STYLE_DESCRIPTIONS = {
    "adain": "fast, any style image: adaptive instance normalization of VGG-19 features, then a trained decoder "
             "(Huang and Belongie 2017)",
    "wct": "fast, any style image: whitening and colouring of VGG-19 features at five layers (Li et al. 2017); "
           "slower than adain",
    "predict": "fast, any style image: a style-prediction network sets the norm parameters of a transformation "
               "network (Ghiasi et al. 2017); strength moves between the photo's own style and the image's",
}
# Presets are files the app ships and never change while it runs.
CACHE_A_DAY = {"Cache-Control": "public, max-age=86400"}

router = APIRouter(tags=["catalog"])


def method_list(catalog: Catalog) -> list[dict]:
    """Every method, whether this server can run it (has its model) and which `auto` picks."""
    models = catalog.models()
    available = catalog.any_style_models(models)
    auto = auto_any_style_method(available)
    methods = [
        {"name": "feedforward", "endpoint": "/v1/stylize", "available": any(m.public()["fast"] for m in models),
         "style_image": False, "auto": True,
         "description": "fast: one pass of a network trained on one painting (seconds); only for named styles with "
                        "a trained model"},
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


@router.get("/v1/info", summary="Version, limits and methods")
def info(config: ConfigDep, catalog: CatalogDep, jobs: JobsDep):
    return {
        "version": version.__version__,
        "methods": method_list(catalog),
        "limits": {"max_upload_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels,
                   "max_size": config.max_size, "max_steps": config.max_steps, "result_ttl": config.result_ttl,
                   "max_video_bytes": config.max_video_bytes, "max_video_frames": config.max_video_frames},
        "jobs": jobs.stats(),
    }


@router.get("/v1/styles", summary="Style presets (paintings) with thumbnails and credits")
def styles(catalog: CatalogDep):
    models = catalog.models()
    any_style = list(catalog.any_style_models(models))  # one-pass methods that paint any preset from its image
    out = []
    for p in catalog.presets():
        model = catalog.fast_model_for(p.name, models)
        out.append({
            "name": p.name, "title": p.title, "artist": p.artist, "year": p.year,
            "credit": f"{p.title}, {p.artist}" + (f", {p.year}" if p.year else ""),
            "thumbnail_url": f"/v1/styles/{p.name}/thumbnail",
            "image_url": f"/v1/styles/{p.name}/image",
            "fast_model": model.name if model is not None else None,
            "fast_model_kind": model.kind if model is not None else None,  # "multi": a many-style model's row
            "methods": (["feedforward"] if model is not None else []) + any_style + ["optimize"],
        })
    # The styles of a built-in many-style network: no painting, so its own thumbnail, and one method.
    for name, entry in catalog.network_styles(models):
        out.append({
            "name": name, "title": name.replace("-", " ").capitalize(), "artist": f"{entry.name} network",
            "year": None, "credit": f"{name}, a style of the {entry.name} network",
            "thumbnail_url": f"/v1/styles/{name}/thumbnail", "image_url": None,
            "fast_model": entry.name, "fast_model_kind": "multi", "methods": ["feedforward"],
        })
    return {"styles": out}


@router.get("/v1/styles/{name}/thumbnail", summary="A preset's thumbnail (JPEG)",
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "unknown preset"}})
def style_thumbnail(name: str, catalog: CatalogDep):
    data = catalog.thumbnail(name)
    if data is None:
        fail(404, f"unknown style preset {name!r}")
    return Response(data, media_type="image/jpeg", headers=CACHE_A_DAY)


@router.get("/v1/styles/{name}/image", summary="A preset's full painting",
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "unknown preset"}})
def style_image_file(name: str, catalog: CatalogDep):
    preset = catalog.preset(name)
    if preset is None:
        fail(404, f"unknown style preset {name!r}")
    return FileResponse(preset.path, media_type="image/jpeg", headers=CACHE_A_DAY)


@router.get("/v1/models", summary="Trained models the server can use")
def models(catalog: CatalogDep):
    return {"models": [m.public() for m in catalog.models()]}

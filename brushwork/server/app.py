"""`create_app`: the web page (`/`) and the HTTP API (`/v1`) assembled from the routers in
`brushwork.server.routes`, on the shared pieces of `brushwork.server.state`.

A front end only: requests are parsed and checked, images decoded from the uploaded bytes in memory,
and the work handed to `brushwork.methods` (one-pass stylization inline and bounded, optimization as
background jobs). Every error a client can cause is a 4xx with a JSON body `{"error": "..."}`.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from brushwork import version
from brushwork.server.config import ServerConfig
from brushwork.server.http_errors import add_error_handlers
from brushwork.server.routes import catalog, jobs, pages, stylize, videos
from brushwork.server.state import VggCache, attach_state
from brushwork.server.uploads import UploadGuard

# VggCache lives in state.py; it is named here too for code that reaches the jobs' loss network
# through the app module (tests/features/test_vgg.py).
__all__ = ["VggCache", "create_app"]

DESCRIPTION = (
    "Neural style transfer over HTTP: fast stylization in one pass, with a style's trained model or any uploaded "
    "style image (`POST /v1/stylize`), image optimization as background jobs (`/v1/jobs`), and videos painted frame by "
    "frame with flicker removed, also as background jobs (`POST /v1/video-jobs`). `GET /v1/info` "
    "lists the methods and which this server can run. Errors are JSON objects `{\"error\": \"...\"}`."
)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.jobs.start()
    try:
        yield
    finally:
        await asyncio.to_thread(app.state.jobs.stop, 10.0)


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The web app and API. `config` holds the limits, worker counts and the model directory."""
    config = config or ServerConfig()
    config.validate()
    app = FastAPI(
        title="Brushwork",
        version=version.__version__,
        description=DESCRIPTION,
        openapi_url="/v1/openapi.json",
        docs_url=None,  # the interactive docs pages load scripts from a CDN; the app serves none
        redoc_url=None,
        lifespan=lifespan,
    )
    attach_state(app, config)
    # Room for two images at the upload limit, plus the form's other fields.
    # A video job: the video, a style image and the form.
    app.add_middleware(UploadGuard, max_body=2 * config.max_upload_bytes + 1024 * 1024,
                       path_limits={"/v1/video-jobs": config.max_video_bytes + config.max_upload_bytes + 1024 * 1024})
    add_error_handlers(app)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files(), name="static")
    app.include_router(catalog.router)
    app.include_router(stylize.router)
    app.include_router(jobs.submission_router(config))
    app.include_router(videos.router)
    app.include_router(jobs.router)
    return app

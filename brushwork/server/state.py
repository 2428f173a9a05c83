"""What the routes share: one of each per app, made by `create_app` and kept on `app.state`.

Routes take them as FastAPI dependencies (`catalog: CatalogDep`), so a route module holds no state of
its own and several apps (tests make many) never share any.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Annotated

from fastapi import Depends, Request

from brushwork.features import shared_vgg19
from brushwork.runtime import resolve_runtime
from brushwork.server.catalog import Catalog
from brushwork.server.config import ServerConfig
from brushwork.server.jobs import JobManager
from brushwork.server.uploads import UploadReader


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


def attach_state(app, config: ServerConfig) -> None:
    """Make the app's shared pieces from its config and keep them on `app.state`."""
    state = app.state
    state.config = config
    state.catalog = Catalog(config.model_dir, device=config.device, precision=config.precision,
                            builtin=config.builtin_models)
    state.jobs = JobManager(workers=config.workers, queue_size=config.queue_size, ttl=config.result_ttl,
                            max_jobs=config.max_jobs)
    state.vggs = VggCache(config.device, config.precision)
    state.stylize_gate = Gate(config.stylize_workers, config.stylize_queue)
    state.uploads = UploadReader(config.max_upload_bytes, config.max_pixels,
                                 decode_slots=max(2, config.stylize_workers))


def _config(request: Request) -> ServerConfig:
    return request.app.state.config


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def _jobs(request: Request) -> JobManager:
    return request.app.state.jobs


def _vggs(request: Request) -> VggCache:
    return request.app.state.vggs


def _stylize_gate(request: Request) -> Gate:
    return request.app.state.stylize_gate


def _uploads(request: Request) -> UploadReader:
    return request.app.state.uploads


ConfigDep = Annotated[ServerConfig, Depends(_config)]
CatalogDep = Annotated[Catalog, Depends(_catalog)]
JobsDep = Annotated[JobManager, Depends(_jobs)]
VggsDep = Annotated[VggCache, Depends(_vggs)]
StylizeGateDep = Annotated[Gate, Depends(_stylize_gate)]
UploadsDep = Annotated[UploadReader, Depends(_uploads)]

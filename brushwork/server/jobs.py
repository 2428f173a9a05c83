"""Background jobs: a bounded queue, a fixed number of worker threads, cancellation and expiry.

Generic on purpose: a job carries a `run(job)` callable (the app's, which calls a method) and
reports through `job.update(...)`. Torch releases the GIL inside its kernels, so plain threads
run optimizations in parallel. Workers never die: whatever a job raises ends that job only.

States: queued -> running -> done | failed | cancelled. Cancelling a queued job drops it at once;
cancelling a running one sets `job.cancel`, and the job's progress callback raises `JobCancelled`
at the next step, which frees the worker.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brushwork.errors import BrushworkError

log = logging.getLogger("brushwork.server")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class QueueFull(Exception):
    """No room in the queue; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__("the job queue is full: try again later")
        self.retry_after = retry_after


class JobCancelled(Exception):
    """Raised inside a running job (from its progress callback) when it has been cancelled."""


@dataclass
class Job:
    id: str
    kind: str
    run: Callable[["Job"], Any] | None = field(repr=False)
    state: str = QUEUED
    step: int = 0
    total: int = 0
    losses: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # method-specific progress (scale, size, ...)
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: bytes | None = field(default=None, repr=False)
    result_type: str = "image/png"
    preview: bytes | None = field(default=None, repr=False)
    preview_step: int = -1
    version: int = 0  # bumped on every change; event streams watch it
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    # A result kept on disk instead of in `result` (a video): served from there until the job is discarded.
    result_file: Path | None = None
    # Called once when the job's files are no longer needed: when it fails or is cancelled, or, once done,
    # when it is deleted or expires (or the server stops). Frees what the job holds outside memory, such as
    # a video job's temporary folder with its upload and its result.
    cleanup: Callable[[], None] | None = field(default=None, repr=False)

    def update(self, **changes) -> None:
        for k, v in changes.items():
            setattr(self, k, v)
        self.version += 1

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled()

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started


class JobManager:
    def __init__(self, *, workers: int = 1, queue_size: int = 8, ttl: float = 900.0, max_jobs: int = 64,
                 typical_seconds: float = 30.0):
        self.workers = workers
        self.queue_size = queue_size
        self.ttl = ttl
        self.max_jobs = max_jobs
        self.typical_seconds = typical_seconds  # a guess for Retry-After before any job has finished
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._pending: deque[Job] = deque()
        self._running = 0
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._durations: deque[float] = deque(maxlen=20)

    # ---------------------------------------------------------------------------------------
    # Life cycle

    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            self._stopping = False
            for i in range(self.workers):
                t = threading.Thread(target=self._work, name=f"brushwork-job-{i}", daemon=True)
                t.start()
                self._threads.append(t)
            t = threading.Thread(target=self._janitor, name="brushwork-jobs-janitor", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel everything and wait (up to `timeout`) for the workers to return."""
        with self._lock:
            self._stopping = True
            for job in list(self._pending):
                self._finish(job, CANCELLED, error="the server is shutting down")
            self._pending.clear()
            for job in self._jobs.values():
                job.cancel.set()
                if job.state in FINISHED:  # running ones clean up as they end
                    self._clean_up(job)
            self._lock.notify_all()
            threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # ---------------------------------------------------------------------------------------
    # The API the app uses

    def submit(self, kind: str, run: Callable[[Job], Any], cleanup: Callable[[], None] | None = None) -> Job:
        """Queue `run(job)`; `cleanup()` runs once when the job's files are no longer needed (`Job.cleanup`),
        or at once when the queue is full."""
        with self._lock:
            self._purge()
            if self._stopping or len(self._pending) >= self.queue_size + max(0, self.workers - self._running):
                if cleanup is not None:
                    cleanup()
                raise QueueFull(self._retry_after())
            job = Job(id=secrets.token_urlsafe(18), kind=kind, run=run, cleanup=cleanup)
            self._jobs[job.id] = job
            self._pending.append(job)
            self._lock.notify_all()
            return job

    def has_room(self) -> bool:
        with self._lock:
            return not self._stopping and len(self._pending) < self.queue_size + max(0, self.workers - self._running)

    def retry_after(self) -> int:
        with self._lock:
            return self._retry_after()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._purge()
            return self._jobs.get(job_id)

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to start; None when not queued."""
        with self._lock:
            for i, j in enumerate(self._pending):
                if j is job:
                    return i + 1
            return None

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; delete a finished one. None when unknown."""
        with self._lock:
            self._purge()
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == QUEUED:
                self._pending.remove(job)
                self._finish(job, CANCELLED, error="cancelled")
            elif job.state == RUNNING:
                job.cancel.set()
                job.update()  # wake event streams
            else:
                del self._jobs[job_id]
                self._discard(job)
            return job

    def stats(self) -> dict:
        with self._lock:
            return {"workers": self.workers, "running": self._running, "queued": len(self._pending),
                    "queue_size": self.queue_size, "stored": len(self._jobs)}

    # ---------------------------------------------------------------------------------------
    # Workers

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                job = self._pending.popleft()
                self._running += 1
                job.update(state=RUNNING, started=time.time())
            try:
                self._run_one(job)
            finally:
                with self._lock:
                    self._running -= 1
                    if job.started is not None and job.state == DONE:
                        self._durations.append(time.time() - job.started)

    def _run_one(self, job: Job) -> None:
        try:
            job.check_cancelled()
            job.run(job)
        except JobCancelled:
            with self._lock:
                self._finish(job, CANCELLED, error="cancelled")
        except BrushworkError as exc:
            with self._lock:
                self._finish(job, FAILED, error=str(exc))
        except MemoryError:
            with self._lock:
                self._finish(job, FAILED, error="out of memory: try a smaller size")
        except BaseException as exc:  # a bug: the job fails, the worker lives on
            log.exception("job %s failed", job.id[:6])
            first = str(exc).splitlines()[0] if str(exc) else ""
            with self._lock:
                self._finish(job, FAILED, error=f"internal error: {type(exc).__name__}: {first}".rstrip(": "))
        else:
            with self._lock:
                if job.cancel.is_set() and job.result is None and job.result_file is None:
                    self._finish(job, CANCELLED, error="cancelled")
                else:
                    self._finish(job, DONE)
        finally:
            job.run = None  # drop the inputs the closure holds

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        job.run = None
        if state != DONE:  # nothing to serve: its files can go now
            self._clean_up(job)
        job.update(state=state, error=error, finished=time.time())
        self._lock.notify_all()

    # ---------------------------------------------------------------------------------------
    # Expiry

    def _janitor(self) -> None:
        interval = max(0.05, min(30.0, self.ttl / 4))
        while True:
            with self._lock:
                if self._stopping:
                    return
                self._purge()
                self._lock.wait(interval)

    def _purge(self) -> None:
        now = time.time()
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        expired = {j.id for j in finished if j.finished is not None and now - j.finished > self.ttl}
        excess = len(finished) - len(expired) - self.max_jobs
        if excess > 0:
            live = sorted((j for j in finished if j.id not in expired), key=lambda j: j.finished or 0)
            expired.update(j.id for j in live[:excess])
        for job_id in expired:
            self._discard(self._jobs.pop(job_id))

    def _discard(self, job: Job) -> None:
        """A finished job leaves: its result and its files go."""
        self._clean_up(job)
        job.update(result=None, result_file=None, preview=None)

    def _clean_up(self, job: Job) -> None:
        cleanup, job.cleanup = job.cleanup, None
        if cleanup is not None:
            try:
                cleanup()
            except Exception:  # a leftover temporary file must not keep the job from ending
                log.exception("cleaning up after job %s failed", job.id[:6])

    def _retry_after(self) -> int:
        typical = sum(self._durations) / len(self._durations) if self._durations else self.typical_seconds
        return max(1, min(600, round(typical * max(1, len(self._pending)) / max(1, self.workers))))

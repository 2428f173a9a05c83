"""The server's settings: limits, workers and where models come from. One dataclass, defaults here.

`brushwork serve` builds its flags from these fields (like every other options dataclass), so the
command line and `create_app(ServerConfig(...))` cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from brushwork.errors import BrushworkError
from brushwork.options import option as _opt


@dataclass
class ServerConfig:
    max_upload_bytes: int = _opt(25 * 1024 * 1024, "largest accepted image upload in bytes (larger: 413)")
    max_pixels: int = _opt(50_000_000, "largest accepted image in pixels, checked before decoding (larger: 413)")
    max_size: int = _opt(1024, "largest output long side in pixels a request may ask for")
    max_video_bytes: int = _opt(200 * 1024 * 1024, "largest accepted video upload in bytes (larger: 413)")
    max_video_frames: int = _opt(900, "most frames a video job paints (longer videos: the rest is cut)")
    max_steps: int = _opt(500, "largest number of optimization steps (at the final scale) a job may ask for")
    workers: int = _opt(1, "background jobs (optimization, video) run at once (threads)")
    queue_size: int = _opt(8, "background jobs waiting for a worker before new ones get 503")
    stylize_workers: int = _opt(2, "fast stylizations run at once")
    stylize_queue: int = _opt(16, "fast stylizations waiting before new ones get 503")
    result_ttl: float = _opt(900.0, "seconds a finished job (and its result) is kept")
    max_jobs: int = _opt(64, "finished jobs kept at most; the oldest are dropped first")
    preview_interval: float = _opt(1.0, "seconds between live preview images of a running job")
    preview_size: int = _opt(384, "long side of live preview images in pixels")
    model_dir: str | None = _opt(None, "directory of models (*.safetensors: per-style models, AdaIN or WCT decoders, "
                                 "an arbitrary-style model) instead of the shipped ones")
    builtin_models: bool = _opt(True, "serve the built-in models too (Magenta's magenta-arbitrary for any painting and "
                                "magenta-26's 26 styles), beside the model directory's")
    device: str = _opt("auto", "device for the methods: auto (CUDA when present), cpu, cuda or cuda:N")
    precision: str = _opt("auto", "auto, fp32 or bf16")

    def validate(self) -> None:
        def bad(msg):
            raise BrushworkError(msg)

        for name in ("max_upload_bytes", "max_video_bytes", "max_video_frames", "max_pixels", "workers",
                     "stylize_workers", "max_jobs", "max_steps"):
            if getattr(self, name) < 1:
                bad(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        for name in ("queue_size", "stylize_queue"):
            if getattr(self, name) < 0:
                bad(f"{name.replace('_', ' ')} must be zero or more, got {getattr(self, name)}")
        if not 16 <= self.max_size <= 16384:
            bad(f"max size must be between 16 and 16384 pixels, got {self.max_size}")
        if not self.result_ttl > 0:
            bad(f"result ttl must be a positive number of seconds, got {self.result_ttl}")
        if not self.preview_interval >= 0:
            bad(f"preview interval must be zero or more seconds, got {self.preview_interval}")
        if not 16 <= self.preview_size <= 4096:
            bad(f"preview size must be between 16 and 4096 pixels, got {self.preview_size}")

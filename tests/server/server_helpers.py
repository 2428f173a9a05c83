"""Helpers for the server tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zlib

import numpy as np
from PIL import Image

TINY = {"width": 8, "num_residual": 1}


def save_tiny_model(directory, name="starry-night", preset="starry-night"):
    from brushwork.models.registry import save_model
    from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

    config = TransformerConfig(**TINY)
    card = {"name": name, "style": {"preset": preset, "title": "test", "artist": "test"}, "recipe": "test"}
    return save_model(directory / f"{name}.safetensors", "feedforward", StyleTransferNet(config).state_dict(),
                      config.to_dict(), card)


def image_bytes(size=(48, 32), fmt="PNG", mode="RGB", seed=0, exif_orientation=None) -> bytes:
    w, h = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), 0.5 + 0.0 * x], -1)
    arr = np.clip(base * 0.8 + rng.random((h, w, 3)) * 0.2, 0, 1)
    im = Image.fromarray((arr * 255).astype(np.uint8), "RGB")
    if mode == "RGBA":
        im = im.convert("RGBA")
        alpha = np.full((h, w), 255, np.uint8)
        alpha[:, : w // 2] = 0
        im.putalpha(Image.fromarray(alpha))
    buf = io.BytesIO()
    kwargs = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def photo(data=None, name="photo.png", ctype="image/png"):
    """The photo field of a form upload."""
    return {"photo": (name, image_bytes() if data is None else data, ctype)}


def assert_error(r, status, *words):
    """A JSON error of this status whose one message contains every word (case-insensitive); returns it."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    for w in words:
        assert w.lower() in body["error"].lower(), body["error"]
    return body["error"]


def bomb_png(width=100_000, height=100_000) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb stand-in)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def make_app(model_dir, vgg=None, **overrides):
    from brushwork.server import ServerConfig, create_app

    # Only the directory's models unless a test asks for the built-in ones (Magenta's networks) too.
    settings = {"model_dir": str(model_dir), "preview_interval": 0.0, "max_size": 256, "device": "cpu",
                "precision": "fp32", "builtin_models": False}
    settings.update(overrides)
    app = create_app(ServerConfig(**settings))
    if vgg is not None:  # share the session's loss network instead of loading one per app
        app.state.vggs.put("max", vgg)
    return app


def wait_for(predicate, timeout=60.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 30, what="the server to start")
        if not self.server.started:
            raise RuntimeError("the server did not start")
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(15)


def job_form(**overrides):
    form = {"style": "udnie", "size": "32", "steps": "2", "scales": "1"}
    form.update({k: str(v) for k, v in overrides.items()})
    return {k: v for k, v in form.items() if v != "None"}


def start_job(client, files=None, **form):
    r = client.post("/v1/jobs", files=files or photo(), data=job_form(**form))
    assert r.status_code == 202, r.text
    return r.json()


def wait_state(client, job_id, states=("done", "failed", "cancelled"), timeout=120):
    def check():
        body = client.get(f"/v1/jobs/{job_id}").json()
        return body if body.get("state") in states else None

    return wait_for(check, timeout, 0.05, f"job to reach {states}")

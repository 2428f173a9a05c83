"""Load test of `brushwork serve`: a bounded number of concurrent clients for a bounded time.

Starts the server on 127.0.0.1 (a free port) in a subprocess, sends a mix of `GET /v1/styles` and
`POST /v1/stylize` (a small photo, a fast preset model) from `--concurrency` clients for
`--duration` seconds (or until `--max-requests`), then stops the server and prints, per endpoint,
requests, errors, throughput and latency percentiles, plus the server's peak memory (VmHWM).

    python3 benchmarks/load.py [--duration 20] [--concurrency 4] [--photo-size 256]

The fast model: a shipped model for `--style` when there is one, else a standard-size network with
random weights written to a temporary directory (the same computation as a trained one).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=20.0, help="seconds of load (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=4, help="concurrent clients (default: %(default)s)")
    p.add_argument("--max-requests", type=int, default=5000,
                   help="stop after this many requests (default: %(default)s)")
    p.add_argument("--photo-size", type=int, default=256, help="long side of the uploaded photo (default: %(default)s)")
    p.add_argument("--style", default="starry-night", help="preset with a fast model (default: %(default)s)")
    p.add_argument("--stylize-share", type=float, default=0.5,
                   help="fraction of requests that are POST /v1/stylize, the rest GET /v1/styles "
                        "(default: %(default)s)")
    p.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds (default: %(default)s)")
    return p.parse_args()


def photo_bytes(long_side: int) -> bytes:
    from PIL import Image

    path = ROOT / "brushwork" / "assets" / "examples" / "chelsea.jpg"
    im = Image.open(path).convert("RGB")
    im.thumbnail((long_side, long_side))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def model_dir_for(style: str, tmp: str) -> tuple[str | None, str]:
    """(--model-dir to pass or None for the shipped ones, a description of the model)."""
    from brushwork.models.registry import weights_dir

    shipped = weights_dir() / f"{style}.safetensors"
    if shipped.is_file():
        return None, f"shipped model {style}"
    from brushwork.models.registry import save_model
    from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

    config = TransformerConfig()
    save_model(Path(tmp) / f"{style}.safetensors", "feedforward", StyleTransferNet(config).state_dict(),
               config.to_dict(), {"name": style, "style": {"preset": style}})
    return tmp, f"untrained stand-in (width {config.width}, {config.num_residual} residual blocks)"


def start_server(model_dir: str | None, flags: list[str] | None = None):
    """`brushwork serve` on a free loopback port with these extra `flags`: (process, base URL)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "brushwork.cli", "serve", "--host", "127.0.0.1", "--port", "0", *(flags or [])]
    if model_dir:
        cmd += ["--model-dir", model_dir]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    found: dict = {}
    log: list[str] = []

    def read():
        for line in proc.stderr:
            log.append(line)
            m = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", line)
            if m:
                found["url"] = m.group(1)
        # keep draining so the server never blocks on a full pipe

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while "url" not in found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the server did not start:\n" + "".join(log))
        time.sleep(0.05)
    return proc, found["url"]


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float | None:
    """A process's peak resident memory in MB (`field="VmRSS"`: its resident memory now); None off Linux."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


async def run_load(url: str, args, photo: bytes) -> tuple[list[tuple[str, int | str, float]], float]:
    import httpx

    results: list[tuple[str, int | str, float]] = []
    stop_at = time.monotonic() + args.duration
    counter = {"n": 0}

    async def client(index: int, http: httpx.AsyncClient):
        i = index
        while time.monotonic() < stop_at and counter["n"] < args.max_requests:
            counter["n"] += 1
            i += 1
            stylize = (i * args.stylize_share) % 1.0 + args.stylize_share >= 1.0 if args.stylize_share < 1 else True
            kind = "POST /v1/stylize" if stylize else "GET /v1/styles"
            t0 = time.perf_counter()
            try:
                if stylize:
                    r = await http.post("/v1/stylize", files={"photo": ("photo.jpg", photo, "image/jpeg")},
                                        data={"style": args.style})
                    ok = r.status_code == 200 and r.headers.get("content-type") == "image/png"
                else:
                    r = await http.get("/v1/styles")
                    ok = r.status_code == 200 and len(r.json()["styles"]) > 0
                status: int | str = r.status_code if ok or r.status_code != 200 else "bad body"
            except Exception as exc:  # a transport error counts as an error, the run goes on
                status = type(exc).__name__
            results.append((kind, status, time.perf_counter() - t0))

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout, limits=limits) as http:
        await asyncio.gather(*(client(i, http) for i in range(args.concurrency)))
    return results, time.perf_counter() - started


def main() -> int:
    args = parse_args()
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, model_desc = model_dir_for(args.style, tmp)
        photo = photo_bytes(args.photo_size)
        proc, url = start_server(model_dir)
        try:
            # Warm up: the first stylization loads the model (not part of the measurement).
            t0 = time.perf_counter()
            r = httpx.post(url + "/v1/stylize", files={"photo": ("p.jpg", photo, "image/jpeg")},
                           data={"style": args.style}, timeout=300)
            if r.status_code != 200:
                raise SystemExit(f"warm-up stylization failed: {r.status_code} {r.text}")
            warmup = time.perf_counter() - t0
            rss_idle = peak_rss_mb(proc.pid)
            results, wall = asyncio.run(run_load(url, args, photo))
            rss_peak = peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    from PIL import Image

    w, h = Image.open(io.BytesIO(photo)).size
    print(f"brushwork serve under load: {args.concurrency} concurrent clients for {args.duration:g} s "
          f"(at most {args.max_requests} requests); photo {w}x{h} JPEG ({len(photo) / 1024:.0f} KB), "
          f"style {args.style!r}: {model_desc}; {os.cpu_count()} CPUs")
    print(f"warm-up stylization (loads the model): {warmup * 1000:.0f} ms\n")
    header = (f"{'endpoint':<18} {'requests':>8} {'errors':>6} {'req/s':>7} "
              f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(header)
    print("-" * len(header))
    kinds = sorted({k for k, _, _ in results}) + ["all"]
    for kind in kinds:
        rows = [r for r in results if kind == "all" or r[0] == kind]
        lat = [t * 1000 for _, _, t in rows]
        errors = sum(1 for _, s, _ in rows if s != 200)
        print(f"{kind:<18} {len(rows):>8} {errors:>6} {len(rows) / wall:>7.1f} {percentile(lat, .5):>8.1f} "
              f"{percentile(lat, .9):>8.1f} {percentile(lat, .99):>8.1f} {max(lat, default=float('nan')):>8.1f}")
    bad = {}
    for _, s, _ in results:
        if s != 200:
            bad[s] = bad.get(s, 0) + 1
    print(f"\nwall time {wall:.1f} s; errors by status: {bad or 'none'}")
    fmt = lambda v: "n/a" if v is None else f"{v:.0f} MB"  # noqa: E731
    print(f"server peak memory (VmHWM): {fmt(rss_peak)} (after warm-up: {fmt(rss_idle)})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

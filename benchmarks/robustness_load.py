"""Robustness under load: `brushwork serve` answering a concurrent mix of good and garbage requests.

Starts the server on 127.0.0.1 (a free port, the default limits) in a subprocess, as benchmarks/load.py
does, and sends from `--concurrency` clients for `--duration` seconds (or until `--max-requests`) a
seeded random mix of good requests (stylizations, catalog reads, small optimization and video jobs that
are cancelled at once) and garbage: random bytes, truncated and bit-flipped photos and videos, a
decompression bomb,
uploads over the size limit (declared, and chunked without a length), bodies that are not multipart or
are broken multipart, out-of-range and non-numeric form fields, unknown fields and paths. The server's
resident memory is sampled all along. Prints per class of request the statuses and latencies, and the
memory over the run; exits 1 when any answer is a 500 (or another 5xx than a 503 with Retry-After, the
documented "busy, retry"), a transport error, or a good request that did not succeed.

    python3 benchmarks/robustness_load.py [--duration 30] [--concurrency 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from load import model_dir_for, peak_rss_mb, percentile, photo_bytes, start_server

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "server"), str(ROOT / "tests")]  # the test suite's builders of files
from clips import make_clip  # noqa: E402
from server_helpers import bomb_png, image_bytes  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default: %(default)s)")
    p.add_argument("--max-requests", type=int, default=5000, help="stop after this many (default: %(default)s)")
    p.add_argument("--good-share", type=float, default=0.3,
                   help="fraction of requests that are good ones (default: %(default)s)")
    p.add_argument("--style", default="starry-night", help="preset with a fast model (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the request mix (default: %(default)s)")
    p.add_argument("--only", default=None, metavar="CLASS,...",
                   help="send only these classes of request (the names printed), to find which one costs memory")
    p.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds (default: %(default)s)")
    return p.parse_args()


def damaged(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    if rng.random() < 0.5:
        return bytes(out[: rng.randrange(1, len(out))])
    for _ in range(rng.randint(1, 16)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def requests(photo: bytes, style: str):
    """(name, good?, weight, make(rng) -> httpx request arguments) for each class of request."""
    stylize = "/v1/stylize"
    upload = lambda data, ctype="image/jpeg": {"photo": ("photo.jpg", data, ctype)}  # noqa: E731
    good_form = {"style": style}
    job_form = {"style": "udnie", "size": "32", "steps": "1", "scales": "1"}
    over_limit = os.urandom(26 * 1024 * 1024)  # the default limit is 25 MiB
    with tempfile.TemporaryDirectory() as tmp:  # a 12-frame clip with sound, as a phone would upload
        clip = make_clip(Path(tmp) / "clip.mp4", w=96, h=64, frames=12).read_bytes()
    video = lambda data: {"video": ("clip.mp4", data, "video/mp4")}  # noqa: E731

    async def chunked_over_limit():
        for _ in range(60):  # 60 MiB without a Content-Length: refused while it is read
            yield b"\0" * (1024 * 1024)

    return [
        ("stylize", True, 6, lambda r: ("POST", stylize, dict(files=upload(photo), data=good_form))),
        ("GET styles/info", True, 3, lambda r: ("GET", r.choice(["/v1/styles", "/v1/info", "/v1/models"]), {})),
        ("job (cancelled)", True, 1, lambda r: ("POST", "/v1/jobs", dict(files=upload(photo), data=job_form))),
        ("video job (cancelled)", True, 1, lambda r: ("POST", "/v1/video-jobs", dict(files=video(clip),
                                                                                      data=good_form))),
        ("damaged video", False, 2, lambda r: ("POST", "/v1/video-jobs", dict(files=video(damaged(clip, r)),
                                                                              data=good_form))),
        ("random bytes", False, 3, lambda r: ("POST", r.choice([stylize, "/v1/jobs"]),
                                              dict(files=upload(r.randbytes(r.randrange(1, 4096))), data=good_form))),
        ("damaged photo", False, 4, lambda r: ("POST", stylize, dict(files=upload(damaged(photo, r)), data=good_form))),
        ("damaged PNG/GIF/WebP", False, 2, lambda r: ("POST", stylize, dict(files=upload(damaged(
            image_bytes((64, 48), r.choice(["PNG", "GIF", "WEBP", "BMP"]), seed=r.randrange(99)), r), "image/png"),
            data=good_form))),
        ("decompression bomb", False, 1, lambda r: ("POST", r.choice([stylize, "/v1/jobs"]),
                                                    dict(files=upload(bomb_png(), "image/png"), data=good_form))),
        ("upload over limit", False, 1, lambda r: ("POST", stylize, dict(files=upload(over_limit), data=good_form))),
        ("chunked over limit", False, 1, lambda r: ("POST", stylize, dict(
            content=chunked_over_limit(), headers={"content-type": "multipart/form-data; boundary=x"}))),
        ("not multipart", False, 2, lambda r: ("POST", stylize, dict(
            content=r.randbytes(200), headers={"content-type": r.choice(["application/json", "text/plain", ""])}))),
        ("broken multipart", False, 2, lambda r: ("POST", r.choice([stylize, "/v1/jobs"]), dict(
            content=b"--x\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a\"\r\n\r\n"
            + r.randbytes(r.randrange(0, 300)), headers={"content-type": "multipart/form-data; boundary=x"}))),
        ("bad form fields", False, 4, lambda r: ("POST", stylize, dict(files=upload(photo), data={
            **good_form, r.choice(["strength", "alpha", "size", "refine_steps", "method", "preserve_color",
                                   "colour", "vgg_weights"]): r.choice(["nan", "-1", "1e309", "9" * 30, "x" * 5000,
                                                                        "", "wct", "../../etc/passwd"])}))),
        ("bad job options", False, 2, lambda r: ("POST", "/v1/jobs", dict(files=upload(photo), data={
            **job_form, r.choice(["steps", "size", "scales", "style_layers", "init", "optimizer", "style_weight"]):
                r.choice(["-5", "100000", "relu9_9:1", "nan", "inf", "sgd", ":,:"])}))),
        ("unknown paths/ids", False, 2, lambda r: (r.choice(["GET", "DELETE"]), r.choice(
            ["/v1/jobs/" + r.randbytes(8).hex(), "/v1/jobs/x/result", "/v1/styles/nope/thumbnail",
             "/v1/" + "a" * 2000, "/static/../../etc/passwd"]), {})),
    ]


def sample_memory(pid: int, samples: list[tuple[float, float]], stop: threading.Event) -> None:
    start = time.monotonic()
    while not stop.is_set():
        rss = peak_rss_mb(pid, "VmRSS")
        if rss is not None:
            samples.append((time.monotonic() - start, rss))
        stop.wait(0.25)


async def run_mix(url: str, args, photo: bytes):
    import httpx

    classes = requests(photo, args.style)
    if args.only:
        classes = [c for c in classes if c[0] in args.only.split(",")]
        if not classes:
            raise SystemExit(f"--only {args.only!r} names no class of request")
    good = [c for c in classes if c[1]]
    bad = [c for c in classes if not c[1]]
    rng = random.Random(args.seed)
    results: list[tuple[str, bool, int | str, float, bool]] = []  # class, good?, status, seconds, Retry-After
    stop_at = time.monotonic() + args.duration
    count = [0]

    async def client(http: httpx.AsyncClient):
        while time.monotonic() < stop_at and count[0] < args.max_requests:
            count[0] += 1
            pool = good if (rng.random() < args.good_share and good) or not bad else bad
            name, is_good, _, make = rng.choices(pool, weights=[c[2] for c in pool])[0]
            method, path, kwargs = make(rng)
            t0 = time.perf_counter()
            try:
                r = await http.request(method, path, **kwargs)
                status: int | str = r.status_code
                if r.status_code == 202:  # a job (a damaged video FFmpeg still reads, too): not what is measured
                    await http.delete(f"/v1/jobs/{r.json()['id']}")
                if r.status_code >= 400 and not r.headers.get("content-type", "").startswith("application/json"):
                    status = f"{r.status_code} without a JSON body"
                retry = "retry-after" in r.headers
            except Exception as exc:  # noqa: BLE001 - a transport error is a finding, the run goes on
                status, retry = type(exc).__name__, False
            results.append((name, is_good, status, time.perf_counter() - t0, retry))

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=args.timeout,
                                 limits=httpx.Limits(max_connections=args.concurrency)) as http:
        await asyncio.gather(*(client(http) for _ in range(args.concurrency)))
    return results, time.perf_counter() - started


def main() -> int:
    args = parse_args()
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, model_desc = model_dir_for(args.style, tmp)
        photo = photo_bytes(256)
        proc, url = start_server(model_dir)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        try:
            r = httpx.post(url + "/v1/stylize", files={"photo": ("p.jpg", photo, "image/jpeg")},
                           data={"style": args.style}, timeout=300)  # warm-up: loads the model
            if r.status_code != 200:
                raise SystemExit(f"warm-up stylization failed: {r.status_code} {r.text}")
            rss_warm = peak_rss_mb(proc.pid, "VmRSS")
            sampler = threading.Thread(target=sample_memory, args=(proc.pid, samples, stop), daemon=True)
            sampler.start()
            results, wall = asyncio.run(run_mix(url, args, photo))
            stop.set()
            sampler.join()
            rss_peak = peak_rss_mb(proc.pid)
            alive = httpx.get(url + "/v1/info", timeout=30).status_code == 200
        finally:
            stop.set()
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    print(f"brushwork serve under a mix of good and garbage requests: {args.concurrency} concurrent clients for "
          f"{args.duration:g} s (at most {args.max_requests}), seed {args.seed}, good share {args.good_share:g}; "
          f"style {args.style!r}: {model_desc}; {os.cpu_count()} CPUs\n")
    header = f"{'class':<22} {'good':>4} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses"
    print(header)
    print("-" * (len(header) + 20))
    failures = []
    for name in dict.fromkeys(r[0] for r in results):
        rows = [r for r in results if r[0] == name]
        statuses: dict = {}
        for _, is_good, status, _, retry in rows:
            statuses[status] = statuses.get(status, 0) + 1
            busy = status == 503 and retry
            if not isinstance(status, int) or (status >= 500 and not busy) or (is_good and status >= 400 and not busy):
                failures.append((name, status))
        lat = [r[3] * 1000 for r in rows]
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=lambda kv: str(kv[0])))
        print(f"{name:<22} {'yes' if rows[0][1] else 'no':>4} {len(rows):>8} {percentile(lat, .5):>8.0f} "
              f"{percentile(lat, .99):>8.0f}  {shown}")
    busy = sum(1 for r in results if r[2] == 503)
    print(f"\n{len(results)} requests in {wall:.1f} s; 503 (busy, with Retry-After): {busy}; "
          f"failures (500s, other 5xx, transport errors, good requests refused): {len(failures)}")
    if failures:
        print("  " + ", ".join(f"{n}: {s}" for n, s in failures[:10]))
    if samples:
        half = [rss for t, rss in samples if t >= samples[-1][0] / 2]
        quarters = [samples[min(len(samples) - 1, int(len(samples) * q))][1] for q in (0.25, 0.5, 0.75, 1.0)]
        print(f"server memory (VmRSS): {rss_warm:.0f} MB after warm-up; at 25/50/75/100% of the run "
              f"{' / '.join(f'{m:.0f}' for m in quarters)} MB; second half {min(half):.0f}-{max(half):.0f} MB; "
              f"peak (VmHWM) {rss_peak:.0f} MB")
    print(f"server answers after the run: {'yes' if alive else 'NO'}")
    return 1 if failures or not alive else 0


if __name__ == "__main__":
    sys.exit(main())

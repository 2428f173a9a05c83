"""`brushwork optimize`'s default result for a photo and a painting: the reference the quality
benchmarks (feed-forward, many-style, arbitrary-style) compare against.

Each result takes minutes on a CPU, so it is cached on disk, keyed by the bytes of both images, the
size and optimize's default options: a changed default is recomputed, an unchanged one is reused
across benchmark runs and across benchmarks.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / "out" / "benchmarks" / "optimize-cache"


def optimize_reference(content, style, size: int, cache=DEFAULT_CACHE, vgg=None):
    """(PIL image, seconds it took, or None when it came from the cache) for two image files."""
    from PIL import Image

    from brushwork.imaging import tensor_to_image
    from brushwork.methods.optimize import OptimizeOptions, run_optimization

    content, style, cache = Path(content), Path(style), Path(cache)
    key = hashlib.sha256()
    for p in (content, style):
        key.update(p.read_bytes())
    options = OptimizeOptions(size=size)
    key.update(repr(options).encode())
    path = cache / f"{content.stem}--{style.stem}--{size}--{key.hexdigest()[:12]}.png"
    if path.is_file():
        return Image.open(path).convert("RGB"), None
    start = time.perf_counter()
    result = run_optimization(content, [style], options, vgg=vgg)
    seconds = time.perf_counter() - start
    image = tensor_to_image(result.image)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    image.save(tmp)
    tmp.replace(path)
    return image, seconds


def psnr(image, reference) -> float:
    """PSNR in dB of an 8-bit image (uint8 array, or a tensor in [0, 1]) against a reference of the same shape.

    Both are compared as the 8-bit pixels a user gets, so paths that differ below one level score inf.
    """
    import numpy as np

    def pixels(x):
        if hasattr(x, "detach"):  # a tensor in [0, 1], as the stylizers return: rounded to its 8-bit levels
            x = (x.detach().float().cpu().clamp(0, 1) * 255).round().numpy()
        return np.asarray(x).astype(np.float64) / 255

    mse = float(((pixels(image) - pixels(reference)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)

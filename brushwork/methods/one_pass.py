"""What every one-pass method shares: the options (`StylizeOptions`), their defaults and checks, the
choice of runtime and backend, and the finishing of a stylized image (colour preservation, strength).

Feed-forward networks, style prediction, AdaIN and WCT all take a `StylizeOptions` and finish their
output with `finish`, so `--strength`, `--preserve-color` and the tiling options mean the same for each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from brushwork.errors import BrushworkError
from brushwork.imaging import match_color_statistics, resize, transfer_luminance
from brushwork.options import option as _opt
from brushwork.options import with_overrides
from brushwork.runtime import resolve_runtime

COLOR_MODES = ("none", "luminance", "histogram")
BACKENDS = ("auto", "torch", "onnxruntime")
DEFAULT_STYLE = "starry-night"
STATS_PIXELS = 2_100_000  # tiling: statistics from the whole image up to this size, else from a downscaled copy
TILE_CROSSFADE = 16  # default overlap = 2 x (receptive radius + 1) + this crossfade
MAX_REFINE_STEPS = 1000  # adain, wct: --refine-steps at most this


@dataclass
class StylizeOptions:
    style: str = _opt(
        DEFAULT_STYLE,
        "a shipped model name (see `brushwork models`) or a MODEL.safetensors file; with --model a multi-style "
        "model, one of its styles or a blend A:0.3,B:0.7; for adain and wct any style image or preset name, or "
        "several (repeat --style); with --method predict, a style image, preset or embedding file (.npy/.json), "
        "or a blend of them",
    )
    model: str | None = _opt(
        None,
        "a multi-style or arbitrary-style model (name or .safetensors file); --style then picks the style",
    )
    method: str = _opt(
        "auto",
        "auto (a model when --style or --model names one, else the best arbitrary-style method installed), "
        "feedforward, predict, adain or wct (see `brushwork.methods.dispatch`)",
    )
    strength: float = _opt(1.0, "how much style: 1 = fully stylized, 0 = the input unchanged (a blend in between; "
                                "with --method predict, between the photo's own style embedding and the style's)")
    preserve_color: str = _opt(
        "none",
        "keep the input's colours: luminance (the stylized luminance with the input's chroma) or histogram "
        "(the OUTPUT's colour mean and covariance matched to the input's, after the network)",
        choices=COLOR_MODES,
    )
    size: int | None = _opt(None, "long side of the output in pixels (default: the input's size)")
    tile: int = _opt(0, "process in overlapping tiles of at most N x N pixels, for images too large to stylize at once "
                     "(0: off); exact up to 2 MP, above that the network's statistics come from a downscaled copy")
    tile_overlap: int | None = _opt(None, "overlap of neighbouring tiles in pixels (default: twice the network's "
                                    f"receptive-field radius + {TILE_CROSSFADE}: 128 for the standard network)")
    style_blend: list | None = _opt(None, "blend weights over several styles: a multi-style model's (default: its "
                                    "first style), or one per --style for adain and wct (default: equal)")
    alpha: float = _opt(1.0, "adain, wct: content-style trade-off in feature space (1: the style's statistics, 0: the "
                        "decoder's reconstruction of the input)")
    mask: object | None = _opt(None, "adain, wct: grey mask image assigning styles to regions; one style: white is "
                               "styled, black keeps the content; N styles: N grey levels, black (first style) to "
                               "white (last)")
    decoder: str | None = _opt(None, "adain, wct: decoder model file (default: the shipped `adain` or `wct` model)")
    style_size: int = _opt(512, "adain, wct: long side of each style image when its statistics are taken")
    refine_steps: int = _opt(0, "adain, wct: after each decoder, N L-BFGS steps that bring the image's VGG features "
                             "closer to the transferred ones (the decoder's inverse made exact; each step costs about "
                             "one VGG forward and backward: slower, closer to the style and the photo)")
    device: str = _opt("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    precision: str = _opt("auto", "auto, fp32 or bf16 (auto on the CPU: fp32 in onnxruntime when installed, else "
                                  "bf16 where native; bf16 on CUDA)")
    backend: str = _opt("auto", "auto (onnxruntime on the CPU when installed, else torch), torch or onnxruntime",
                        choices=BACKENDS)

    def validate(self) -> None:
        def bad(msg):
            raise BrushworkError(msg)

        if not isinstance(self.strength, (int, float)) or not 0.0 <= self.strength <= 1.0:
            bad(f"strength must be between 0 and 1, got {self.strength}")
        if self.preserve_color not in COLOR_MODES:
            bad(f"unknown colour preservation {self.preserve_color!r}: expected none, luminance or histogram")
        if self.size is not None and not 16 <= self.size <= 16384:
            bad(f"size must be between 16 and 16384 pixels, got {self.size}")
        if self.tile < 0:
            bad(f"tile size must be 0 (off) or a number of pixels, got {self.tile}")
        if self.tile_overlap is not None and self.tile_overlap < 0:
            bad(f"tile overlap must be zero or more, got {self.tile_overlap}")
        if self.backend not in BACKENDS:
            bad(f"unknown backend {self.backend!r}: expected auto, torch or onnxruntime")
        if not isinstance(self.alpha, (int, float)) or not 0.0 <= self.alpha <= 1.0:
            bad(f"alpha must be between 0 and 1, got {self.alpha}")
        if not isinstance(self.refine_steps, int) or not 0 <= self.refine_steps <= MAX_REFINE_STEPS:
            bad(f"refine steps must be a whole number from 0 to {MAX_REFINE_STEPS}, got {self.refine_steps}")
        if not 16 <= self.style_size <= 4096:
            bad(f"style size must be between 16 and 4096 pixels, got {self.style_size}")
        # The method's name is checked by the dispatcher, which holds the table of methods.


def onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_runtime_and_backend(device: str, precision: str, backend: str, *, native_bf16: bool = False):
    """The runtime (`brushwork.runtime.resolve_runtime`) and the backend (`choose_backend`) together.

    `auto` precision with an `auto` or onnxruntime backend on the CPU is fp32 in onnxruntime when it
    is installed, even where the CPU has native bf16 (AVX-512 BF16 / AMX), on which `resolve_runtime`
    alone picks bf16: there PyTorch in bf16 is faster (1.1-1.4x on a quiet machine:
    docs/performance.md) but its output drifts from the fp32 network's (33-51 dB PSNR; a default path
    keeps at least 35 dB), while onnxruntime in fp32 is 2.5x the plain forward and
    exact. An explicit onnxruntime backend with `auto` precision therefore runs, not fails.

    `native_bf16=True` keeps `auto`'s bf16 there when the backend is `auto` too: for a method whose bf16
    output stays well above 35 dB (AdaIN: `brushwork.methods.adain`).
    """
    runtime = resolve_runtime(device, precision)
    if native_bf16 and backend == "auto":
        return runtime, choose_backend(backend, runtime)
    if (precision == "auto" and runtime.device.type == "cpu" and runtime.precision != "fp32"
            and (backend == "onnxruntime" or (backend == "auto" and onnxruntime_available()))):
        runtime = replace(runtime, precision="fp32")
    return runtime, choose_backend(backend, runtime)


def choose_backend(backend: str, runtime) -> str:
    """`auto`: onnxruntime on the CPU in fp32 when it is installed (see the module docstring), else torch."""
    if backend not in BACKENDS:
        raise BrushworkError(f"unknown backend {backend!r}: expected auto, torch or onnxruntime")
    on_cpu_fp32 = runtime.device.type == "cpu" and runtime.precision == "fp32"
    if backend == "auto":
        return "onnxruntime" if on_cpu_fp32 and onnxruntime_available() else "torch"
    if backend == "onnxruntime":
        if runtime.device.type != "cpu":
            raise BrushworkError("the onnxruntime backend runs on the CPU: use --device cpu (or --backend torch)")
        if runtime.precision != "fp32":
            raise BrushworkError("the onnxruntime backend runs in fp32: use --precision fp32 (or --backend torch)")
        if not onnxruntime_available():
            raise BrushworkError("the onnxruntime backend needs onnx and onnxruntime: pip install 'brushwork[export]'")
    return backend


def alpha_for(alpha: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor | None:
    """The input's alpha channel at the output's size (None when the input had none)."""
    if alpha is not None and tuple(alpha.shape[-2:]) != tuple(out.shape[-2:]):
        alpha = resize(alpha, tuple(out.shape[-2:])).clamp_(0.0, 1.0)
    return alpha


def merged_options(options: StylizeOptions | None, overrides: dict) -> StylizeOptions:
    """`options` (default: all defaults) with keyword overrides, checked."""
    opts = with_overrides(options or StylizeOptions(), overrides, "stylize")
    opts.validate()
    return opts


def finish(styled: torch.Tensor, content: torch.Tensor, opts: StylizeOptions, band: int = 1024) -> torch.Tensor:
    """Colour preservation, then the strength blend, then clamping. Pixel-local work goes in bands
    of rows so a very large (tiled) image needs no full-size temporaries beyond the output."""
    if opts.preserve_color == "histogram":
        # Needs the colour statistics of the whole output: done at once.
        styled = match_color_statistics(styled.clamp_(0.0, 1.0), content)
    h = styled.shape[2]
    for top in range(0, h, band):
        rows = slice(top, min(h, top + band))
        s, c = styled[:, :, rows].clamp(0.0, 1.0), content[:, :, rows]
        if opts.preserve_color == "luminance":
            s = transfer_luminance(s, c)
        if opts.strength < 1.0:
            s = (opts.strength * s + (1.0 - opts.strength) * c).clamp_(0.0, 1.0)
        styled[:, :, rows] = s
    return styled

"""Feed-forward stylization (Johnson et al. 2016): one pass of a trained transformation network.

`stylize(image, style="starry-night")` returns a PIL image. Front ends that stylize many images
(a web server, a video tool) keep one `FeedForwardStylizer`, which loads the model once.

Backends. The network runs as `brushwork.nets.inference.InferenceNet` (an exact rewrite of
`StyleTransferNet`, see there) in PyTorch, or as the same graph in onnxruntime
(`brushwork.nets.onnx_graph`). On the CPU `auto` picks onnxruntime in fp32: it measured 2.5-4.5x the
plain PyTorch forward at 77 dB PSNR from it, where PyTorch in bf16 (faster still on CPUs with native
bf16) drifted to 33-51 dB, below the 35 dB a default path must keep (`benchmarks/stylize.py`; the
tables are in docs/performance.md). `--precision bf16` takes the faster, inexact path; PyTorch runs
everywhere else (CUDA, or onnxruntime not installed).

Tiling. Instance norm normalizes each feature map by its own mean and variance over the whole
image, so a tile normalized by its own statistics comes out with a different contrast and colour
than the same region of the untiled image, and tiles would show. Here the statistics are taken
from the whole image once (`InferenceNet.norm_affine`) and frozen for every tile (each norm becomes
a fixed per-channel multiply-add). With frozen statistics each output pixel depends only on the
input pixels within the network's receptive field (`receptive_radius`: 55 px for 5 residual
blocks), so that many pixels + 1 at each inner tile edge (the ones that saw the tile's padding
instead of its neighbour) get weight 0 and only the middle of each overlap is crossfaded; tile
origins are multiples of 4 so the stride-2 layers sample the same grid as on the whole image.
Every kept pixel is then what the untiled network computes, up to float rounding (tested: max
difference ~2e-5). Images up to `STATS_PIXELS` (1920 x 1080 fits) take their statistics from the
whole image at full resolution, so for them tiled output = untiled output. Larger ones take them
from a copy of the whole image downscaled to `STATS_PIXELS`: an estimate, since features of a
downscaled image have somewhat different statistics, and the network is sensitive to them: on
4096 x 4096 the shipped starry-night model's tiled output is 21 dB PSNR from the untiled output
(which needs 8 GB; `benchmarks/stylize.py --tiled-reference`), and on paintings of 1.1-1.8 MP
with a 4-6x smaller statistics budget 25-28 dB. Pooled statistics of full-resolution crops spread
over the image, the other estimate tried, gave 18-32 dB, less consistently; correcting the
estimate by re-measuring the statistics under it diverges (errors compound through the layers).
Exact statistics for any size would take one tiled pass per norm layer (about 7x the time). Either
way all tiles share one set of statistics, so there are no seams.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from brushwork.errors import BrushworkError
from brushwork.imaging import load_image, resize, tensor_to_image
from brushwork.imaging.io import IMAGE_SUFFIXES
from brushwork.imaging.resize import fit_long_side
from brushwork.imaging.tiling import count_tiles, map_tiles, tile_settings
from brushwork.methods.blend import multi_style_weights, parse_weighted_styles, style_name
from brushwork.methods.one_pass import (
    DEFAULT_STYLE,
    STATS_PIXELS,
    TILE_CROSSFADE,
    StylizeOptions,
    alpha_for,
    finish,
    merged_options,
    resolve_runtime_and_backend,
)
from brushwork.methods.style_cache import LRUCache, file_stamp
from brushwork.models.networks import FEEDFORWARD_KINDS, load_network
from brushwork.models.registry import ModelFile, find_model, read_model, weights_dir
from brushwork.nets.inference import ALIGN, InferenceNet
from brushwork.nets.magenta import MULTI_MODEL as MAGENTA_MULTI_MODEL
from brushwork.nets.magenta import MULTI_STYLE_NAMES as MAGENTA_STYLE_NAMES
from brushwork.nets.onnx_graph import OnnxRunner
from brushwork.nets.transformer import StyleTransferNet
from brushwork.presets import resolve_style
from brushwork.progress import Progress, ProgressCallback, now

# The shipped multi-style model: a preset it was trained on with no model of its own is painted with it.
DEFAULT_MULTI_MODEL = "multi-paintings"
MIN_SIDE = 16  # smaller inputs are padded up to this (the network downsamples 4x)


def receptive_radius(net: StyleTransferNet | InferenceNet) -> int:
    """How far (in input pixels) an output pixel of the network can see: 8 x residual blocks + 15.

    Backwards from the output: the 9x9 conv (4) and the full-resolution 3x3 (1) give 5, i.e. 3
    pixels at half resolution, +1 for its 3x3 = 4, i.e. 2 at quarter resolution; each residual block
    adds 2 there; then the two stride-2 3x3 convs double it and add 1 each, and the first 9x9 adds 4.
    """
    r = len(net.residuals) if isinstance(net, StyleTransferNet) else net.num_residual
    q = 2 + 2 * r
    return 2 * (2 * q + 1) + 1 + 4


class FeedForwardStylizer:
    """A loaded feed-forward model, ready to stylize any number of images (thread-safe).

    `model`: a shipped model name, a .safetensors path, a `ModelFile` or a `StyleTransferNet`.
    """

    def __init__(self, model: str | os.PathLike | ModelFile | StyleTransferNet = DEFAULT_STYLE, *,
                 style_blend: Sequence[float] | None = None, device: str = "auto", precision: str = "auto",
                 backend: str = "auto", norm_params: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None):
        """`norm_params`: (scale, shift) per norm layer to use instead of the model's own (style prediction)."""
        model_file = _resolve_model(model)
        net = load_network(model_file if model_file is not None else model)
        self.name = model_file.name if model_file is not None else "network"
        self.card = dict(model_file.card) if model_file is not None else {}
        self.runtime, self.backend = resolve_runtime_and_backend(device, precision, backend)
        self._module = self.runtime.prepare_module(InferenceNet(net, style_blend, norm_params).eval())
        self._onnx = OnnxRunner(self._module) if self.backend == "onnxruntime" else None
        self.tile_margin = receptive_radius(net) + 1

    @classmethod
    def from_options(cls, options: StylizeOptions) -> "FeedForwardStylizer":
        model, style_blend = options.style, options.style_blend
        if options.model is not None:  # a multi-style model: --style names one of its styles or a blend
            model = _resolve_model(options.model)
            if model.kind == "multi" and style_blend is None:
                style_blend = multi_style_weights(model_styles(model), options.style)
        return cls(model, style_blend=style_blend, device=options.device,
                   precision=options.precision, backend=options.backend)

    def __repr__(self) -> str:
        return (f"FeedForwardStylizer({self.name!r}, backend={self.backend!r}, device={str(self.runtime.device)!r}, "
                f"precision={self.runtime.precision!r})")

    # ---------------------------------------------------------------------------------------
    # The network itself

    def forward(self, x: torch.Tensor, affine=None) -> torch.Tensor:
        """The network's raw output (unclamped, float32, on the CPU) for N x 3 x H x W RGB in [0, 1].

        `affine`: frozen per-norm (scale, shift) from `norm_affine`, or None to normalize `x` itself.
        """
        if self._onnx is not None:
            return self._onnx(x, affine)
        rt = self.runtime
        with torch.no_grad(), rt.autocast():
            if affine is not None:
                affine = [(a.to(rt.device), b.to(rt.device)) for a, b in affine]
            y = self._module(rt.prepare_input(x.float()), affine)
        return y.float().cpu()

    def norm_affine(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Frozen instance-norm statistics for one image (1 x 3 x H x W).

        From the whole image when it has at most `STATS_PIXELS` pixels (exact), else from a copy
        downscaled to that size (an estimate: see the module docstring).
        """
        if x.shape[0] != 1:
            raise ValueError("norm_affine takes one image at a time")
        h, w = x.shape[-2:]
        if h * w > STATS_PIXELS:
            scale = math.sqrt(STATS_PIXELS / (h * w))
            x = resize(x, (max(MIN_SIDE, int(h * scale)), max(MIN_SIDE, int(w * scale)))).clamp_(0.0, 1.0)
        if self._onnx is not None:
            return self._onnx.norm_affine(x)
        rt = self.runtime
        with torch.no_grad(), rt.autocast():
            pairs = self._module.norm_affine(rt.prepare_input(x.float()), pool=True)
        return [(a.float().cpu(), b.float().cpu()) for a, b in pairs]

    # ---------------------------------------------------------------------------------------
    # Stylizing

    def stylize_tensor(self, image: torch.Tensor, options: StylizeOptions | None = None, *,
                       progress: ProgressCallback | None = None, **overrides) -> torch.Tensor:
        """Stylize N x 3 x H x W RGB in [0, 1]; returns N x 3 x H' x W' in [0, 1] (H', W': `size`, else H, W).

        Per-image options come from `options` and/or keyword overrides (strength, preserve_color,
        size, tile, tile_overlap); the model-level ones (style, device, ...) are this stylizer's.
        """
        opts = merged_options(options, overrides)
        if not torch.is_tensor(image) or image.dim() != 4 or image.shape[1] != 3:
            raise BrushworkError(f"expected an N x 3 x H x W image tensor, got {getattr(image, 'shape', type(image))}")
        content = image.detach().float().cpu().clamp(0.0, 1.0)
        if opts.size is not None:
            content = resize(content, fit_long_side(content.shape[2], content.shape[3], opts.size)).clamp_(0.0, 1.0)
        n, _, h, w = content.shape
        started = now()
        if opts.tile:
            tile, overlap = self._tiling(opts)
            per_image = count_tiles(*_padded_size(h, w), tile, overlap, ALIGN)
        else:
            per_image = 1
        total = n * per_image
        x, _ = _pad_input(content)
        if not opts.tile or max(x.shape[-2:]) <= tile:
            y = self.forward(x)  # the whole batch in one pass
            if progress is not None:
                progress(Progress(step=total, total=total, size=(h, w), elapsed=now() - started))
            return finish(y[:, :, :h, :w], content, opts)
        outputs = []
        for i in range(n):  # tiles: one image at a time, each with its own statistics
            affine = self.norm_affine(x[i:i + 1])

            def on_tile(done, _total, i=i):
                if progress is not None:
                    progress(Progress(step=i * per_image + done, total=total, size=(h, w), elapsed=now() - started))

            y = map_tiles(lambda t: self.forward(t, affine), x[i:i + 1], tile, overlap,
                          margin=self.tile_margin, align=ALIGN, progress=on_tile)
            outputs.append(finish(y[:, :, :h, :w], content[i:i + 1], opts))
            del y
        return outputs[0] if n == 1 else torch.cat(outputs, 0)

    def _tiling(self, opts: StylizeOptions) -> tuple[int, int]:
        """(tile size rounded down to a multiple of 4, overlap), checked against the network's receptive field."""
        return tile_settings(opts.tile, opts.tile_overlap, self.tile_margin, ALIGN, TILE_CROSSFADE)

    def stylize(self, image, options: StylizeOptions | None = None, *, progress: ProgressCallback | None = None,
                **overrides):
        """Stylize one image (path, PIL image, array or tensor); returns a PIL image (RGBA when the input has alpha)."""
        opts = merged_options(options, overrides)
        rgb, alpha = load_image(image)
        out = self.stylize_tensor(rgb, opts, progress=progress)
        del rgb
        return tensor_to_image(out, alpha_for(alpha, out))


def _resolve_model(model) -> ModelFile | None:
    """The model file for a name or path (with a helpful error for style-image names); None for a network."""
    if isinstance(model, StyleTransferNet):
        return None
    if isinstance(model, ModelFile):
        return model
    text = os.fspath(model)
    try:
        return find_model(text, kinds=FEEDFORWARD_KINDS)
    except BrushworkError:
        p = Path(text)
        if p.suffix != ".safetensors" and not p.exists():
            if p.suffix.lower() in IMAGE_SUFFIXES:
                raise BrushworkError(
                    f"{text!r} is an image, not a model: feed-forward stylization needs a trained model "
                    "(train one with `brushwork train --style IMAGE`, or use `brushwork optimize`)"
                ) from None
            try:
                resolve_style(text)
            except BrushworkError:
                pass
            else:
                raise BrushworkError(
                    f"no trained model named {text!r}: it is a style image preset, usable with `brushwork optimize`, "
                    f"or train a model with `brushwork train --style {text}` (see `brushwork models`)"
                ) from None
        raise


def _padded_size(h: int, w: int) -> tuple[int, int]:
    def up(v):
        return max(MIN_SIDE, v + (-v) % ALIGN)

    return up(h), up(w)


def _pad_input(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right to a multiple of 4 and at least MIN_SIDE (reflecting where possible)."""
    h, w = x.shape[-2:]
    ph, pw = (n - v for n, v in zip(_padded_size(h, w), (h, w)))
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


# ---------------------------------------------------------------------------------------------
# The public functions


def model_styles(model: ModelFile) -> list[str]:
    """The style names of a multi-style model, in the order of its norm rows."""
    styles = model.config.get("styles")
    count = int(model.config.get("num_styles", 1))
    if not isinstance(styles, list) or len(styles) != count:
        where = str(model.path) if model.path else model.name
        raise BrushworkError(f"multi-style model {where!r} does not list its {count} style names")
    return [str(name) for name in styles]


def shipped_multi_model_for(style) -> str | None:
    """The multi-style model that paints preset STYLE (one name) when it has no model of its own: the
    shipped multi-style model's file when the preset is among its styles, else `magenta-26` when the
    name is one of Magenta's 26 styles; None otherwise.

    Why `auto` paints such a preset with it rather than with an any-style method: on the four presets
    it holds with no single-style model it had the lower style loss on three and the lower content loss
    on all four against AdaIN (`benchmarks/multi.py --skip-arbitrary`), and it is one pass of a small
    network; Magenta's 26 styles exist only as that network's rows.
    """
    if not isinstance(style, (str, os.PathLike)):
        return None
    text = os.fspath(style)
    try:  # one name, or a blend A:0.3,B:0.7 of the styles of one model
        names = {style_name(name) for name, _ in parse_weighted_styles(text)} if ("," in text or ":" in text) \
            else {style_name(text)}
    except BrushworkError:
        return None
    path = weights_dir() / f"{DEFAULT_MULTI_MODEL}.safetensors"
    stamp = file_stamp(path)
    if stamp is not None:
        styles = _multi_styles.get_or_build((str(path), stamp), lambda: tuple(read_model(path).styles))
        if names <= set(styles):
            return str(path)
    return MAGENTA_MULTI_MODEL if names <= set(MAGENTA_STYLE_NAMES) else None


_multi_styles = LRUCache(1)  # the shipped multi-style model's style names, by file stamp


def export_target(model: str | os.PathLike, style: str | None = None,
                  style_blend: Sequence[float] | None = None) -> tuple[ModelFile, list[float] | None, str]:
    """What `brushwork export MODEL [--style S | --style-blend W,...]` writes: (the model file, the blend of
    its styles to bake in, the name for the output file).

    MODEL is a shipped name or a file, or a preset only the shipped multi-style model holds, which exports
    that model's row (what `stylize --style PRESET` paints with). STYLE names a multi-style model's style or
    a blend of them (`A:0.3,B:0.7`), as `stylize --model MULTI --style` does.
    """
    try:
        found = find_model(model)
    except BrushworkError:
        multi = shipped_multi_model_for(model) if style is None else None
        if multi is None:
            raise
        found, style = find_model(multi), os.fspath(model)
    if style is None or found.kind == "arbitrary":  # an arbitrary-style model's --style is its caller's to embed
        return found, list(style_blend) if style_blend is not None else None, found.name
    if found.kind != "multi":
        raise BrushworkError(f"--style picks a style of a multi-style model; {found.name!r} is a {found.kind} model")
    if style_blend is not None:
        raise BrushworkError("give --style or --style-blend, not both")
    name = style if len(parse_weighted_styles(style)) == 1 else found.name
    return found, multi_style_weights(model_styles(found), style), name


_stylizers = LRUCache(4)  # loaded models, by file and settings


def get_stylizer(options: StylizeOptions | None = None, **overrides) -> FeedForwardStylizer:
    """A stylizer for these options, reused across calls with the same model file and settings."""
    opts = merged_options(options, overrides)
    style, model = opts.style, opts.model
    if isinstance(style, (ModelFile, StyleTransferNet)) or isinstance(model, (ModelFile, StyleTransferNet)):
        return FeedForwardStylizer.from_options(opts)
    style = os.fspath(style)
    model = os.fspath(model) if model is not None else None
    blend = tuple(float(v) for v in opts.style_blend) if opts.style_blend is not None else None
    key = (style, model, file_stamp(model if model is not None else style), blend, opts.device, opts.precision,
           opts.backend)
    return _stylizers.get_or_build(key, lambda: FeedForwardStylizer.from_options(
        StylizeOptions(style=style, model=model, style_blend=list(blend) if blend is not None else None,
                       device=opts.device, precision=opts.precision, backend=opts.backend)))

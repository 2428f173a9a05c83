"""Image optimization (Gatys et al. 2016): the output pixels are optimized directly.

The output's VGG-19 features are pulled towards the content image's (content loss) and its Gram
matrices towards the style images' (style loss), plus total variation. Runs coarse to fine: the
image is optimized at a low resolution, upsampled, and refined at each larger scale, which reaches
a given loss far sooner than optimizing at full size from the start. Style targets are computed
once per scale, never per step.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from brushwork.errors import BrushworkError
from brushwork.features import check_layer_names, load_vgg19
from brushwork.imaging import load_image, match_color_statistics, resize, tensor_to_image, transfer_luminance
from brushwork.imaging.resize import fit_long_side
from brushwork.losses import (
    content_loss,
    gram_matrix,
    gram_style_loss,
    masked_gram_matrix,
    total_variation_loss,
)
from brushwork.options import option, with_overrides
from brushwork.presets import resolve_style
from brushwork.progress import Progress, ProgressCallback, now
from brushwork.runtime import resolve_runtime

COLOR_MODES = ("none", "luminance", "histogram")
PIXEL_SCALE = 255.0
OPTIMIZERS = ("lbfgs", "adam")


@dataclass
class OptimizeOptions:
    size: int = option(512, "long side of the output in pixels")
    # 30 final-scale steps (120 + 60 + 30 over the three scales: 52.5 full-resolution-equivalent
    # evaluations) met both goals of benchmarks/optimize.py on a quiet machine: 199 s against pastiche's
    # 1,032 s, with lower content and style losses. 40 steps took 265 s, just over a quarter.
    steps: int = option(30, "optimizer steps at the final scale (earlier scales take more, see --scales)")
    scales: int = option(3, "coarse-to-fine scales: optimize at size/2**(N-1) first, then upsample and refine")
    optimizer: str = option("lbfgs", "optimizer", choices=OPTIMIZERS)
    learning_rate: float | None = option(None, "step size in 0-255 pixel units (default: 1 for lbfgs, 5 for adam)")
    seed: int = option(0, "random seed (noise init and any randomness)")
    content_weight: float = option(1.0, "weight of the content loss")
    # 50: measured on the astronaut / Starry Night pair at 512 px with 40 final steps (measure_losses,
    # benchmarks/optimize.py): style weight 1000 gave content 691k / style 361, 100 gave 401k / 671, 50 gave
    # 329k / 1,078, against pastiche's 300 L-BFGS steps at 394k / 4,736. 50 is the largest weight tried whose
    # content loss beats pastiche's with a margin; its style loss is still 4x lower than pastiche's.
    style_weight: float = option(50.0, "weight of the style loss")
    tv_weight: float = option(0.0, "weight of the total-variation loss (smoothness)")
    content_layers: dict = option({"relu4_2": 1.0}, "content layers with weights, e.g. relu4_2:1,relu3_1:0.5")
    style_layers: dict = option(
        {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0},
        "style layers with weights, e.g. relu1_1:1,relu2_1:1",
    )
    init: str = option("content", "initial image: content, noise, or an image file")
    style_blend: list | None = option(None, "blend weights for several style images, e.g. 0.7,0.3 (default: equal)")
    style_scale: float = option(1.0, "style image size relative to the output size")
    preserve_color: str = option("none", "keep the content's colours: luminance or histogram", choices=COLOR_MODES)
    mask: object | None = option(None, "mask image: style applies where it is white, content stays where black")
    pooling: str = option("max", "VGG-19 pooling", choices=("max", "avg"))
    vgg_weights: str | None = option(None, "a VGG-19 weights file (torchvision layout) instead of the bundled one")
    device: str = option("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    precision: str = option("auto", "auto, fp32 or bf16 (autocast + channels_last; auto picks bf16 where it is fast)")

    def validate(self, num_styles: int = 1) -> None:
        def bad(msg):
            raise BrushworkError(msg)

        if not 16 <= self.size <= 16384:
            bad(f"size must be between 16 and 16384 pixels, got {self.size}")
        if self.steps < 0:
            bad(f"steps must be zero or more, got {self.steps}")
        if not 1 <= self.scales <= 8:
            bad(f"scales must be between 1 and 8, got {self.scales}")
        if self.size / 2 ** (self.scales - 1) < 16:
            bad(f"{self.scales} scales of a {self.size} px image would start below 16 px: use fewer scales")
        if self.optimizer not in OPTIMIZERS:
            bad(f"unknown optimizer {self.optimizer!r}: expected lbfgs or adam")
        if self.learning_rate is not None and not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            bad(f"learning rate must be a positive number, got {self.learning_rate}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                bad(f"{name.replace('_', ' ')} must be zero or more, got {value}")
        if not self.content_layers:
            bad("at least one content layer is needed")
        if not self.style_layers:
            bad("at least one style layer is needed")
        check_layer_names(self.content_layers)
        check_layer_names(self.style_layers)
        for w in [*self.content_layers.values(), *self.style_layers.values()]:
            if not (w >= 0 and math.isfinite(w)):
                bad(f"layer weights must be zero or more, got {w}")
        if not 0.05 <= self.style_scale <= 8:
            bad(f"style scale must be between 0.05 and 8, got {self.style_scale}")
        if self.preserve_color not in COLOR_MODES:
            bad(f"unknown colour preservation {self.preserve_color!r}: expected none, luminance or histogram")
        if self.style_blend is not None:
            if len(self.style_blend) != num_styles:
                bad(f"{len(self.style_blend)} blend weights given for {num_styles} style images")
            if any(not (w >= 0 and math.isfinite(w)) for w in self.style_blend) or sum(self.style_blend) <= 0:
                bad("style blend weights must be zero or more and not all zero")

    def steps_per_scale(self) -> list[int]:
        """Coarse scales are cheap (a quarter of the pixels per halving), so they get more steps."""
        return [self.steps * 2 ** (self.scales - 1 - i) for i in range(self.scales)]


@dataclass
class OptimizeResult:
    image: torch.Tensor  # 1 x 3 x H x W in [0, 1]
    alpha: torch.Tensor | None  # the content's alpha, at the output size
    losses: dict[str, float]
    steps: int
    interrupted: bool = False


class _Objective:
    """Content, style and TV losses against targets computed once for one scale."""

    def __init__(self, vgg, rt, opts: OptimizeOptions, content, styles, blend, mask):
        self.vgg, self.rt, self.opts = vgg, rt, opts
        self.style_layers = {k: v for k, v in opts.style_layers.items() if v > 0}
        self.content_layers = {k: v for k, v in opts.content_layers.items() if v > 0}
        self.layers = set(self.style_layers) | set(self.content_layers)
        self.mask = mask
        self.temporal: tuple[torch.Tensor, torch.Tensor] | None = None  # (target image, per-pixel weight)
        with torch.no_grad():
            self.content_targets = {k: v.detach() for k, v in self._features(content, self.content_layers).items()}
            # One blended Gram target per layer: minimizing sum_i w_i |G - G_i|^2 with sum w_i = 1
            # has the same gradient as |G - sum_i w_i G_i|^2, and costs one comparison per step.
            self.style_targets = {}
            for style, w in zip(styles, blend):
                feats = self._features(style, self.style_layers)
                for k, f in feats.items():
                    g = gram_matrix(f) * w
                    self.style_targets[k] = self.style_targets.get(k, 0) + g

    def _features(self, image, layers):
        with self.rt.autocast():
            return self.vgg(self.rt.prepare_input(image), layers)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        feats = self._features(image, self.layers)
        c = sum(w * content_loss(feats[k], self.content_targets[k]) for k, w in self.content_layers.items())
        s = 0.0
        for k, w in self.style_layers.items():
            g = gram_matrix(feats[k]) if self.mask is None else masked_gram_matrix(feats[k], self.mask)
            s = s + w * gram_style_loss(g, self.style_targets[k])
        total = self.opts.content_weight * c + self.opts.style_weight * s
        tv = None
        if self.opts.tv_weight > 0:
            tv = total_variation_loss(image)
            total = total + self.opts.tv_weight * tv
        losses = {"content": float(c.detach()), "style": float(s.detach())}
        if tv is not None:
            losses["tv"] = float(tv.detach())
        if self.temporal is not None:
            target, weight = self.temporal
            temporal = (weight * ((image.float() - target) * PIXEL_SCALE) ** 2).mean()
            total = total + temporal
            losses["temporal"] = float(temporal.detach())
        losses["total"] = float(total.detach())
        return total, losses


# VGG-19 pools four times before relu5_1, so an image needs 16 px on its short side to reach it.
MIN_SIDE = 16


def _fit_min_side(height: int, width: int, long_side: int) -> tuple[int, int]:
    """`fit_long_side`, enlarged where needed so the short side is at least MIN_SIDE."""
    needed = math.ceil(MIN_SIDE * max(height, width) / min(height, width))
    return fit_long_side(height, width, max(long_side, needed))


def _scale_sizes(height: int, width: int, opts: OptimizeOptions) -> list[tuple[int, int]]:
    final = _fit_min_side(height, width, opts.size)
    long_side = max(final)
    return [_fit_min_side(*final, round(long_side / 2 ** (opts.scales - 1 - i))) for i in range(opts.scales)]


def run_optimization(
    content,
    styles,
    options: OptimizeOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    vgg=None,
    init_image: torch.Tensor | None = None,
    temporal: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> OptimizeResult:
    """Optimize an image; `content` and each style may be a path, PIL image, array or tensor (a style also a
    preset name).

    Returns the result with the lowest total loss seen. A KeyboardInterrupt (Ctrl-C, or raised by
    the progress callback to cancel) stops early and returns that best image with `interrupted` set.
    `init_image` (1 x 3 x H x W in [0, 1]) replaces `options.init` as the start: for video, the previous
    frame's result carried along the motion (Ruder et al. 2016). `temporal` = (target 1 x 3 x H x W in [0, 1],
    weight 1 x 1 x H x W) adds Ruder et al.'s short-term temporal loss at the final scale: the mean over
    pixels of weight x (image - target)^2, in 0-255 units as VGG-19 sees the image; for video, the target
    is the previous result warped to this frame and the weight the temporal weight where the flow holds.
    """
    opts = options or OptimizeOptions()
    if not isinstance(styles, (list, tuple)):
        styles = [styles]
    if not styles:
        raise BrushworkError("at least one style image is needed")
    opts.validate(num_styles=len(styles))
    rt = resolve_runtime(opts.device, opts.precision)
    torch.manual_seed(opts.seed)

    content_full, content_alpha = load_image(content)
    # A style given by name is a preset, as on the command line (a file of that name wins).
    style_images = [load_image(resolve_style(s) if isinstance(s, (str, os.PathLike)) else s)[0] for s in styles]
    blend = opts.style_blend or [1.0] * len(styles)
    blend = [w / sum(blend) for w in blend]
    mask_full = None
    if opts.mask is not None:
        mask_rgb, _ = load_image(opts.mask)
        mask_full = mask_rgb.mean(dim=1, keepdim=True)  # luminance-ish, white = style
    if opts.preserve_color == "histogram":
        style_images = [match_color_statistics(s, content_full) for s in style_images]

    # A caller's network is not changed (adopt_module); one loaded here is prepared in place.
    vgg = rt.prepare_module(load_vgg19(opts.vgg_weights, pooling=opts.pooling)) if vgg is None else rt.adopt_module(vgg)

    sizes = _scale_sizes(content_full.shape[2], content_full.shape[3], opts)
    h_final, w_final = sizes[-1]
    layers = set(opts.content_layers) | set(opts.style_layers)
    value_bytes = 2 if rt.precision == "bf16" else 4
    rt.check_memory(
        vgg.activation_bytes(h_final, w_final, layers, value_bytes) + 16 * h_final * w_final * 4,
        f"optimizing a {w_final}x{h_final} image",
        "use a smaller --size",
    )
    steps_plan = opts.steps_per_scale()
    total_steps = sum(steps_plan)
    step_done = 0
    started = now()
    image = None
    best_loss, best_image, last_losses = math.inf, None, {}
    interrupted = False

    try:
        for scale_index, ((h, w), n_steps) in enumerate(zip(sizes, steps_plan)):
            content_s = resize(content_full, (h, w)).to(rt.device)
            style_long = round(max(h, w) * opts.style_scale)
            styles_s = [
                resize(s, _fit_min_side(s.shape[2], s.shape[3], style_long)).to(rt.device) for s in style_images
            ]
            mask_s = resize(mask_full, (h, w)).to(rt.device) if mask_full is not None else None
            objective = _Objective(vgg, rt, opts, content_s, styles_s, blend, mask_s)
            if temporal is not None and scale_index == len(sizes) - 1:
                objective.temporal = tuple(resize(t.float(), (h, w)).to(rt.device) for t in temporal)

            if image is None:
                image = _initial_image(opts.init, content_s) if init_image is None else \
                    resize(init_image.float(), (h, w)).clamp(0, 1).to(rt.device)
            else:
                image = F.interpolate(image.detach(), size=(h, w), mode="bicubic", align_corners=False)
                best_loss, best_image = math.inf, None  # losses at different scales do not compare
            # The variable is in 0-255 units: L-BFGS's first step (lr * g / |g|_1) is not scale
            # invariant, and in [0, 1] units it is 255x larger and can throw the curvature estimate
            # (and the run) off on small images.
            pixels = (image.detach().clamp(0, 1) * PIXEL_SCALE).contiguous().requires_grad_(True)

            if opts.optimizer == "lbfgs":
                # One iteration per step() without line search, as in the classic implementations:
                # each step costs one forward/backward and the step count is the evaluation count.
                optimizer = torch.optim.LBFGS(
                    [pixels], lr=opts.learning_rate or 1.0, max_iter=1, history_size=50, tolerance_grad=0,
                    tolerance_change=0,
                )
            else:
                optimizer = torch.optim.Adam([pixels], lr=opts.learning_rate or 5.0)

            for _ in range(n_steps):
                record = {}

                def closure():
                    optimizer.zero_grad(set_to_none=True)
                    # The loss sees the image as it will be saved (clamped to the valid range), so
                    # L-BFGS cannot buy loss with out-of-gamut pixels that saving would throw away.
                    loss, losses = objective(pixels.clamp(0, PIXEL_SCALE) / PIXEL_SCALE)
                    loss.backward()
                    if not record:  # the first evaluation is the loss of the image before this step
                        record["losses"], record["image"] = losses, pixels.detach().clamp(0, PIXEL_SCALE) / PIXEL_SCALE
                    return loss

                optimizer.step(closure)
                if opts.optimizer == "adam":
                    with torch.no_grad():
                        pixels.clamp_(0, PIXEL_SCALE)
                last_losses = record["losses"]
                if last_losses["total"] < best_loss and math.isfinite(last_losses["total"]):
                    best_loss, best_image = last_losses["total"], record["image"]
                step_done += 1
                if progress is not None:
                    current = pixels
                    progress(
                        Progress(
                            step=step_done,
                            total=total_steps,
                            losses=last_losses,
                            scale=scale_index + 1,
                            scales=len(sizes),
                            size=(h, w),
                            elapsed=now() - started,
                            image=lambda current=current: (current.detach() / PIXEL_SCALE).clamp(0, 1).float().cpu(),
                        )
                    )
            # Measure the final iterate too, so the best-of comparison includes it.
            image = pixels.detach().clamp(0, PIXEL_SCALE) / PIXEL_SCALE
            with torch.no_grad():
                _, final_losses = objective(image)
            if final_losses["total"] <= best_loss or best_image is None:
                best_loss, best_image, last_losses = final_losses["total"], image, final_losses
            image = best_image
    except KeyboardInterrupt:
        interrupted = True
        if best_image is None:
            last = image if image is not None else _initial_image(opts.init, content_full.to(rt.device))
            best_image = last.detach()

    result = best_image.detach().clamp(0, 1).float().cpu()
    out_h, out_w = result.shape[2], result.shape[3]
    content_out = resize(content_full, (out_h, out_w))
    if mask_full is not None:
        m = resize(mask_full, (out_h, out_w)).clamp(0, 1)
        result = m * result + (1 - m) * content_out
    if opts.preserve_color == "luminance":
        result = transfer_luminance(result, content_out)
    alpha = resize(content_alpha, (out_h, out_w)).clamp(0, 1) if content_alpha is not None else None
    return OptimizeResult(image=result, alpha=alpha, losses=last_losses, steps=step_done, interrupted=interrupted)


def _initial_image(init: str, content: torch.Tensor) -> torch.Tensor:
    if init == "content":
        return content.clone()
    if init == "noise":
        # Mid-grey plus noise: a start that carries no content, as in the original paper.
        gen = torch.Generator().manual_seed(torch.initial_seed())
        return (0.5 + 0.25 * torch.randn(content.shape, generator=gen)).clamp(0, 1).to(content.device)
    image, _ = load_image(init)
    return resize(image, tuple(content.shape[2:])).to(content.device)


def optimize(content, style, *, progress: ProgressCallback | None = None, **options):
    """Stylize `content` with one style image or a list of them; returns a PIL image.

    Options are the fields of `OptimizeOptions` (e.g. `size=512, steps=40, preserve_color="luminance"`).
    If interrupted (Ctrl-C), returns the best image so far with `image.info["interrupted"] = True`.
    """

    result = run_optimization(content, style, with_overrides(OptimizeOptions(), options, "optimize"),
                              progress=progress)
    image = tensor_to_image(result.image, result.alpha)
    image.info["interrupted"] = result.interrupted
    image.info["losses"] = result.losses
    return image

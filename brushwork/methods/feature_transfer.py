"""Style transfer by feature statistics, shared by AdaIN (`methods/adain.py`) and WCT (`methods/wct.py`).

Both encode the content with VGG-19, give its features at a layer the statistics of the style's
features (AdaIN: channel means and standard deviations; WCT: means and the full covariance), and
decode back to an image with a trained decoder; WCT does so at several layers, coarse to fine.

The transforms are affine maps of each feature vector, y = A (x - mu_c) + mu_s, which is what makes
every option below cheap and exact:
- several styles: the transformed features of style k are affine in that style's statistics, so
  blending the transformed features with weights w_k (Huang and Belongie's interpolation) equals
  one map with the blended A and shift;
- alpha: alpha * y + (1 - alpha) * x is again affine (A' = alpha A + (1 - alpha) I);
- a mask: each region r gets its own map, built from the content statistics inside r and the style
  of r, and a feature vector takes the maps of the regions it belongs to, weighted by the region
  weights downsampled to the feature resolution (soft at the borders, so no blocky edges);
- tiles: the content statistics are taken once from the whole image (from a copy downscaled to
  `STATS_PIXELS` for larger ones, as the feed-forward tiled mode does), so each tile applies the
  same fixed per-pixel map; the encoder and decoder are then local (`receptive_radius`), and the
  tiling of `brushwork.imaging.tiling` discards the pixels that saw a tile's padding.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import threading
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from brushwork.errors import BrushworkError
from brushwork.features import shared_vgg19
from brushwork.features.transfer import AffineMap, apply_region_maps, feature_columns, region_masks
from brushwork.features.vgg import LAYER_NAMES
from brushwork.files import cached_bytes
from brushwork.imaging import load_image, resize, tensor_to_image
from brushwork.imaging.color import MeanCov
from brushwork.imaging.resize import fit_long_side
from brushwork.imaging.tiling import count_tiles, map_tiles, tile_grid, tile_settings
from brushwork.methods.one_pass import STATS_PIXELS, TILE_CROSSFADE, finish, merged_options, resolve_runtime_and_backend
from brushwork.methods.style_cache import STYLE_CACHE_SIZE, LRUCache, tensor_digest
from brushwork.models.registry import ModelFile, find_model
from brushwork.nets.decoder import Decoder, pooling_factor
from brushwork.nets.onnx_graph import cpu_session
from brushwork.presets import resolve_style
from brushwork.progress import Progress, ProgressCallback, now

REFINE_HISTORY = 20  # L-BFGS curvature pairs kept by `invert_features`


def invert_features(encode, image: torch.Tensor, layer: str, target: torch.Tensor, steps: int,
                    on_step=None) -> torch.Tensor:
    """`image` (1 x 3 x h x w in [0, 1]) moved by `steps` L-BFGS steps toward features `target` at `layer`.

    A decoder is a learned, approximate inverse of the encoder: the shipped CPU-trained AdaIN decoder's
    output re-encodes far from the features it was given, and relu4_1's Gram term, which AdaIN's target
    nearly meets, came out 17x higher than the target's own (astronaut x starry-night-over-the-rhone).
    Minimizing the relative squared distance ||E(x) - target||^2 / ||target||^2 from the decoder's
    output makes the inverse exact step by step: the method's own target, not another objective.
    `encode(x, layer)` gives the features with gradients. Steps are taken as `brushwork optimize`
    takes them (one evaluation per step and no line search, the loss seen on the clamped image), but
    on pixels in [0, 1]: this loss is of order one, and in optimize's 0-255 units its gradients are so
    small that L-BFGS's first step moves nothing and it never gets a curvature estimate. The image
    with the lowest loss seen is returned.
    """
    target = target.detach().float()
    scale = target.pow(2).mean().clamp_min(1e-12)
    pixels = image.detach().float().clamp(0, 1).contiguous().requires_grad_(True)
    optimizer = torch.optim.LBFGS([pixels], lr=1.0, max_iter=1, history_size=REFINE_HISTORY,
                                  tolerance_grad=0, tolerance_change=0)

    def loss_of(x):
        return F.mse_loss(encode(x, layer).float(), target) / scale

    best_loss, best_image = math.inf, image
    with torch.enable_grad():
        for _ in range(steps):
            seen = {}

            def closure():
                optimizer.zero_grad(set_to_none=True)
                x = pixels.clamp(0, 1)
                loss = loss_of(x)
                loss.backward()
                if not seen:  # the first evaluation is the loss of the image before this step
                    seen["loss"], seen["image"] = float(loss.detach()), x.detach()
                return loss

            optimizer.step(closure)
            if seen["loss"] < best_loss:
                best_loss, best_image = seen["loss"], seen["image"]
            if on_step is not None:
                on_step()
    with torch.no_grad():
        x = pixels.detach().clamp(0, 1)
        return x if float(loss_of(x)) <= best_loss else best_image


def encoder_receptive_radius(layer: str) -> int:
    """Image pixels an encoder feature at `layer` can see on each side (3 x 3 convs and 2 x 2 pools)."""
    radius, stride = 0, 1
    for name in LAYER_NAMES[: LAYER_NAMES.index(layer) + 1]:
        if name.startswith(("conv", "pool")):
            radius += stride
        if name.startswith("pool"):
            stride *= 2
    return radius


def receptive_radius(layer: str) -> int:
    """Encoder plus decoder (its mirror: the same 3 x 3 convs at the same scales)."""
    encoder = encoder_receptive_radius(layer)
    convs_only = sum(pooling_factor(n) for n in LAYER_NAMES[: LAYER_NAMES.index(layer) + 1] if n.startswith("conv"))
    return encoder + convs_only


# ------------------------------------------------------------------------------------------------
# The stylizer


@dataclass
class _StyleSource:
    image: torch.Tensor  # 1 x 3 x h x w at the statistics size
    stats: dict  # layer -> statistics


class FeatureTransferStylizer:
    """Encoder, decoder(s) and cached style statistics; subclasses say which statistics and map.

    Subclasses set `method`, `model_kind`, `default_model` and implement `statistics` and `transfer_map`.
    """

    method = ""
    model_kind = ""
    default_model = ""
    # Whether `auto` precision keeps bf16 (in PyTorch) on a CPU with native bf16 instead of onnxruntime
    # in fp32: only where bf16's output stays well above the 35 dB asked of a default path. WCT does
    # not: whitening amplifies bf16's rounding (29.3-33.5 dB from fp32: 4 held-out paintings x 2 photos at
    # 512 px, 2026-12-04).
    native_bf16_on_cpu = False

    def __init__(self, decoder=None, *, device: str = "auto", precision: str = "auto", backend: str = "auto", vgg=None):

        # The CPU policy of the feed-forward method, for the same reason: onnxruntime ran VGG-19 to
        # relu4_1 2.2x and the half-width decoder 2.1x faster than PyTorch at 512 px here; a method
        # may keep bf16 on CPUs with native bf16 (`native_bf16_on_cpu`).
        self.runtime, self.backend = resolve_runtime_and_backend(device, precision, backend,
                                                                 native_bf16=self.native_bf16_on_cpu)
        self._onnx_sessions: dict = {}
        self._onnx_lock = threading.Lock()
        self._vgg_digest: str | None = None  # the whole VGG-19's, hashed once for all its encoder graphs
        decoders, self.name, self.card = self._load_decoders(decoder)
        # Coarse to fine (deepest layer first): WCT's order; AdaIN has one level.
        self.levels = sorted(decoders, key=LAYER_NAMES.index, reverse=True)
        if isinstance(decoder, (Decoder, dict)):
            # The caller's decoders (a test's, a training run's) are used as they are, or copied, never
            # changed: switching off their gradients or re-laying them out would reach into the caller's
            # training or another stylizer's runtime (the mistake `adopt_module` mends for the VGG). The
            # decoder has no layer that acts differently in training, and stylizing runs without gradients.
            self.decoders = {k: self.runtime.adopt_module(d) for k, d in decoders.items()}
        else:
            self.decoders = {k: self.runtime.prepare_module(d.eval().requires_grad_(False))
                             for k, d in decoders.items()}
        self.vgg = self.runtime.adopt_module(vgg) if vgg is not None else shared_vgg19(self.runtime)
        self._style_cache = LRUCache(STYLE_CACHE_SIZE)  # pixel digest -> _StyleSource
        self._style_files = LRUCache(STYLE_CACHE_SIZE)  # (file, mtime, size, style size) -> the same sources

    @classmethod
    def from_options(cls, options) -> "FeatureTransferStylizer":
        return cls(options.decoder, device=options.device, precision=options.precision, backend=options.backend)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, device={str(self.runtime.device)!r}, "
                f"precision={self.runtime.precision!r})")

    # -- subclass hooks ---------------------------------------------------------------------------
    full_covariance = False  # the content statistics: channel means and covariance (WCT), or variances

    def statistics_of(self, running: MeanCov):
        """The method's statistics from a running mean and (co)variance of features."""
        raise NotImplementedError

    def transfer_map(self, content_stats, style_stats) -> AffineMap:
        raise NotImplementedError

    def decoders_from_model(self, model) -> dict[str, Decoder]:
        raise NotImplementedError

    def statistics(self, features: torch.Tensor, weight: torch.Tensor | None = None):
        """The method's statistics of 1 x C x h x w features (optionally weighted by a region)."""
        return self.statistics_of(MeanCov(full=self.full_covariance).add(*feature_columns(features, weight)))

    # -- loading ---------------------------------------------------------------------------------
    def _load_decoders(self, decoder) -> tuple[dict[str, Decoder], str, dict]:

        if isinstance(decoder, Decoder):
            return {decoder.config.layer: decoder}, "decoder", {}
        if isinstance(decoder, dict):  # layer -> Decoder, as built in tests and training
            return dict(decoder), "decoders", {}
        if decoder is None:
            try:
                model = find_model(self.default_model, kinds=(self.model_kind,))
            except BrushworkError:
                raise BrushworkError(
                    f"no {self.method} decoder is installed (a shipped model named {self.default_model!r}): "
                    f"train it with recipes/{self.method}-cpu.sh, or pass a model file with --decoder FILE"
                ) from None
        elif isinstance(decoder, ModelFile):
            model = decoder
        else:
            model = find_model(os.fspath(decoder), kinds=(self.model_kind,))
        return self.decoders_from_model(model), model.name, dict(model.card)

    # -- styles ----------------------------------------------------------------------------------
    def style_source(self, style, style_size: int) -> _StyleSource:
        """The style image at `style_size` (long side) and its statistics at every level, cached by the
        pixels: the same painting from a path, a preset name or an upload is encoded once."""

        file_key = None
        if isinstance(style, (str, os.PathLike)):
            style = resolve_style(style)
            st = style.stat()
            # An unchanged file seen before is not even decoded again: ~50 ms of a ~1 s AdaIN frame.
            file_key = (str(style.resolve()), st.st_mtime_ns, st.st_size, style_size)
            source = self._style_files.get(file_key)
            if source is not None:
                return source
        image, _ = load_image(style)
        image = resize(image, fit_long_side(image.shape[2], image.shape[3], style_size)).clamp_(0.0, 1.0)
        key = tensor_digest(image)
        source = self._style_cache.get(key)
        if source is None:
            feats = self.encode(image, self.levels)
            source = _StyleSource(image, {k: self.statistics(f) for k, f in feats.items()})
            self._style_cache.put(key, source)
        if file_key is not None:
            self._style_files.put(file_key, source)
        return source

    # -- networks --------------------------------------------------------------------------------
    def _onnx(self, part: str, layer: str, example: torch.Tensor, arena: bool = True):
        """The onnxruntime session of the encoder up to `layer` or of its decoder, exported on first use.
        `arena=False`: one that gives its buffers back after each run (for tiles, see stylize_tensor)."""

        with self._onnx_lock:
            key = (part, layer, arena)
            if key not in self._onnx_sessions:
                module = _EncoderTo(self.vgg, layer) if part == "encoder" else self.decoders[layer]
                # Exporting takes seconds (WCT's ten graphs: about 12 s), so graphs are kept on disk by their weights.
                if part == "encoder":
                    self._vgg_digest = self._vgg_digest or module_digest(self.vgg)
                    digest = self._vgg_digest
                else:
                    digest = module_digest(module)
                graph = cached_bytes("onnx", f"{part}-{layer}-{digest}.onnx", lambda: _onnx_bytes(module, example))
                self._onnx_sessions[key] = cpu_session(graph, torch.get_num_threads(), memory_arena=arena)
            return self._onnx_sessions[key]

    def _run_onnx(self, part: str, layer: str, x: torch.Tensor, arena: bool = True) -> torch.Tensor:
        (y,) = self._onnx(part, layer, x, arena).run(None, {"x": x.detach().float().cpu().contiguous().numpy()})
        return torch.from_numpy(y)

    def encode(self, image: torch.Tensor, layers, *, arena: bool = True) -> dict[str, torch.Tensor]:
        """VGG features (float32) of an image padded to fit the deepest layer."""
        rt = self.runtime
        x = _pad_to(image, pooling_factor(max(layers, key=LAYER_NAMES.index)))
        if self.backend == "onnxruntime" and len(layers) == 1:
            return {layers[0]: self._run_onnx("encoder", layers[0], x, arena)}
        with torch.no_grad(), rt.autocast():
            feats = self.vgg(rt.prepare_input(x.float()), layers)
        return {k: v.float() for k, v in feats.items()}

    def _transform_and_decode(self, x: torch.Tensor, layer: str, maps: list[AffineMap],
                              weights: torch.Tensor | None, feats: torch.Tensor | None = None,
                              arena: bool = True, refine_steps: int = 0, on_step=None) -> torch.Tensor:
        """Encode x (1 x 3 x h x w, h and w multiples of the layer's pooling factor; or pass its
        features), map, decode, then `refine_steps` steps of `invert_features` (`on_step` after each)."""
        rt = self.runtime
        with torch.no_grad():
            if feats is None:
                feats = self.encode(x, [layer], arena=arena)[layer]
            if weights is not None:
                weights = F.avg_pool2d(weights.to(feats.device), pooling_factor(layer))
            t = apply_region_maps(feats, maps, weights)
            if self.backend == "onnxruntime":
                y = self._run_onnx("decoder", layer, t, arena)
            else:
                with rt.autocast():
                    y = self.decoders[layer](rt.prepare_input(t))
        if refine_steps:
            y = invert_features(self._encode_with_grad, rt.prepare_input(y.float()), layer,
                                rt.prepare_input(t.float()), refine_steps, on_step)
        return y.float().cpu()

    def _encode_with_grad(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """VGG features at one layer with gradients to the input (PyTorch, whatever the backend)."""
        with self.runtime.autocast():
            return self.vgg(self.runtime.prepare_input(x), [layer])[layer]

    def transform_features(self, content_features: torch.Tensor, layer: str, styles: list[_StyleSource],
                           blend: list[float], alpha: float, regions: torch.Tensor | None) -> torch.Tensor:
        """The transformed features the decoder receives (for tests and inspection): regions at feature size."""
        content_stats = self._content_statistics(content_features, regions, len(styles))
        maps = self._maps(content_stats, layer, styles, blend, alpha, regions is not None)
        return apply_region_maps(content_features, maps, regions)

    def _maps(self, content_stats: list, layer, styles, blend, alpha, with_regions: bool) -> list[AffineMap]:
        """One map per region (or one without regions), from the content statistics of the regions
        `_statistics_weights` lists."""
        def styled(stats, sources, weights):
            return AffineMap.blend([self.transfer_map(stats, s.stats[layer]) for s in sources],
                                   weights).with_alpha(alpha)

        if not with_regions:
            return [styled(content_stats[0], styles, blend)]
        if len(styles) == 1:  # region 0 keeps the content, region 1 takes the style
            channels = styles[0].stats[layer][0].shape[0]
            return [AffineMap.identity(channels), styled(content_stats[0], styles, [1.0])]
        return [styled(stats, [s], [1.0]) for stats, s in zip(content_stats, styles)]

    def _content_statistics(self, features: torch.Tensor, regions: torch.Tensor | None, num_styles: int) -> list:
        """The content statistics of `_statistics_weights`' regions, from whole features."""
        return [self.statistics(features, w) for w in _statistics_weights(regions, num_styles)]

    def _tiled_statistics(self, image: torch.Tensor, layer: str, regions: torch.Tensor | None, num_styles: int,
                          tile: int, overlap: int) -> list:
        """`_content_statistics` from features computed a tile at a time and never stitched: each
        tile's features are added with its blend weights (which sum to 1 at every pixel) times the
        region's. Stitched, relu1_1 features of a 2-megapixel statistics image took 537 MB (WCT at
        4096^2 peaked at 3.3 GB)."""
        factor = pooling_factor(layer)
        image = _pad_to(image, factor)
        weights = _statistics_weights(regions, num_styles)
        running = [MeanCov(full=self.full_covariance) for _ in weights]
        for t, blend_weight in tile_grid(image.shape[2], image.shape[3], tile, overlap,
                                         margin=receptive_radius(layer) + 1, align=factor):
            ys, xs = t.slices()
            feats = self.encode(image[..., ys, xs], [layer], arena=False)[layer]
            fy, fx = slice(t.top // factor, t.bottom // factor), slice(t.left // factor, t.right // factor)
            share = blend_weight[::factor, ::factor][None, None]
            if tuple(feats.shape[-2:]) != tuple(share.shape[-2:]):
                raise BrushworkError(f"the encoder gave {tuple(feats.shape)} for a tile of {tuple(t.slices())}")
            for r, w in zip(running, weights):
                r.add(*feature_columns(feats, share if w is None else share * w[..., fy, fx]))
            del feats
        return [self.statistics_of(r) for r in running]

    # -- stylizing -------------------------------------------------------------------------------
    def stylize_tensor(self, image: torch.Tensor, options=None, *, progress: ProgressCallback | None = None,
                       **overrides) -> torch.Tensor:
        """Stylize N x 3 x H x W RGB in [0, 1] with the style(s) of `options.style`; returns [0, 1]."""

        opts = merged_options(options, overrides)
        if not torch.is_tensor(image) or image.dim() != 4 or image.shape[1] != 3:
            raise BrushworkError(f"expected an N x 3 x H x W image tensor, got {getattr(image, 'shape', type(image))}")
        styles_given = opts.style if isinstance(opts.style, (list, tuple)) else [opts.style]
        blend = _normalized_blend(opts.style_blend, len(styles_given))
        if opts.mask is not None and len(styles_given) > 1 and opts.style_blend is not None:
            raise BrushworkError("with a mask each region takes its own style: give no --style-blend")
        styles = [self.style_source(s, opts.style_size) for s in styles_given]
        content = image.detach().float().cpu().clamp(0.0, 1.0).contiguous()
        if opts.size is not None:
            content = resize(content, fit_long_side(content.shape[2], content.shape[3], opts.size)).clamp_(0.0, 1.0)
        n, _, h, w = content.shape
        regions_full = None
        if opts.mask is not None:
            mask, _ = load_image(opts.mask)
            mask = resize(mask.mean(1, keepdim=True), (h, w)).clamp_(0.0, 1.0)
            regions_full = region_masks(mask, len(styles))
        started = now()
        plans = [self._tile_plan(h, w, layer, opts) for layer in self.levels]
        total = n * sum(p[2] for p in plans) * (1 + opts.refine_steps)  # a decoded piece, then its refine steps
        done = 0

        def tick():
            nonlocal done
            done += 1
            if progress is not None:
                progress(Progress(step=done, total=total, size=(h, w), elapsed=now() - started))

        outputs = []
        for i in range(n):
            current = content[i : i + 1]
            for layer, (tile, overlap, count) in zip(self.levels, plans):
                factor = pooling_factor(layer)
                stats_image, stats_regions = _statistics_copy(current, regions_full)
                regions_at_stats = None
                if stats_regions is not None:
                    regions_at_stats = F.avg_pool2d(_pad_to(stats_regions, factor), factor)
                feats = None
                if count == 1:
                    feats = self.encode(stats_image, [layer])[layer]
                    content_stats = self._content_statistics(feats, regions_at_stats, len(styles))
                else:  # the statistics' features in tiles too: whole, that pass was the peak (4.0 GB at 4096^2)
                    content_stats = self._tiled_statistics(stats_image, layer, regions_at_stats, len(styles),
                                                           tile, overlap)
                maps = self._maps(content_stats, layer, styles, blend, opts.alpha, regions_full is not None)
                x = _pad_to(current, factor)
                extra = _pad_to(regions_full, factor) if regions_full is not None else None

                # Tiles run through sessions without memory arenas: with them the encoder's and the
                # decoder's arenas, each sized for a tile, were held at once (AdaIN at 4096^2 with the
                # statistics already tiled: 3.36 -> 2.29 GB peak).
                def run(piece, layer=layer, maps=maps, extra=extra, feats=None, arena=False):
                    weights = piece[:, 3:] if extra is not None else None
                    y = self._transform_and_decode(piece[:, :3], layer, maps, weights, feats=feats, arena=arena,
                                                   refine_steps=opts.refine_steps, on_step=tick)
                    tick()
                    return y

                joined = x if extra is None else torch.cat([x, extra], 1)
                if count == 1 and stats_image is current:  # the statistics' features are this pass's
                    y = run(joined, feats=feats, arena=True)
                elif count == 1:
                    y = run(joined)
                else:
                    y = map_tiles(run, joined, tile, overlap, margin=receptive_radius(layer) + 1, align=factor)
                current = y[:, :, :h, :w].clamp_(0.0, 1.0)
            outputs.append(finish(current, content[i : i + 1], opts))
        return outputs[0] if n == 1 else torch.cat(outputs, 0)

    def _tile_plan(self, h: int, w: int, layer: str, opts) -> tuple[int, int, int]:
        """(tile, overlap, tiles per image) at one level; tiles of 1 mean one pass over the whole image."""
        if not opts.tile:
            return 0, 0, 1
        factor, margin = pooling_factor(layer), receptive_radius(layer) + 1
        tile, overlap = tile_settings(opts.tile, opts.tile_overlap, margin, factor, TILE_CROSSFADE,
                                      f"the {self.method} network at {layer}")
        ph, pw = (_round_up(v, factor) for v in (h, w))
        if max(ph, pw) <= tile:
            return tile, overlap, 1
        return tile, overlap, count_tiles(ph, pw, tile, overlap, factor)

    def stylize(self, image, options=None, *, progress: ProgressCallback | None = None, **overrides):
        """Stylize one image (path, PIL image, array or tensor); returns a PIL image (alpha kept)."""

        opts = merged_options(options, overrides)
        rgb, alpha = load_image(image)
        out = self.stylize_tensor(rgb, opts, progress=progress)
        if alpha is not None and tuple(alpha.shape[-2:]) != tuple(out.shape[-2:]):
            alpha = resize(alpha, tuple(out.shape[-2:])).clamp_(0.0, 1.0)
        return tensor_to_image(out, alpha)


class _EncoderTo(torch.nn.Module):
    """VGG-19 up to one layer as a module of one input and one output (for the ONNX export)."""

    def __init__(self, vgg, layer: str):
        super().__init__()
        self.vgg, self.layer = vgg, layer

    def forward(self, x):
        return self.vgg(x, [self.layer])[self.layer]


def module_digest(module: torch.nn.Module) -> str:
    """A digest of a module's weights and class, and of the torch version that exports it."""
    h = hashlib.sha256(f"{type(module).__qualname__} {torch.__version__}".encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def _onnx_bytes(module: torch.nn.Module, example: torch.Tensor) -> bytes:
    """The module as an ONNX graph with free batch, height and width (traced on `example`)."""
    buffer = io.BytesIO()
    axes = {0: "n", 2: "h", 3: "w"}
    # The onnxruntime backend's runtime is the CPU in fp32, so the module is already on the CPU in fp32;
    # its training flag, which may be a caller's (a decoder passed in), is put back after the export.
    was_training = module.training
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about the layer-name loop
            torch.onnx.export(module.eval(), (example.float().cpu(),), buffer, opset_version=17,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": axes, "y": axes},
                              dynamo=False)
    finally:
        module.train(was_training)
    return buffer.getvalue()


def _normalized_blend(blend, count: int) -> list[float]:
    if blend is None:
        return [1.0 / count] * count
    if len(blend) != count:
        raise BrushworkError(f"{len(blend)} style blend weights given for {count} styles")
    if any(not (w >= 0 and math.isfinite(w)) for w in blend) or sum(blend) <= 0:
        raise BrushworkError("style blend weights must be zero or more and not all zero")
    total = float(sum(blend))
    return [float(w) / total for w in blend]


def _round_up(v: int, m: int) -> int:
    return v + (-v) % m


def _pad_to(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Pad bottom and right to a multiple of `factor`, and to at least 2 x factor (reflecting where possible)."""
    h, w = x.shape[-2:]
    ph = max(_round_up(h, factor), 2 * factor) - h
    pw = max(_round_up(w, factor), 2 * factor) - w
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x


def _statistics_weights(regions: torch.Tensor | None, num_styles: int) -> list:
    """The regions whose content statistics the maps need (see `_maps`): the whole image; with one style
    and a mask, the styled region; with several, each style's region."""
    if regions is None:
        return [None]
    if num_styles == 1:
        return [regions[:, 1:2]]
    return [regions[:, r : r + 1] for r in range(num_styles)]


def _statistics_copy(image: torch.Tensor, regions: torch.Tensor | None):
    """The image (and region weights) the content statistics are taken from: itself up to STATS_PIXELS."""
    h, w = image.shape[-2:]
    if h * w <= STATS_PIXELS:
        return image, regions
    scale = math.sqrt(STATS_PIXELS / (h * w))
    size = (max(16, int(h * scale)), max(16, int(w * scale)))
    small = resize(image, size).clamp_(0.0, 1.0)
    return small, (F.interpolate(regions, size=size, mode="area") if regions is not None else None)

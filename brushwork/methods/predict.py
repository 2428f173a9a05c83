"""Arbitrary-style stylization with a style-prediction network (Ghiasi et al. 2017): `--method predict`.

An arbitrary-style model holds a transformation network and a style-prediction network. The default
is Magenta's trained pair (`magenta-arbitrary`, `brushwork.nets.magenta`): its MobileNet-v2
predictor sees the whole painting as 256 x 256 squares and averages their embeddings
(`MobileNetStylePredictor.embed_painting`). A model trained here (`brushwork train
--kind arbitrary`) predicts from the channel statistics of the frozen VGG-19 instead. Either way
the style becomes an embedding of about 100 numbers, and the embedding every norm parameter of the
transformer; then
stylizing is one forward pass of the feed-forward stylizer with those parameters baked in (so the
onnxruntime CPU path, tiling and colour preservation all come from `brushwork.methods.feedforward`).

- Several styles (`A.jpg:0.3,B.jpg:0.7`) blend by their embeddings.
- `strength` interpolates between the content image's own embedding (the predictor's view of the
  photo as a style: the least change it can make) and the style's, as in Ghiasi et al.; it is not a
  pixel blend.
- `embed_style` returns an embedding; `save_embedding` writes it as .npy (no pickle) or .json (a
  plain list), and such a file can stand in for a style image.
- A `PredictStylizer` keeps the embeddings of its last few style images (by a digest of their
  pixels) and the feed-forward stylizers baked from its last few embeddings (by a digest of the
  embedding), so stylizing many images in one style (a server, video frames) embeds the style and
  builds the network (for onnxruntime, a session: ~0.3 s) once.
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from brushwork.errors import BrushworkError
from brushwork.features import shared_vgg19
from brushwork.features.transfer import region_masks
from brushwork.files import write_file_atomically
from brushwork.imaging import load_image, resize, tensor_to_image
from brushwork.imaging.resize import fit_long_side
from brushwork.methods.blend import normalized, parse_weighted_styles
from brushwork.methods.feedforward import FeedForwardStylizer
from brushwork.methods.one_pass import StylizeOptions, alpha_for, merged_options
from brushwork.methods.style_cache import STYLE_CACHE_SIZE, LRUCache, file_stamp, tensor_digest
from brushwork.models.registry import ModelFile, build_for_model, find_model
from brushwork.nets.magenta import ARBITRARY_MODEL
from brushwork.nets.mobilenet import MobileNetPredictorConfig, MobileNetStylePredictor
from brushwork.nets.style_predictor import PredictorConfig, StylePredictor, style_statistics
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig, split_norm_params
from brushwork.presets import resolve_style
from brushwork.progress import ProgressCallback
from brushwork.runtime import resolve_runtime

DEFAULT_ARBITRARY_MODEL = ARBITRARY_MODEL  # Magenta's trained networks, built in
EMBEDDING_SUFFIXES = (".npy", ".json")
MAX_EMBEDDING_FILE_BYTES = 1 << 20  # an embedding is ~100 numbers: a few kB in either format
ARBITRARY_KINDS = ("arbitrary",)


def load_arbitrary_model(model: str | os.PathLike | ModelFile
                         ) -> tuple[StyleTransferNet, StylePredictor | MobileNetStylePredictor, dict]:
    """(transformer, predictor, config) of an arbitrary-style model, in eval mode on the CPU."""
    if not isinstance(model, ModelFile):
        if os.fspath(model) == DEFAULT_ARBITRARY_MODEL and not Path(model).exists():
            try:
                model = find_model(model, kinds=ARBITRARY_KINDS)
            except BrushworkError:
                raise BrushworkError(
                    "no arbitrary-style model is shipped in this installation: pass --model MODEL.safetensors "
                    "(train one with `brushwork train --kind arbitrary`, see recipes/README.md)"
                ) from None
        else:
            model = find_model(model, kinds=ARBITRARY_KINDS)
    elif model.kind not in ARBITRARY_KINDS:
        raise BrushworkError(f"model {model.name!r} is a {model.kind} model; expected an arbitrary-style model")
    where = str(model.path) if model.path else model.name
    try:
        net_config = TransformerConfig.from_dict(model.config)
        if model.config["predictor"].get("type") == "mobilenet_v2":
            predictor_config = MobileNetPredictorConfig.from_dict(model.config["predictor"])
            predictor_class = MobileNetStylePredictor
        else:
            predictor_config = PredictorConfig.from_dict(model.config["predictor"])
            predictor_class = StylePredictor
        style_size = int(model.config["style_size"])
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise BrushworkError(f"model {where!r} has an invalid arbitrary-style config ({exc})") from None

    def part(name: str) -> ModelFile:
        prefix = f"{name}."
        tensors = {k[len(prefix):]: v for k, v in model.tensors.items() if k.startswith(prefix)}
        return ModelFile(model.kind, model.config, model.card, tensors, model.path)

    net = build_for_model(lambda: StyleTransferNet(net_config), part("net"))
    try:
        predictor = build_for_model(lambda: predictor_class(predictor_config), part("predictor"))
    except (TypeError, ValueError, RuntimeError) as exc:  # sizes no network can have (negative, zero)
        raise BrushworkError(f"model {where!r} has an invalid arbitrary-style config ({exc})") from None
    for module in (net, predictor):
        for key, t in module.state_dict().items():
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise BrushworkError(f"model {where!r} is corrupt: {key} holds NaN or infinite values")
    return net.eval(), predictor.eval(), {"style_size": style_size, "name": model.name, "card": dict(model.card)}


def read_embedding(path: str | os.PathLike, size: int) -> torch.Tensor:
    """An embedding file (.npy without pickles, or .json: a list of numbers) as a 1-D float tensor."""
    path = Path(path)
    try:
        # Read whole and bounded: an .npy header may claim billions of numbers (NumPy would allocate them
        # before finding the file short) and a JSON file may nest deeper than Python's stack.
        data = path.read_bytes() if path.stat().st_size <= MAX_EMBEDDING_FILE_BYTES else None
        if data is None:
            raise ValueError(f"larger than {MAX_EMBEDDING_FILE_BYTES:,} bytes")
        if path.suffix.lower() == ".npy":
            values = _load_npy(data)
        else:
            values = np.asarray(json.loads(data), dtype=np.float64)
    except FileNotFoundError:
        raise BrushworkError(f"embedding file not found: {str(path)!r}") from None
    except (OSError, ValueError, TypeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise BrushworkError(f"{str(path)!r} is not a style embedding ({reason})") from None
    if values.dtype.kind not in "fiu" or values.ndim != 1:
        raise BrushworkError(f"{str(path)!r} is not a style embedding: expected a flat list of numbers")
    if values.shape[0] != size:
        raise BrushworkError(f"{str(path)!r} holds {values.shape[0]} numbers, but this model's embeddings have {size}")
    with np.errstate(over="ignore"):  # an overflow becomes infinity, refused just below
        values = values.astype(np.float32)
    if not np.isfinite(values).all():  # after the cast: 1e300 is finite in the file, infinite in float32
        raise BrushworkError(f"{str(path)!r} holds NaN or infinite values (or numbers too large)")
    return torch.from_numpy(values)


def _load_npy(data: bytes) -> np.ndarray:
    """An .npy file's array, its header checked first: NumPy allocates the array the header describes
    before reading it, so a header claiming more than the file holds is refused here."""
    fp = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fp)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fp)
    except Exception as exc:  # noqa: BLE001 - NumPy parses the header as Python: SyntaxError, TokenError...
        raise ValueError(f"its .npy header is damaged ({type(exc).__name__})") from None
    if math.prod(shape) * dtype.itemsize > len(data):
        raise ValueError(f"its header claims an array of shape {shape}, more than the file holds")
    fp.seek(0)
    return np.load(fp, allow_pickle=False)


def save_embedding(embedding: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write an embedding as .npy (NumPy's format, no pickle) or .json (a plain list), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EMBEDDING_SUFFIXES:
        raise BrushworkError(f"embedding files end in .npy or .json, got {str(path)!r}")
    values = embedding.detach().float().cpu().reshape(-1).numpy()
    if suffix == ".npy":
        # Into memory first: NumPy's writer to a file ignores a short write (a full disk) and truncates.
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        data = buffer.getvalue()
    else:
        data = (json.dumps([float(v) for v in values]) + "\n").encode()
    return write_file_atomically(path, data)


class PredictStylizer:
    """A loaded arbitrary-style model: embeds style images and stylizes with them (thread-safe)."""

    def __init__(self, model: str | os.PathLike | ModelFile = DEFAULT_ARBITRARY_MODEL, *, device: str = "auto",
                 precision: str = "auto", backend: str = "auto", vgg=None):

        self.net, self.predictor, info = load_arbitrary_model(model)
        self.name, self.card, self.style_size = info["name"], info["card"], info["style_size"]
        self.device, self.precision, self.backend_choice = device, precision, backend
        self.runtime = resolve_runtime(device, precision)
        # A MobileNet-v2 predictor reads the painting itself; the others read VGG-19's statistics of it.
        self.reads_pixels = isinstance(self.predictor, MobileNetStylePredictor)
        if self.reads_pixels:
            self.vgg = None
        else:
            self.vgg = self.runtime.adopt_module(vgg) if vgg is not None else shared_vgg19(self.runtime)
        self.predictor = self.runtime.prepare_module(self.predictor)
        self.backend = backend  # the feed-forward stylizer resolves `auto` when it is built
        self._embeddings = LRUCache(STYLE_CACHE_SIZE)  # digest of the style image as embedded -> embedding
        self._stylizers = LRUCache(STYLE_CACHE_SIZE)  # digest of an embedding -> FeedForwardStylizer

    @classmethod
    def from_options(cls, options: StylizeOptions) -> "PredictStylizer":
        return cls(options.model or DEFAULT_ARBITRARY_MODEL, device=options.device, precision=options.precision,
                   backend=options.backend)

    @property
    def embedding_size(self) -> int:
        return self.predictor.config.embedding_size

    def __repr__(self) -> str:
        return f"PredictStylizer({self.name!r}, device={str(self.runtime.device)!r})"

    # ------------------------------------------------------------------------------------------
    # Embeddings

    def embed_image(self, image) -> torch.Tensor:
        """The embedding (1-D) of one style image: path, preset name, PIL image, array or tensor."""
        if isinstance(image, (str, os.PathLike)) and not Path(image).exists():

            image = resolve_style(image)
        rgb, _ = load_image(image)
        if not self.reads_pixels:
            h, w = rgb.shape[-2:]
            # Training showed the predictor crops of up to the painting's whole short side, resized to
            # style_size: the whole image with its short side at style_size has the same stroke scale.
            scale = self.style_size / min(h, w)
            rgb = resize(rgb, (max(1, round(h * scale)), max(1, round(w * scale)))).clamp(0, 1)
        # Keyed by the pixels the predictor sees: the same painting from a path, an upload or an array hits.
        key = tensor_digest(rgb)
        embedding = self._embeddings.get(key)
        if embedding is None:
            rt = self.runtime
            if self.reads_pixels:
                # In float32 whatever the runtime's precision: the transformer is indifferent to bf16 (palette
                # 2.77 against 2.79 in float32), but Magenta's predictor is not. Its bf16 embedding (cosine 0.9988
                # to the float32 one) gave motorcycle x starry-night-over-the-rhone a palette distance of 4.5
                # instead of 2.8. At most four 256 px passes per painting, so this costs nothing that shows.
                with torch.no_grad():
                    embedding = self.predictor.embed_painting(rt.prepare_input(rgb))[0].float().cpu()
            else:
                with torch.no_grad(), rt.autocast():
                    statistics = style_statistics(self.vgg, rt.prepare_input(rgb))
                    embedding = self.predictor.embed(statistics)[0].float().cpu()
            self._embeddings.put(key, embedding)
        return embedding.clone()  # callers may change theirs in place; the cached one stays as computed

    def embed_style(self, style) -> torch.Tensor:
        """The embedding of a style spec: an image, preset or embedding file, or a blend `A:0.3,B:0.7`
        (the weighted mean of their embeddings)."""
        if not isinstance(style, (str, os.PathLike)):
            return self.embed_image(style)
        total = torch.zeros(self.embedding_size)
        for source, weight in normalized(parse_weighted_styles(os.fspath(style))):
            if Path(source).suffix.lower() in EMBEDDING_SUFFIXES:
                total += weight * read_embedding(source, self.embedding_size)
            else:
                total += weight * self.embed_image(source)
        return total

    def norm_params(self, embedding: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        with torch.no_grad():
            flat = self.predictor.norm_params(embedding.float().reshape(1, -1).to(self.runtime.device))
        return [(a[0].float().cpu(), b[0].float().cpu()) for a, b in split_norm_params(self.net, flat)]

    def stylizer_for(self, embedding: torch.Tensor) -> FeedForwardStylizer:
        """A feed-forward stylizer with this embedding's norm parameters baked in (reused for the same embedding)."""
        key = tensor_digest(embedding.reshape(-1))
        stylizer = self._stylizers.get(key)
        if stylizer is None:
            stylizer = FeedForwardStylizer(self.net, norm_params=self.norm_params(embedding), device=self.device,
                                           precision=self.precision, backend=self.backend_choice)
            self._stylizers.put(key, stylizer)
        return stylizer

    # ------------------------------------------------------------------------------------------
    # Stylizing

    def stylize(self, image, options: StylizeOptions | None = None, *, progress: ProgressCallback | None = None,
                style=None, **overrides):
        """Stylize one image with `options.style` (or `style`: an image, embedding file or blend spec, a list
        of them, or a ready embedding tensor); returns a PIL image (RGBA when the input has alpha)."""
        opts = merged_options(options, overrides)
        rgb, alpha = load_image(image)
        out = self.stylize_tensor(rgb, opts, progress=progress, style=style)
        del rgb
        return tensor_to_image(out, alpha_for(alpha, out))

    def stylize_tensor(self, image: torch.Tensor, options: StylizeOptions | None = None, *,
                       progress: ProgressCallback | None = None, style=None, **overrides) -> torch.Tensor:
        """Stylize N x 3 x H x W RGB in [0, 1] (video frames, batches); returns a tensor in [0, 1].

        With `strength` below 1 each image's own embedding enters its blend, and with a mask each image
        has its own regions, so images then go one by one."""
        opts = merged_options(options, overrides)
        if not torch.is_tensor(image) or image.dim() != 4 or image.shape[1] != 3:
            raise BrushworkError(f"expected an N x 3 x H x W image tensor, got {getattr(image, 'shape', type(image))}")
        full = replace(opts, strength=1.0)
        outputs = []
        for piece in (image.split(1) if opts.strength < 1.0 or opts.mask is not None else (image,)):
            if opts.mask is not None:
                outputs.append(self._stylize_regions(piece, opts, style, progress))
                continue
            stylizer = self.stylizer_for(self._embedding_for(opts, style, piece))
            self.backend = stylizer.backend
            outputs.append(stylizer.stylize_tensor(piece, full, progress=progress))
        return torch.cat(outputs)

    def _stylize_regions(self, image: torch.Tensor, opts: StylizeOptions, style, progress) -> torch.Tensor:
        """One image with a mask: the network runs once per style over the whole image (so every region's
        strokes are whole at its edges) and the outputs are mixed by the mask's regions (`region_masks`:
        one style, white styled and black the photo; N styles, N grey levels from black to white)."""
        styles = self._styles(opts, style)
        if len(styles) > 1 and opts.style_blend is not None:
            raise BrushworkError("with a mask each region takes its own style: give no --style-blend")
        content = image.detach().float().cpu().clamp(0.0, 1.0)
        if opts.size is not None:
            content = resize(content, fit_long_side(content.shape[2], content.shape[3], opts.size)).clamp_(0.0, 1.0)
        mask, _ = load_image(opts.mask)
        regions = region_masks(resize(mask.mean(1, keepdim=True), tuple(content.shape[-2:])).clamp_(0.0, 1.0),
                               len(styles))
        full = replace(opts, strength=1.0, size=None, mask=None, style_blend=None)
        outputs = [content] if len(styles) == 1 else []
        for one in styles:
            stylizer = self.stylizer_for(self._embedding_for(replace(opts, style_blend=None), one, content))
            self.backend = stylizer.backend
            outputs.append(stylizer.stylize_tensor(content, full, progress=progress))
        return sum(regions[:, r:r + 1] * out for r, out in enumerate(outputs)).clamp_(0.0, 1.0)

    @staticmethod
    def _styles(opts: StylizeOptions, style) -> list:
        style = opts.style if style is None else style
        return list(style) if isinstance(style, (list, tuple)) else [style]

    def _embedding_for(self, opts: StylizeOptions, style, content) -> torch.Tensor:
        """The style's embedding (several styles: their blend by `style_blend`, equal by default), moved
        towards `content`'s own by 1 - strength (`--strength`)."""
        embeddings = [s if torch.is_tensor(s) and s.dim() == 1 else self.embed_style(s)
                      for s in self._styles(opts, style)]
        if len(embeddings) == 1:
            embedding = embeddings[0]
        else:
            weights = opts.style_blend if opts.style_blend is not None else [1.0] * len(embeddings)
            if len(weights) != len(embeddings):
                raise BrushworkError(f"{len(weights)} --style-blend weights for {len(embeddings)} styles")
            embedding = sum(w * e for (_, w), e in zip(normalized([("", float(w)) for w in weights]), embeddings))
        if opts.strength < 1.0:
            rgb, _ = load_image(content)
            embedding = opts.strength * embedding + (1.0 - opts.strength) * self.embed_image(rgb)
        return embedding


_predictors = LRUCache(2)  # loaded models, by file and settings


def get_predictor(options: StylizeOptions) -> PredictStylizer:
    """A `PredictStylizer` for these options, reused across calls with the same model file and settings."""
    model = options.model or DEFAULT_ARBITRARY_MODEL
    if isinstance(model, ModelFile):
        return PredictStylizer.from_options(options)
    model = os.fspath(model)
    key = (model, file_stamp(model), options.device, options.precision, options.backend)
    return _predictors.get_or_build(key, lambda: PredictStylizer(
        model, device=options.device, precision=options.precision, backend=options.backend))


def embed_style(style, model: str | os.PathLike | ModelFile = DEFAULT_ARBITRARY_MODEL, *, device: str = "auto",
                precision: str = "auto") -> torch.Tensor:
    """The embedding (1-D tensor) of a style image, preset, embedding file or blend `A:0.3,B:0.7`."""
    options = StylizeOptions(model=model, device=device, precision=precision, method="predict")
    return get_predictor(options).embed_style(style)



__all__ = ["PredictStylizer", "embed_style", "get_predictor", "read_embedding", "save_embedding",
           "DEFAULT_ARBITRARY_MODEL"]

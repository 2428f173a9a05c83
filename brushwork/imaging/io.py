"""Reading and writing images.

Everything a user can hand us (files in any PIL mode, arrays, tensors) is normalized here to an
8-bit RGB or RGBA PIL image, so the rest of the library only ever sees N x 3 x H x W floats in
[0, 1] plus an optional alpha mask. Failures a user can cause become one-line `BrushworkError`s.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import torch
from PIL import Image, ImageOps

from brushwork.errors import BrushworkError
from brushwork.files import atomic_write, os_reason
from brushwork.imaging.resize import resize_long_side

DEFAULT_MAX_PIXELS = 100_000_000

# Extension -> PIL format name. Anything else is refused before any work is done.
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_NO_ALPHA_FORMATS = {"JPEG", "BMP"}
# Suffixes taken as images when a folder is searched (photos to paint or to train on): what can be saved,
# and a few formats that are only read.
IMAGE_SUFFIXES = frozenset(SAVE_FORMATS) | {".gif", ".ppm", ".pgm"}

# What PIL raises for damaged data varies by plugin and by where in the file the damage is.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)

_pil_limit_lock = threading.Lock()


# --------------------------------------------------------------------------------------------
# Opening


def open_image(source: Any, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open `source` as a fully decoded PIL image in mode "RGB", or "RGBA" when it has transparency.

    `source` may be a path, bytes or a binary file object, a PIL image, a numpy array (H x W,
    H x W x 1/3/4; uint8, uint16, bool or float in [0, 1]) or a tensor (C x H x W or 1 x C x H x W
    in [0, 1], C in 1/3/4). EXIF orientation is applied and animated files give their first frame.
    Images over `max_pixels` (None: no limit) are refused from the header, before decoding.
    """
    with _quiet_pil():
        if isinstance(source, (str, os.PathLike)):
            return _open_path(source, max_pixels)
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _open_stream(io.BytesIO(bytes(source)), "<bytes>", max_pixels)
        if hasattr(source, "read"):
            return _open_stream(source, str(getattr(source, "name", "<stream>")), max_pixels)
        if isinstance(source, Image.Image):
            _check_size(source.size, "<image>", max_pixels)
            try:
                source.load()  # a lazily opened image may still hold a damaged body
            except _DECODE_ERRORS as e:
                raise BrushworkError(f"cannot read image '<image>': {_decode_reason(e)}") from None
            return _normalize_mode(source, "<image>")
        if isinstance(source, torch.Tensor):
            return _from_array(_tensor_to_hwc(source), "<tensor>", max_pixels)
        if isinstance(source, np.ndarray):
            return _from_array(source, "<array>", max_pixels)
    raise TypeError(f"cannot open an image from a {type(source).__name__}")


@contextlib.contextmanager
def _quiet_pil() -> Iterator[None]:
    # PIL warns about oddities it has worked around (damaged metadata tags, palette transparency,
    # sizes between its bomb warning and error thresholds). The image either decodes, or fails
    # with an error we report on one line; the warnings would only clutter that. Our max_pixels
    # is the one size limit applied.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _open_path(path: str | os.PathLike, max_pixels: int | None) -> Image.Image:
    name = os.fspath(path)
    try:
        fp = open(name, "rb")  # closed by the with-block below
    except FileNotFoundError:
        raise BrushworkError(f"cannot read image '{name}': no such file") from None
    except IsADirectoryError:
        raise BrushworkError(f"cannot read image '{name}': is a directory") from None
    except PermissionError:
        raise BrushworkError(f"cannot read image '{name}': permission denied") from None
    except OSError as e:
        raise BrushworkError(f"cannot read image '{name}': {os_reason(e)}") from None
    with fp:
        if os.path.isdir(name):  # some platforms let open() succeed on a directory
            raise BrushworkError(f"cannot read image '{name}': is a directory")
        return _open_stream(fp, name, max_pixels)


def _open_stream(fp: BinaryIO, name: str, max_pixels: int | None) -> Image.Image:
    try:
        return _decode(fp, name, max_pixels)
    except Image.DecompressionBombError:
        hard_limit = _pil_hard_limit()
        if max_pixels is not None and max_pixels <= hard_limit:
            # PIL only raises this above its own limit, which is above ours: our refusal stands.
            raise BrushworkError(
                f"cannot read image '{name}': image is too large "
                f"(over {hard_limit:,} pixels; the limit is {max_pixels:,})"
            ) from None
        # The caller asked for more than PIL allows by default; our own check governs instead.
        with _pil_limit_lifted():
            fp.seek(0)
            return _decode(fp, name, max_pixels)


def _decode(fp: BinaryIO, name: str, max_pixels: int | None) -> Image.Image:
    try:
        im = Image.open(fp)
    except Image.UnidentifiedImageError:
        raise BrushworkError(
            f"cannot read image '{name}': not an image, or a format that cannot be read"
        ) from None
    except Image.DecompressionBombError:
        raise
    except _DECODE_ERRORS as e:
        raise BrushworkError(f"cannot read image '{name}': {_decode_reason(e)}") from None

    _check_size(im.size, name, max_pixels)
    try:
        # The header parsed, but PIL decodes lazily: force it here so a truncated or corrupt
        # body fails now, with the file's name, rather than deep inside a model.
        im.load()
    except Image.DecompressionBombError:
        raise
    except _DECODE_ERRORS as e:
        raise BrushworkError(f"cannot read image '{name}': {_decode_reason(e)}") from None
    except MemoryError:
        raise BrushworkError(
            f"cannot read image '{name}': not enough memory to decode "
            f"{im.size[0]}x{im.size[1]} pixels"
        ) from None

    out = _normalize_mode(_exif_transpose(im), name)
    # Detach from the file: the caller may close or delete it as soon as we return.
    return out.copy() if out is im else out


def _check_size(size: tuple[int, int], name: str, max_pixels: int | None) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise BrushworkError(f"cannot read image '{name}': image is empty ({w}x{h} pixels)")
    if max_pixels is not None and w * h > max_pixels:
        raise BrushworkError(
            f"cannot read image '{name}': image is too large ({w}x{h} = {w * h:,} pixels; "
            f"the limit is {max_pixels:,})"
        )


def _pil_hard_limit() -> float:
    limit = Image.MAX_IMAGE_PIXELS
    return float("inf") if limit is None else 2 * limit


@contextlib.contextmanager
def _pil_limit_lifted() -> Iterator[None]:
    # PIL's limit is process-global; the lock keeps two lifts from restoring each other's value.
    with _pil_limit_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _decode_reason(e: BaseException) -> str:
    text = str(e).strip().rstrip(".")
    if "truncated" in text.lower() or isinstance(e, EOFError):
        return "file is truncated"
    first_line = text.splitlines()[0] if text else type(e).__name__
    return f"file is corrupt ({first_line})"


def _exif_transpose(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except Exception:
        # EXIF is metadata written by any number of buggy tools; a broken tag must not make a
        # perfectly decodable image unreadable, so fall back to the stored orientation.
        return im


# --------------------------------------------------------------------------------------------
# Mode normalization


def _normalize_mode(im: Image.Image, name: str) -> Image.Image:
    """An RGB image, or RGBA when some pixel is actually (partly) transparent."""
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("1", "L", "P", "RGB") and "transparency" in im.info
    ):
        if mode == "La":  # PIL has no direct La -> RGBA conversion
            im = im.convert("LA")
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        lo, _ = rgba.getchannel("A").getextrema()
        # Many files carry an alpha channel that is opaque everywhere; treating those as
        # transparent would make every later stage carry a useless mask.
        return rgba.convert("RGB") if lo == 255 else rgba
    if mode.startswith("I;16") or mode == "I":
        # PIL's own convert clips 16-bit values to 0..255 instead of scaling them.
        values = np.asarray(im).astype(np.float64)
        return _gray_to_rgb(np.clip(values, 0, 65535) / 65535.0)
    if mode == "F":
        values = np.nan_to_num(np.asarray(im).astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        hi = float(values.max()) if values.size else 0.0
        # "F" has no defined range: [0, 1] data is taken as is, data that looks like 8-bit levels
        # (what PIL itself makes from "L") is scaled from 0..255, anything larger by its maximum.
        if hi > 255.0:
            values = values / hi
        elif hi > 1.0:
            values = values / 255.0
        return _gray_to_rgb(np.clip(values, 0.0, 1.0))
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as e:
        raise BrushworkError(f"cannot read image '{name}': unsupported image mode {mode!r} ({e})") from None


def _gray_to_rgb(values: np.ndarray) -> Image.Image:
    levels = np.round(values * 255.0).astype(np.uint8)
    return Image.fromarray(levels).convert("RGB")


def _tensor_to_hwc(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise BrushworkError(f"expected a single image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() == 3:
        if t.shape[0] not in (1, 3, 4):
            raise BrushworkError(f"expected 1, 3 or 4 channels, got a tensor of shape {tuple(t.shape)}")
        t = t.permute(1, 2, 0)
    elif t.dim() != 2:
        raise BrushworkError(f"expected a C x H x W image tensor, got shape {tuple(t.shape)}")
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy()


def _from_array(a: np.ndarray, name: str, max_pixels: int | None) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise BrushworkError(f"cannot read image '{name}': unsupported array shape {a.shape}")
    _check_size((a.shape[1], a.shape[0]), name, max_pixels)
    if a.dtype == np.uint8:
        levels = a
    elif a.dtype == np.uint16:
        levels = np.round(a.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    elif a.dtype == np.bool_:
        levels = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        values = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
        levels = np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise BrushworkError(
            f"cannot read image '{name}': unsupported array type {a.dtype} "
            "(use uint8, uint16, or float in [0, 1])"
        )
    return _normalize_mode(Image.fromarray(np.ascontiguousarray(levels)), name)


# --------------------------------------------------------------------------------------------
# PIL <-> tensor


def image_to_tensor(img: Image.Image) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(1 x 3 x H x W float32 in [0, 1], 1 x 1 x H x W alpha or None when fully opaque)."""
    with _quiet_pil():
        img = _normalize_mode(img, "<image>")
    data = np.array(img, dtype=np.uint8)  # a copy: PIL's buffer is read-only
    t = torch.from_numpy(data).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    if img.mode == "RGBA":
        return t[:, :3].contiguous(), t[:, 3:].contiguous()
    return t, None


def tensor_to_image(rgb: torch.Tensor, alpha: torch.Tensor | None = None) -> Image.Image:
    """An RGB (or RGBA, with `alpha`) PIL image from a 3 x H x W or 1 x 3 x H x W tensor in [0, 1]."""
    rgb = _as_chw(rgb, 3, "rgb")
    h, w = rgb.shape[-2:]
    planes = [rgb]
    if alpha is not None:
        a = alpha.detach().cpu()
        while a.dim() > 2 and a.shape[0] == 1:
            a = a[0]
        if a.dim() != 2 or tuple(a.shape) != (h, w):
            raise ValueError(f"alpha of shape {tuple(alpha.shape)} does not fit an image of {h}x{w}")
        planes.append(a.float().unsqueeze(0))
    x = torch.cat(planes, 0).nan_to_num(0.0).clamp_(0.0, 1.0).mul_(255.0).round_()
    data = x.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(data, "RGBA" if alpha is not None else "RGB")


def _as_chw(t: torch.Tensor, channels: int, what: str) -> torch.Tensor:
    t = t.detach().cpu()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != channels:
        raise ValueError(f"expected {what} of shape {channels} x H x W or 1 x {channels} x H x W, "
                         f"got {tuple(t.shape)}")
    return t.float()


def load_image(
    source: Any, *, max_side: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Open `source` and return (1 x 3 x H x W, alpha 1 x 1 x H x W or None), floats in [0, 1].

    With `max_side`, an image whose longer side exceeds it is shrunk (keeping its aspect ratio)
    so the longer side is `max_side`; smaller images are never enlarged.
    """
    rgb, alpha = image_to_tensor(open_image(source, max_pixels=max_pixels))
    if max_side is not None:
        if int(max_side) < 1:
            raise BrushworkError(f"image size must be at least 1 pixel, got {max_side}")
        if max(rgb.shape[-2:]) > max_side:
            rgb = resize_long_side(rgb, max_side).clamp_(0.0, 1.0)
            if alpha is not None:
                alpha = resize_long_side(alpha, max_side).clamp_(0.0, 1.0)
    return rgb, alpha


# --------------------------------------------------------------------------------------------
# Saving


def save_image(
    image: Image.Image | torch.Tensor,
    path: str | os.PathLike,
    *,
    alpha: torch.Tensor | None = None,
    quality: int = 95,
) -> Path:
    """Write `image` (PIL image or 3 x H x W / 1 x 3 x H x W tensor) to `path`, atomically.

    The format comes from the extension. Missing parent directories are created. Either the whole
    new file appears at `path` or, on failure, whatever was there before is left untouched.
    JPEG and BMP cannot hold alpha, so transparent images are composited onto white for them.
    `quality` applies to JPEG and WebP. Returns the path written.
    """
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(SAVE_FORMATS))
        shown = f"extension '{path.suffix}'" if path.suffix else "no extension"
        raise BrushworkError(f"cannot save image '{path}': unknown format ({shown}; use one of {known})")

    img = _to_savable(image, alpha)
    if fmt in _NO_ALPHA_FORMATS and img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    options: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = int(quality)

    with atomic_write(path, "save image") as tmp:
        try:
            with open(tmp, "wb") as f:
                img.save(f, format=fmt, **options)
        except (ValueError, KeyError, TypeError) as e:
            # PIL's encoders report unsupported mode/option combinations this way.
            raise BrushworkError(f"cannot save image '{path}': {e}") from None
    return path


def _to_savable(image: Image.Image | torch.Tensor, alpha: torch.Tensor | None) -> Image.Image:
    if isinstance(image, torch.Tensor):
        return tensor_to_image(image, alpha)
    if not isinstance(image, Image.Image):
        raise TypeError(f"cannot save a {type(image).__name__} as an image")
    with _quiet_pil():
        img = _normalize_mode(image, "<image>")
    if alpha is not None:
        rgb, _ = image_to_tensor(img.convert("RGB"))
        return tensor_to_image(rgb, alpha)
    return img



"""Property tests of image decoding: any bytes, any damaged or odd file, any array or tensor a caller may hand
`load_image` gives an RGB tensor in [0, 1] (with an alpha of the same size, or none) or one `BrushworkError`;
never another exception, a hang, or a decode larger than `max_pixels`."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.errors import BrushworkError
from brushwork.imaging.io import load_image

pytest.importorskip("hypothesis")
from fuzzing import fuzz  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

# Small enough that a header claiming a huge image is refused before decoding, and a mutated header
# cannot make one example decode for long.
MAX_PIXELS = 200_000

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM", "TGA", "PCX"]
MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "I;16", "I", "F", "CMYK"]


def check(source) -> None:
    """The property: a well-formed result or one BrushworkError with a one-line message."""
    try:
        rgb, alpha = load_image(source, max_pixels=MAX_PIXELS)
    except BrushworkError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert rgb.dtype == torch.float32 and rgb.dim() == 4 and rgb.shape[:2] == (1, 3)
    assert rgb.shape[2] * rgb.shape[3] <= MAX_PIXELS
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    if alpha is not None:
        assert alpha.shape == (1, 1, *rgb.shape[2:])


def encoded(fmt: str, mode: str, w: int, h: int, seed: int) -> bytes | None:
    """A small image in this format and mode, or None when PIL cannot write that combination."""
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA")
    try:
        im = im.convert(mode) if mode != "I;16" else im.convert("L").convert("I;16")
        buf = io.BytesIO()
        im.save(buf, fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return buf.getvalue()


valid_files = st.builds(encoded, st.sampled_from(FORMATS), st.sampled_from(MODES), st.integers(1, 40),
                        st.integers(1, 40), st.integers(0, 2**16)).filter(lambda b: b is not None)


@fuzz(60)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data):
    check(data)


@fuzz(60)
@given(valid_files)
def test_valid_files_in_every_format_and_mode_decode(data):
    rgb, _ = load_image(data, max_pixels=MAX_PIXELS)
    assert rgb.shape[2] * rgb.shape[3] <= 40 * 40


@fuzz(150)
@given(valid_files, st.data())
def test_damaged_files(data, draw):
    """Truncated, bit-flipped and overwritten copies of real files (headers included)."""
    damaged = bytearray(data)
    how = draw.draw(st.sampled_from(["truncate", "flip", "overwrite", "splice"]))
    if how == "truncate":
        damaged = damaged[: draw.draw(st.integers(0, len(damaged)))]
    elif how == "flip":
        for _ in range(draw.draw(st.integers(1, 8))):
            i = draw.draw(st.integers(0, len(damaged) - 1))
            damaged[i] ^= 1 << draw.draw(st.integers(0, 7))
    elif how == "overwrite":  # headers hold sizes and offsets in their first bytes
        i = draw.draw(st.integers(0, min(len(damaged), 64) - 1))
        chunk = draw.draw(st.binary(min_size=1, max_size=8))
        damaged[i:i + len(chunk)] = chunk
    else:
        i = draw.draw(st.integers(0, len(damaged)))
        damaged[i:i] = draw.draw(st.binary(max_size=64))
    check(bytes(damaged))


def png(width: int, height: int, depth: int, color: int, body: bytes) -> bytes:
    def chunk(kind, payload):
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


@fuzz(60)
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.sampled_from([1, 2, 4, 8, 16]),
       st.sampled_from([0, 2, 3, 4, 6]), st.binary(max_size=256))
def test_png_headers_claiming_any_size(width, height, depth, color, body):
    """Valid checksums, any claimed size: huge ones are refused from the header, before any decoding."""
    check(png(width, height, depth, color, body))


@fuzz(60)
@given(hnp.arrays(st.sampled_from([np.uint8, np.uint16, np.bool_, np.float32, np.float64, np.int32, np.complex64]),
                  hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=12)))
def test_arrays(a):
    check(a)


@fuzz(60)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=6),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_tensors(a):
    check(torch.from_numpy(a))


# The magic numbers PIL's format plugins recognize a file by: random bodies behind them reach every plugin's
# header parser rather than stopping at "not an image".
MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF",
          b"\x00\x00\x01\x00", b"P6\n", b"P5\n", b"P4\n", b"8BPS", b"DDS ", b"qoif", b"icns", b"SIMPLE  =",
          b"%!PS-Adobe-3.0", b"\x0a\x05\x01\x08", b"\x01\xda", b"\x59\xa6\x6a\x95", b"gimp xcf ",
          b"\x00\x00\x00\x0cjP  ",
          b"\xff\x4f\xff\x51", b"#define", b"/* XPM */", b"FORM", b"\x00\x00\x00\x00\x00", b"PF\n", b"Pf\n"]


@fuzz(200)
@given(st.sampled_from(MAGICS), st.binary(max_size=512))
def test_random_bodies_behind_every_format_signature(magic, body):
    check(magic + body)

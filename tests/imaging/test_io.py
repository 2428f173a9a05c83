import errno
import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from brushwork.errors import BrushworkError
from brushwork.imaging import (
    DEFAULT_MAX_PIXELS,
    fit_long_side,
    image_to_tensor,
    load_image,
    open_image,
    painting_views,
    resize,
    resize_long_side,
    save_image,
    tensor_to_image,
)
from brushwork.imaging import io as bio

RED = (255, 0, 0)


def _close(a, b, tol):
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


def _saved(tmp_path, im, name, **kw):
    path = tmp_path / name
    im.save(path, **kw)
    return path


def _palette_image(transparent):
    im = Image.new("P", (16, 16), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(0, (0, 0, 8, 16))  # left half index 0 (black), right half index 1 (red)
    if transparent:
        im.info["transparency"] = 0
    return im


def _gif_two_frames(path):
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    return path


def _i16(value):
    return Image.fromarray(np.full((16, 16), value, dtype=np.uint16))


# (builder(tmp_path) -> source, expected mode, pixel at (12, 4), tolerance)
MODE_CASES = {
    "1": (lambda p: _saved(p, Image.new("1", (16, 16), 1), "a.png"), "RGB", (255, 255, 255), 0),
    "L": (lambda p: _saved(p, Image.new("L", (16, 16), 100), "a.png"), "RGB", (100, 100, 100), 0),
    "LA-opaque": (lambda p: _saved(p, Image.new("LA", (16, 16), (100, 255)), "a.png"), "RGB", (100,) * 3, 0),
    "LA": (lambda p: _saved(p, Image.new("LA", (16, 16), (100, 128)), "a.png"), "RGBA", (100, 100, 100, 128), 0),
    "P": (lambda p: _saved(p, _palette_image(False), "a.png"), "RGB", RED, 0),
    "P-transparent-png": (lambda p: _saved(p, _palette_image(True), "a.png", transparency=0), "RGBA", RED + (255,), 0),
    "P-transparent-gif": (lambda p: _saved(p, _palette_image(True), "a.gif", transparency=0), "RGBA", RED + (255,), 0),
    "PA": (lambda p: Image.new("PA", (16, 16), (0, 77)), "RGBA", (0, 0, 0, 77), 0),
    "RGBA": (lambda p: _saved(p, Image.new("RGBA", (16, 16), (10, 20, 30, 40)), "a.png"), "RGBA", (10, 20, 30, 40), 0),
    "RGBA-opaque": (lambda p: _saved(p, Image.new("RGBA", (16, 16), (10, 20, 30, 255)), "a.png"),
                    "RGB", (10, 20, 30), 0),
    "RGB-webp": (lambda p: _saved(p, Image.new("RGB", (16, 16), (10, 200, 30)), "a.webp", lossless=True),
                 "RGB", (10, 200, 30), 0),
    "I;16": (lambda p: _saved(p, _i16(257 * 100), "a.png"), "RGB", (100, 100, 100), 0),
    "I;16-max": (lambda p: _saved(p, _i16(65535), "a.tif"), "RGB", (255, 255, 255), 0),
    "I": (lambda p: _saved(p, Image.new("I", (16, 16), 257 * 200), "a.tif"), "RGB", (200, 200, 200), 0),
    "F-unit": (lambda p: _saved(p, Image.new("F", (16, 16), 0.25), "a.tif"), "RGB", (64, 64, 64), 0),
    "F-levels": (lambda p: Image.new("L", (16, 16), 40).convert("F"), "RGB", (40, 40, 40), 0),
    "CMYK-jpeg": (lambda p: _saved(p, Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "a.jpg"), "RGB", RED, 8),
    "CMYK-tiff": (lambda p: _saved(p, Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "a.tif"), "RGB", RED, 0),
    "YCbCr": (lambda p: Image.new("YCbCr", (16, 16), (76, 85, 255)), "RGB", RED, 3),
    "LAB-tiff": (lambda p: _saved(p, Image.new("LAB", (16, 16), (138, 208, 195)), "a.tif"), "RGB", RED, 12),
    "HSV": (lambda p: Image.new("HSV", (16, 16), (0, 255, 255)), "RGB", RED, 0),
    "animated-gif": (lambda p: _gif_two_frames(p / "a.gif"), "RGB", RED, 0),
}


@pytest.mark.parametrize("case", list(MODE_CASES))
def test_open_image_normalizes_every_mode(tmp_path, case):
    build, mode, expected, tol = MODE_CASES[case]
    im = open_image(build(tmp_path))
    assert im.mode == mode
    assert im.size == (16, 16)
    assert _close(im.getpixel((12, 4)), expected, tol), im.getpixel((12, 4))


def test_palette_transparency_is_kept_where_it_is(tmp_path):
    im = open_image(_saved(tmp_path, _palette_image(True), "a.png", transparency=0))
    assert im.getpixel((2, 2))[3] == 0
    assert im.getpixel((12, 2))[3] == 255


def test_open_image_returns_an_image_independent_of_the_file(tmp_path):
    path = _saved(tmp_path, Image.new("RGB", (16, 16), RED), "a.png")
    im = open_image(path)
    path.unlink()
    assert im.getpixel((3, 3)) == RED


def test_exif_orientation_is_applied(tmp_path):
    # Stored 32 wide x 16 high, left half red; orientation 6 means "rotate 90 degrees clockwise to
    # display", which puts the stored left column at the top.
    stored = Image.new("RGB", (32, 16), (0, 0, 255))
    stored.paste(RED, (0, 0, 16, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    im = open_image(path)
    assert im.size == (16, 32)
    assert _close(im.getpixel((8, 4)), RED, 20)
    assert _close(im.getpixel((8, 28)), (0, 0, 255), 20)
    rgb, _ = load_image(path)
    assert rgb.shape == (1, 3, 32, 16)


@pytest.mark.parametrize(
    "array, mode, expected",
    [
        (np.full((8, 12), 7, np.uint8), "RGB", (7, 7, 7)),
        (np.full((8, 12, 1), 7, np.uint8), "RGB", (7, 7, 7)),
        (np.full((8, 12, 3), 257 * 9, np.uint16), "RGB", (9, 9, 9)),
        (np.full((8, 12, 3), 0.5, np.float32), "RGB", (128, 128, 128)),
        (np.full((8, 12, 3), 2.0, np.float64), "RGB", (255, 255, 255)),  # clipped
        (np.full((8, 12, 4), 0.2, np.float32), "RGBA", (51, 51, 51, 51)),
        (np.ones((8, 12, 4), np.uint8) * 255, "RGB", (255, 255, 255)),  # opaque alpha dropped
        (np.ones((8, 12), bool), "RGB", (255, 255, 255)),
    ],
)
def test_open_image_from_arrays(array, mode, expected):
    im = open_image(array)
    assert im.mode == mode and im.size == (12, 8)
    assert im.getpixel((5, 5)) == expected


def test_open_image_rejects_bad_arrays():
    with pytest.raises(BrushworkError, match="unsupported array type"):
        open_image(np.zeros((4, 4, 3), np.int64))
    with pytest.raises(BrushworkError, match="unsupported array shape"):
        open_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(BrushworkError, match="empty"):
        open_image(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(BrushworkError, match="empty"):
        open_image(Image.new("RGB", (0, 0)))
    with pytest.raises(TypeError):
        open_image(42)


def test_lazily_opened_pil_image_with_damaged_body(tmp_path):
    rng = np.random.default_rng(0)
    full = _saved(tmp_path, Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), "a.png")
    full.write_bytes(full.read_bytes()[:600])
    with Image.open(full) as lazy:
        with pytest.raises(BrushworkError, match="truncated"):
            open_image(lazy)


def test_open_image_from_tensors_and_bytes():
    t = torch.arange(3 * 4 * 5, dtype=torch.float32).reshape(3, 4, 5) / 255.0
    for source in (t, t.unsqueeze(0)):
        im = open_image(source)
        assert im.mode == "RGB" and im.size == (5, 4)
        assert im.getpixel((1, 0)) == (1, 21, 41)
    with pytest.raises(BrushworkError, match="batch of 2"):
        open_image(torch.zeros(2, 3, 4, 4))
    buf = io.BytesIO()
    Image.new("RGB", (6, 6), RED).save(buf, "PNG")
    assert open_image(buf.getvalue()).getpixel((0, 0)) == RED
    buf.seek(0)
    assert open_image(buf).getpixel((0, 0)) == RED


# ---- errors -----------------------------------------------------------------------------------


def _one_line(err):
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(BrushworkError) as err:
        open_image(tmp_path / "nope.png")
    assert _one_line(err) == f"cannot read image '{tmp_path / 'nope.png'}': no such file"
    with pytest.raises(BrushworkError, match="is a directory"):
        open_image(tmp_path)


def test_unreadable_file(tmp_path, monkeypatch):
    path = _saved(tmp_path, Image.new("RGB", (4, 4)), "a.png")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    # Root ignores file modes, so simulate what a chmod 000 gives an ordinary user.
    monkeypatch.setattr(bio, "open", denied, raising=False)
    with pytest.raises(BrushworkError) as err:
        open_image(path)
    assert _one_line(err) == f"cannot read image '{path}': permission denied"


@pytest.mark.parametrize("content", [b"hello, I am not a picture\n", b""])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(BrushworkError) as err:
        open_image(path)
    assert "notes.png" in _one_line(err) and "not an image" in str(err.value)


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "gif"])
def test_truncated_file_is_caught_on_open(tmp_path, ext):
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    full = _saved(tmp_path, noise, f"full.{ext}")
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error is the whole report: no PIL warnings beside it
        with pytest.raises(BrushworkError) as err:
            open_image(path)
    assert _one_line(err).startswith(f"cannot read image '{path}': file is")
    assert "truncated" in str(err.value) or "corrupt" in str(err.value)


def _png_with_header_size(tmp_path, width, height):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), RED).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(self):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize(
    "width, height",
    [
        (12_000, 12_000),  # over our limit, under PIL's hard limit: PIL would only warn
        (100_000, 100_000),  # over PIL's hard limit too
    ],
)
def test_huge_header_is_refused_before_decoding(tmp_path, no_decoding, width, height):
    path = _png_with_header_size(tmp_path, width, height)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not escape either
        with pytest.raises(BrushworkError) as err:
            open_image(path)
    assert _one_line(err).startswith(f"cannot read image '{path}': image is too large")
    assert f"{DEFAULT_MAX_PIXELS:,}" in str(err.value)


def test_max_pixels_is_checked_before_decoding(tmp_path, no_decoding):
    path = _saved(tmp_path, Image.new("RGB", (16, 16)), "a.png")
    with pytest.raises(BrushworkError, match=r"16x16 = 256 pixels; the limit is 255"):
        open_image(path, max_pixels=255)
    with pytest.raises(BrushworkError, match="too large"):
        load_image(path, max_pixels=100)


def test_our_limit_governs_over_pils(tmp_path, monkeypatch):
    path = _saved(tmp_path, Image.new("RGB", (16, 16), RED), "a.png")
    # 256 pixels: over PIL's warning threshold (100) and its hard limit (200).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_image(path, max_pixels=1000).getpixel((0, 0)) == RED
        assert open_image(path, max_pixels=None).size == (16, 16)
        with pytest.raises(BrushworkError, match="too large"):
            open_image(path, max_pixels=150)
    assert Image.MAX_IMAGE_PIXELS == 100  # restored after being lifted
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # now PIL would merely warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_image(path).size == (16, 16)


# ---- tensors ----------------------------------------------------------------------------------


def test_image_tensor_round_trip_is_exact():
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (9, 13, 4), dtype=np.uint8)
    data[0, 0, 3] = 0  # some real transparency
    rgb, alpha = image_to_tensor(Image.fromarray(data, "RGBA"))
    assert rgb.shape == (1, 3, 9, 13) and rgb.dtype == torch.float32
    assert alpha.shape == (1, 1, 9, 13)
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    back = tensor_to_image(rgb, alpha)
    assert back.mode == "RGBA"
    assert np.array_equal(np.asarray(back), data)
    assert np.array_equal(np.asarray(tensor_to_image(rgb[0])), data[:, :, :3])


def test_image_to_tensor_without_transparency_has_no_alpha():
    rgb, alpha = image_to_tensor(Image.new("RGBA", (4, 4), (1, 2, 3, 255)))
    assert alpha is None and rgb.shape == (1, 3, 4, 4)
    rgb, alpha = image_to_tensor(Image.new("L", (4, 4), 51))
    assert alpha is None and torch.allclose(rgb, torch.full((1, 3, 4, 4), 0.2))


def test_tensor_to_image_clamps_and_rounds():
    t = torch.tensor([-0.5, 0.5 / 255 + 1e-4, 2.0, float("nan")]).reshape(1, 1, 1, 4).expand(1, 3, 1, 4)
    im = tensor_to_image(t)
    assert [im.getpixel((x, 0))[0] for x in range(4)] == [0, 1, 255, 0]
    with pytest.raises(ValueError):
        tensor_to_image(torch.zeros(2, 3, 4, 4))


# ---- resize and load_image --------------------------------------------------------------------


def test_fit_long_side():
    assert fit_long_side(300, 451, 512) == (341, 512)
    assert fit_long_side(1000, 10, 100) == (100, 1)
    assert fit_long_side(1, 5000, 10) == (1, 10)
    with pytest.raises(BrushworkError):
        fit_long_side(10, 10, 0)


def test_resize_any_channels_and_antialias():
    # A 1-pixel checkerboard averages to grey when shrunk with antialiasing; plain bilinear
    # sampling would pick out single pixels and keep the extremes.
    board = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2
    x = board.float().expand(2, 5, 64, 64)
    small = resize(x, (8, 16))
    assert small.shape == (2, 5, 8, 16)
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.02)
    assert resize(x, (64, 64)) is x
    assert resize_long_side(torch.zeros(1, 1, 30, 60), 20).shape == (1, 1, 10, 20)
    assert resize(torch.zeros(3, 4, 4), (8, 8)).shape == (3, 8, 8)


def test_painting_views_see_the_whole_painting_as_squares():
    # A wide painting: its left, middle and right thirds in three colours.
    wide = torch.zeros(1, 3, 40, 120)
    for i in range(3):
        wide[:, i, :, 40 * i:40 * (i + 1)] = 1.0
    views = painting_views(wide, 16)
    assert views.shape == (4, 3, 16, 16)
    # The whole painting squashed (every colour), then the start, middle and end squares (one colour each).
    assert torch.allclose(views[0].mean((1, 2)), torch.full((3,), 1 / 3), atol=0.02)
    for view, channel in zip(views[1:], range(3)):
        assert torch.allclose(view[channel], torch.ones(16, 16)) and view.sum() == view[channel].sum()
    tall = painting_views(wide.transpose(-1, -2), 16)  # the long side may be the height
    assert torch.allclose(tall[1:], views[1:].transpose(-1, -2), atol=1e-5)
    square = painting_views(torch.rand(1, 3, 30, 30), 16)
    assert square.shape == (1, 3, 16, 16)  # one view: the others would be the same


def test_load_image_shrinks_rgb_and_alpha_together(tmp_path):
    im = Image.new("RGBA", (64, 32), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (32, 0, 64, 32))
    path = _saved(tmp_path, im, "a.png")
    rgb, alpha = load_image(path, max_side=16)
    assert rgb.shape == (1, 3, 8, 16) and alpha.shape == (1, 1, 8, 16)
    assert alpha[0, 0, 4, 2] == 1.0 and alpha[0, 0, 4, 14] == 0.0
    rgb, alpha = load_image(path, max_side=1000)  # never enlarged
    assert rgb.shape == (1, 3, 32, 64)
    rgb, alpha = load_image(path)
    assert rgb.shape == (1, 3, 32, 64)


# ---- saving -----------------------------------------------------------------------------------


def _noise_tensor(h=16, w=24, seed=2):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (1, 3, h, w), generator=g).float() / 255.0)


@pytest.mark.parametrize("ext, lossless", [("png", True), ("bmp", True), ("tif", True), ("tiff", True),
                                           ("jpg", False), ("jpeg", False), ("webp", False)])
def test_save_round_trip(tmp_path, ext, lossless):
    t = _noise_tensor() if lossless else torch.linspace(0, 1, 24).expand(1, 3, 16, 24).contiguous()
    path = save_image(t, tmp_path / f"out.{ext}")
    assert path == tmp_path / f"out.{ext}"
    back, alpha = load_image(path)
    assert alpha is None and back.shape == t.shape
    if lossless:
        assert torch.equal(back, t)
    else:
        assert (back - t).abs().mean() < 0.03
    assert [p.name for p in tmp_path.iterdir()] == [f"out.{ext}"]


def test_save_keeps_alpha_in_png_and_drops_it_for_jpeg(tmp_path):
    rgb = torch.zeros(1, 3, 8, 8)
    alpha = torch.ones(1, 1, 8, 8)
    alpha[..., :4] = 0.0
    png, _ = load_image(save_image(rgb, tmp_path / "a.png", alpha=alpha))
    _, png_alpha = load_image(tmp_path / "a.png")
    assert torch.equal(png_alpha, alpha)
    jpg = open_image(save_image(rgb, tmp_path / "a.jpg", alpha=alpha))
    assert jpg.mode == "RGB"
    assert _close(jpg.getpixel((1, 4)), (255, 255, 255), 6)  # transparent -> white
    assert _close(jpg.getpixel((6, 4)), (0, 0, 0), 6)
    bmp = open_image(save_image(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), tmp_path / "a.bmp"))
    assert bmp.mode == "RGB" and bmp.getpixel((0, 0)) == (255, 255, 255)


def test_save_pil_images_of_any_mode(tmp_path):
    save_image(Image.new("L", (4, 4), 9), tmp_path / "a.png")
    assert open_image(tmp_path / "a.png").getpixel((0, 0)) == (9, 9, 9)
    save_image(Image.new("I;16", (4, 4), 257 * 9), tmp_path / "b.jpg")
    assert _close(open_image(tmp_path / "b.jpg").getpixel((0, 0)), (9, 9, 9), 2)


def test_save_unknown_extension_does_nothing(tmp_path):
    target = tmp_path / "new" / "out.gif"
    with pytest.raises(BrushworkError) as err:
        save_image(_noise_tensor(), target)
    assert "unknown format" in _one_line(err) and ".png" in str(err.value)
    with pytest.raises(BrushworkError, match="no extension"):
        save_image(_noise_tensor(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_save_creates_parent_directories_with_normal_permissions(tmp_path):
    path = save_image(_noise_tensor(), tmp_path / "a" / "b" / "out.png")
    assert path.is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def _existing(tmp_path):
    path = tmp_path / "out.png"
    Image.new("RGB", (4, 4), RED).save(path)
    return path, path.read_bytes()


def test_failed_save_leaves_existing_file_and_no_temp_files(tmp_path, monkeypatch):
    path, before = _existing(tmp_path)
    real_save = Image.Image.save

    def disk_full(self, fp, *args, **kwargs):
        real_save(self, io.BytesIO(), *args, **kwargs)
        fp.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(BrushworkError) as err:
        save_image(_noise_tensor(), path)
    assert _one_line(err) == f"cannot save image '{path}': no space left on device"
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failed_rename_leaves_existing_file_and_no_temp_files(tmp_path, monkeypatch):
    path, before = _existing(tmp_path)

    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(bio.os, "replace", denied)
    with pytest.raises(BrushworkError, match="permission denied"):
        save_image(_noise_tensor(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_save_errors_for_bad_targets(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(BrushworkError, match="is a directory"):
        save_image(_noise_tensor(), tmp_path / "dir.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BrushworkError) as err:
        save_image(_noise_tensor(), tmp_path / "file" / "out.png")
    assert _one_line(err).startswith(f"cannot save image '{tmp_path / 'file' / 'out.png'}'")


def test_save_overwrites_existing_file(tmp_path):
    path, before = _existing(tmp_path)
    save_image(torch.zeros(3, 4, 4), path)
    assert path.read_bytes() != before
    assert open_image(path).getpixel((0, 0)) == (0, 0, 0)
    assert isinstance(path, Path)

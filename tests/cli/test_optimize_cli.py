"""`brushwork optimize` end to end, and every kind of bad input the issue lists."""

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from brushwork.cli.main import main

FAST = ["--size", "48", "--steps", "2", "--scales", "1", "--quiet", "--device", "cpu"]


def run_cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def one_line_error(err: str) -> bool:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return len(lines) == 1 and "error" in lines[0] and "Traceback" not in err


def test_end_to_end_subprocess(tmp_path, content_path, style_path):
    out = tmp_path / "out.png"
    proc = subprocess.run(
        [sys.executable, "-m", "brushwork.cli", "optimize", str(content_path), str(style_path), "-o", str(out),
         "--size", "64", "--steps", "3", "--scales", "2", "--save-every", "4"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    img = Image.open(out)
    assert img.size == (64, 48) and img.mode == "RGB"
    # --save-every 4 over 3*2 + 3 = 9 steps: intermediate images at steps 4 and 8
    assert sorted(p.name for p in tmp_path.glob("out.step*.png")) == ["out.step00004.png", "out.step00008.png"]
    assert "Traceback" not in proc.stderr


def test_preset_style_and_options(tmp_path, capsys, content_path, style_path, style2_path):
    out = tmp_path / "o.jpg"
    code, err = run_cli(capsys, "optimize", content_path, "starry-night", style2_path, "-o", out, *FAST,
                        "--style-blend", "0.7,0.3", "--preserve-color", "luminance", "--style-layers",
                        "relu1_1,relu2_1:0.5", "--content-layers", "relu3_1", "--tv-weight", "1", "--optimizer", "adam")
    assert code == 0, err
    assert Image.open(out).format == "JPEG"


def test_style_as_a_flag_as_stylize_takes_it(tmp_path, capsys, content_path, style_path, style2_path):
    """`--style` (the spelling of stylize and video) works here too, alone or after positional styles; it used
    to fail as an ambiguous abbreviation of --style-weight, --style-layers, ..."""
    out = tmp_path / "o.png"
    code, err = run_cli(capsys, "optimize", content_path, "--style", style_path, "-o", out, *FAST)
    assert code == 0, err
    assert Image.open(out).size == (48, 36)
    # Two styles need two blend weights: the flag's style is counted with the positional one.
    code, err = run_cli(capsys, "optimize", content_path, style_path, "--style", style2_path, "-o", out, *FAST,
                        "--style-blend", "0.5,0.5")
    assert code == 0, err
    code, err = run_cli(capsys, "optimize", content_path, style_path, "--style", style2_path, "-o", out, *FAST,
                        "--style-blend", "1")
    assert code == 1 and "1 blend weights given for 2 style images" in err, err
    code, err = run_cli(capsys, "optimize", content_path, "-o", tmp_path / "none.png", *FAST)
    assert code == 1 and one_line_error(err) and "give a style" in err, err
    assert not (tmp_path / "none.png").exists()


def test_alpha_is_kept(tmp_path, capsys, style_path):
    rgba = np.zeros((32, 48, 4), np.uint8)
    rgba[..., :3] = 120
    rgba[..., 3] = 255
    rgba[:8, :8, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    code, err = run_cli(capsys, "optimize", tmp_path / "a.png", style_path, "-o", tmp_path / "o.png", *FAST)
    assert code == 0, err
    out = Image.open(tmp_path / "o.png")
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0 and out.getpixel((40, 30))[3] == 255


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "L", "LA", "1"])
def test_odd_modes_are_converted(tmp_path, capsys, style_path, mode):
    src = Image.fromarray((np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8))
    if mode == "I;16":
        img = Image.fromarray((np.random.default_rng(0).random((24, 32)) * 65535).astype(np.uint16))
    else:
        img = src.convert(mode)
    ext = "tif" if mode == "CMYK" else "png"
    img.save(tmp_path / f"in.{ext}")
    code, err = run_cli(capsys, "optimize", tmp_path / f"in.{ext}", style_path, "-o", tmp_path / "o.png", *FAST)
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == (48, 36)


def test_exif_orientation_is_honoured(tmp_path, capsys, style_path):
    img = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    code, err = run_cli(capsys, "optimize", tmp_path / "rot.jpg", style_path, "-o", tmp_path / "o.png", *FAST)
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == (24, 48)  # portrait, as displayed


def _huge_png(path, width, height):
    """A valid small PNG whose header claims width x height (a decompression-bomb shape)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _truncated_jpeg(path):
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "make_content, message",
    [
        (lambda p: None, "not found|no such file|does not exist"),
        (lambda p: p.write_text("hello, not an image"), "not an image|cannot identify|unrecognized|not a recognized"),
        (_truncated_jpeg, "truncated|corrupt|broken"),
        (lambda p: _huge_png(p, 200_000, 200_000), "pixels|too large|limit"),
        (lambda p: p.write_bytes(b""), "empty|not an image|cannot identify|not a recognized"),
    ],
)
def test_bad_content_files(tmp_path, capsys, style_path, make_content, message):
    import re

    bad = tmp_path / "bad.jpg"
    make_content(bad)
    out = tmp_path / "o.png"
    out.write_bytes(b"precious")
    code, err = run_cli(capsys, "optimize", bad, style_path, "-o", out, *FAST)
    assert code != 0
    assert one_line_error(err), err
    assert re.search(message, err, re.I), err
    assert out.read_bytes() == b"precious"  # an existing output is never clobbered by a failed run


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--size", "0"], "size must be"),
        (["--steps", "-3"], "steps"),
        (["--size", "32", "--scales", "4"], "fewer scales"),
        (["--optimizer", "sgd"], "invalid choice"),
        (["--style-weight", "-1"], "style weight"),
        (["--style-layers", "relu9_9"], "unknown VGG-19 layer"),
        (["--style-blend", "1,2,3"], "3 blend weights"),
        (["--style-layers", "relu1_1:abc"], "bad layer weight"),
        (["--steps", "many"], "invalid int"),
        (["--init", "/nonexistent/init.png"], "not found|no such file|does not exist"),
        (["--device", "cuda:7"], "no CUDA|cuda"),
        (["--save-every", "-1"], "save-every"),
    ],
)
def test_bad_options(tmp_path, capsys, content_path, style_path, flags, message):
    import re

    args = ["optimize", content_path, style_path, "-o", tmp_path / "o.png", *FAST, *flags]
    code, err = run_cli(capsys, *args)
    assert code not in (0, None)
    assert one_line_error(err), err
    assert re.search(message, err, re.I), err
    assert not (tmp_path / "o.png").exists()


def test_bad_output_and_style(tmp_path, capsys, content_path, style_path):
    code, err = run_cli(capsys, "optimize", content_path, style_path, "-o", tmp_path / "o.xyz", *FAST)
    assert code == 1 and "unknown image format" in err and one_line_error(err)
    code, err = run_cli(capsys, "optimize", content_path, "starry-nite", "-o", tmp_path / "o.png", *FAST)
    assert code == 1 and "starry-night" in err and one_line_error(err)
    code, err = run_cli(capsys, "optimize", content_path, style_path, "-o", tmp_path, *FAST)
    assert code == 1 and "directory" in err


def test_debug_shows_traceback(tmp_path, content_path, style_path):
    proc = subprocess.run(
        [sys.executable, "-m", "brushwork.cli", "optimize", str(content_path), str(tmp_path / "missing.png"),
         "-o", str(tmp_path / "o.png"), "--debug"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr

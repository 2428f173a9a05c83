"""`brushwork stylize --method adain|wct` end to end with tiny random decoders, and its errors."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.cli.main import main
from brushwork.models.registry import save_model
from brushwork.nets.decoder import DECODER_LAYERS, Decoder, DecoderConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def adain_file(tmp_path):
    torch.manual_seed(0)
    d = Decoder(DecoderConfig("relu4_1", width=0.1))
    return save_model(tmp_path / "tiny-adain.safetensors", "adain", d.state_dict(), d.config.to_dict(),
                      {"name": "tiny-adain"})


@pytest.fixture
def wct_file(tmp_path):
    torch.manual_seed(0)
    state = {}
    for layer in DECODER_LAYERS:
        state.update({f"{layer}.{k}": v for k, v in Decoder(DecoderConfig(layer, width=0.1)).state_dict().items()})
    return save_model(tmp_path / "tiny-wct.safetensors", "wct", state, {"layers": list(DECODER_LAYERS), "width": 0.1},
                      {"name": "tiny-wct"})


def run_cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    return code, capsys.readouterr().err


def one_line_error(err: str) -> bool:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return len(lines) == 1 and "error" in lines[0] and "Traceback" not in err


def test_adain_two_styles_with_weights_and_a_mask(tmp_path, capsys, adain_file, content_path, style_path, style2_path):
    mask = tmp_path / "mask.png"
    grey = np.zeros((48, 64), np.uint8)
    grey[:, 32:] = 255
    Image.fromarray(grey).save(mask)
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "stylize", content_path, "--style", style_path, "--style", style2_path,
                        "--method", "adain", "--decoder", adain_file, "--mask", mask, "--style-size", 64,
                        "--preserve-color", "luminance", "-o", out, "--quiet")
    assert code == 0, err
    assert Image.open(out).size == (64, 48)
    blended = tmp_path / "blend.png"
    code, err = run_cli(capsys, "stylize", content_path, "--style", style_path, "--style", style2_path,
                        "--style-blend", "0.3,0.7", "--alpha", "0.6", "--decoder", adain_file, "--style-size", 64,
                        "-o", blended)
    assert code == 0, err  # --method auto: a style image and a decoder -> AdaIN
    assert "tiny-adain" in err


def test_wct_end_to_end(tmp_path, capsys, wct_file, content_path, style_path):
    out = tmp_path / "out.jpg"
    code, err = run_cli(capsys, "stylize", content_path, "--style", style_path, "--method", "wct", "--decoder",
                        wct_file, "--alpha", "0.5", "--refine-steps", 1, "--size", 40, "--style-size", 48, "-o", out,
                        "--quiet")
    assert code == 0, err
    assert Image.open(out).size == (40, 30)


@pytest.mark.parametrize("extra, message", [
    (["--method", "adain", "--alpha", "1.5"], "alpha must be between 0 and 1"),
    (["--method", "adain", "--alpha", "-0.1"], "alpha must be between 0 and 1"),
    (["--method", "wct", "--decoder", "missing.safetensors"], "model file not found"),
    (["--method", "adain", "--style-blend", "1,2"], "2 style blend weights given for 1 styles"),
    (["--method", "feedforward", "--alpha", "0.5"], "--alpha is for --method adain or wct"),
    (["--method", "feedforward", "--refine-steps", "3"], "--refine-steps is for --method adain or wct"),
    (["--method", "adain", "--refine-steps", "-1"], "refine steps must be a whole number from 0 to 1000"),
])
def test_bad_options_give_one_line_errors(tmp_path, capsys, adain_file, content_path, style_path, extra, message):
    args = ["stylize", content_path, "--style", style_path, "-o", tmp_path / "x.png"]
    if "--decoder" not in extra and "feedforward" not in extra:
        args += ["--decoder", adain_file]
    code, err = run_cli(capsys, *args, *extra)
    assert code != 0 and one_line_error(err), err
    assert message in err
    assert not (tmp_path / "x.png").exists()


def test_auto_without_a_decoder_or_model_is_a_clear_error(tmp_path, capsys, content_path, style_path, monkeypatch):
    from brushwork.methods import dispatch

    for name in ("adain", "predict"):  # as if neither had a model installed
        never = dataclasses.replace(dispatch.METHODS[name], auto=lambda options: False)
        monkeypatch.setitem(dispatch.METHODS, name, never)
    code, err = run_cli(capsys, "stylize", content_path, "--style", style_path, "-o", tmp_path / "x.png")
    assert code != 0 and one_line_error(err), err
    assert "no trained feed-forward model, and neither an arbitrary-style model" in err and "AdaIN decoder" in err
    code, err = run_cli(capsys, "stylize", content_path, "--style", style_path, "--method", "nope", "-o",
                        tmp_path / "x.png")
    assert code != 0 and "invalid choice" in err

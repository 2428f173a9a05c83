"""`brushwork train --kind multi`, `stylize --model/--method predict`, `embed-style` and `models`, end to end."""

import json

import numpy as np
import pytest
from PIL import Image

from brushwork.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_train_multi_then_stylize_each_style_and_a_blend(tmp_path, photos, capsys):
    model = tmp_path / "multi.safetensors"
    code = main(["train", "--kind", "multi", "--styles", "starry-night,udnie", "--data", str(photos), "-o", str(model),
                 "--steps", "2", "--image-size", "32", "--batch-size", "2", "--width", "8", "--num-residual", "1",
                 "--style-size", "48", "--preview-every", "0", "--checkpoint-every", "0", "--device", "cpu",
                 "--threads", "1", "-q"])
    assert code == 0, capsys.readouterr().err
    photo = next(photos.iterdir())
    for style in ("udnie", "starry-night:0.4,udnie:0.6"):
        out = tmp_path / f"{style.replace(':', '_').replace(',', '+')}.png"
        assert main(["stylize", str(photo), "--model", str(model), "--style", style, "-o", str(out), "-q"]) == 0
        assert Image.open(out).size == (48, 40)


def test_stylize_bad_multi_styles_exit_1_with_one_line(tmp_path, capsys, save_tiny_multi):
    model = save_tiny_multi(tmp_path / "multi.safetensors")
    photo = tmp_path / "in.png"
    Image.new("RGB", (40, 32), (120, 80, 40)).save(photo)
    base = ["stylize", str(photo), "--model", str(model), "-o", str(tmp_path / "out.png"), "--style"]
    for style, message in [("picasso", "has no style 'picasso'"), ("udnie:0.5,great-wave:", "must be a number"),
                           ("udnie:0,great-wave:1", "must be positive"), ("udnie:-2", "must be positive")]:
        assert main([*base, style]) == 1
        assert message in _error(capsys)
    assert not (tmp_path / "out.png").exists()


def test_embed_style_then_stylize_with_the_file(tmp_path, capsys, save_tiny_arbitrary):
    model = save_tiny_arbitrary(tmp_path / "arb.safetensors")
    photo = tmp_path / "in.png"
    Image.new("RGB", (40, 32), (60, 140, 200)).save(photo)
    for suffix in (".npy", ".json"):
        emb = tmp_path / f"style{suffix}"
        assert main(["embed-style", "great-wave", "--model", str(model), "-o", str(emb), "-q"]) == 0
        out = tmp_path / f"out{suffix}.png"
        assert main(["stylize", str(photo), "--method", "predict", "--model", str(model), "--style", str(emb),
                     "--strength", "0.5", "-o", str(out), "-q"]) == 0
        assert Image.open(out).size == (40, 32)
    assert len(json.loads((tmp_path / "style.json").read_text())) == 8
    # --method auto picks predict for an arbitrary-style --model.
    assert main(["stylize", str(photo), "--model", str(model), "--style", "udnie:1,great-wave:1",
                 "-o", str(tmp_path / "auto.png"), "-q"]) == 0
    assert main(["embed-style", "great-wave", "--model", str(model), "-o", str(tmp_path / "e.txt")]) == 1
    assert "end in .npy or .json" in _error(capsys)
    assert main(["stylize", str(photo), "--method", "predict", "--model", str(model), "--style",
                 str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "x.png")]) == 1
    assert "missing.jpg" in _error(capsys)


def test_models_lists_a_multi_models_styles(tmp_path, monkeypatch, capsys, save_tiny_multi, save_tiny_arbitrary):
    save_tiny_multi(tmp_path / "paintings.safetensors")
    save_tiny_arbitrary(tmp_path / "arbitrary.safetensors")
    import brushwork.models.registry as registry

    monkeypatch.setenv("BRUSHWORK_MODELS_DIR", str(tmp_path))
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "3 styles: starry-night, great-wave, udnie" in text and "any style image" in text
    assert main(["models", "--json"]) == 0
    rows = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert rows["paintings"]["styles"] == ["starry-night", "great-wave", "udnie"]
    assert registry.find_model("paintings").styles == ["starry-night", "great-wave", "udnie"]


def test_models_counts_the_steps_of_every_stage(tmp_path, monkeypatch, capsys, save_tiny_multi):
    import brushwork.models.registry as registry

    model = registry.read_model(save_tiny_multi(tmp_path / "one.safetensors"))
    card = {"name": "continued", "steps": 30, "recipe": "stage-2", "init": {"name": "one", "steps": 200}}
    registry.save_model(tmp_path / "continued.safetensors", "multi", model.tensors, model.config, card)
    monkeypatch.setenv("BRUSHWORK_MODELS_DIR", str(tmp_path))
    assert main(["models"]) == 0
    assert "230 (30 last)" in capsys.readouterr().out
    assert main(["models", "--json"]) == 0
    rows = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert (rows["continued"]["steps"], rows["continued"]["trained_steps"]) == (30, 230)
    assert rows["one"]["trained_steps"] is None  # its card records no steps

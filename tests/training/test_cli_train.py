"""`brushwork train` and `brushwork models` from the command line."""

import json

from brushwork.cli.main import main
from brushwork.models.registry import read_model


def _flags(tiny):
    out = []
    for k, v in tiny.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def test_train_end_to_end_writes_a_model_with_a_card(tmp_path, photos, tiny, capsys):
    out = tmp_path / "models" / "tiny.safetensors"
    code = main(["train", "--data", str(photos), "-o", str(out), "--steps", "2", "--name", "tiny-test",
                 "--run-dir", str(tmp_path / "run"), *_flags(tiny)])
    assert code == 0, capsys.readouterr().err
    model = read_model(out)
    assert model.kind == "feedforward"
    assert model.card["name"] == "tiny-test" and model.card["steps"] == 2
    assert model.card["style"]["title"] == "The Starry Night"
    assert (tmp_path / "run" / "log.jsonl").is_file() and (tmp_path / "run" / "card.json").is_file()
    assert "wrote" in capsys.readouterr().err


def test_train_bad_options_exit_1_with_one_line(tmp_path, photos, tiny, capsys):
    code = main(["train", "--data", str(photos), "-o", str(tmp_path / "m.safetensors"), "--kind", "watercolour",
                 *_flags({**tiny, "style": "starry-night"})])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("brushwork: error: unknown kind 'watercolour'") and "feedforward" in err
    assert len(err.splitlines()) == 1

    code = main(["train", "--style", "starry-night", "--data", str(tmp_path / "missing"),
                 "-o", str(tmp_path / "m.safetensors")])
    assert code == 1
    assert "training data folder not found" in capsys.readouterr().err


def test_models_lists_presets_as_table_and_json(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "Style presets" in text and "starry-night" in text and "Vincent van Gogh" in text
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"models", "styles"} <= set(data)
    assert any(s["name"] == "great-wave" and s["artist"] == "Katsushika Hokusai" for s in data["styles"])
    for m in data["models"]:
        assert {"name", "kind", "style", "steps", "image_size", "recipe"} <= set(m)

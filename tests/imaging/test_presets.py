import json
from pathlib import Path

import pytest
from PIL import Image

import brushwork.presets as presets_module
from brushwork.errors import BrushworkError
from brushwork.presets import StylePreset, list_style_presets, resolve_style

ASSETS = Path(presets_module.__file__).parent / "assets"

EXPECTED = {
    "starry-night", "great-wave", "the-scream", "composition-vii", "udnie", "woman-with-a-hat",
    "mondrian-composition", "charing-cross-bridge", "san-giorgio-maggiore", "water-lilies",
    "degas-dance-foyer", "renoir-landscape", "in-bed", "shipwreck-of-the-minotaur", "van-doesburg",
    "bedroom-in-arles", "van-gogh-self-portrait", "starry-night-over-the-rhone",
}


def test_presets_list_every_shipped_style():
    presets = list_style_presets()
    assert {p.name for p in presets} == EXPECTED
    assert [p.name for p in presets] == sorted(p.name for p in presets)
    for p in presets:
        assert isinstance(p, StylePreset) and p.artist and p.title
        assert p.path.suffix == ".jpg" and p.path.stem == p.name
        with Image.open(p.path) as im:  # header only: cheap
            assert im.format == "JPEG" and im.mode == "RGB"
            assert max(im.size) <= 1024
    starry = next(p for p in presets if p.name == "starry-night")
    assert (starry.artist, starry.title, starry.year) == ("Vincent van Gogh", "The Starry Night", "1889")
    with pytest.raises(AttributeError):
        starry.name = "x"  # frozen


def test_styles_json_matches_the_files():
    entries = json.loads((ASSETS / "styles" / "styles.json").read_text())
    assert {e["file"] for e in entries} == {f"{name}.jpg" for name in EXPECTED}
    shipped = {p.name for p in (ASSETS / "styles").glob("*.jpg")}
    assert shipped == {e["file"] for e in entries}


def test_resolve_preset_names():
    path = resolve_style("starry-night")
    assert path.name == "starry-night.jpg" and path.is_file()
    assert resolve_style("Starry_Night") == path
    assert resolve_style("  STARRY NIGHT ") == path
    assert resolve_style("starry-night-over-the-rhone").name == "starry-night-over-the-rhone.jpg"


def test_an_existing_file_wins_over_a_preset(tmp_path, monkeypatch):
    own = tmp_path / "mine.png"
    Image.new("RGB", (8, 8)).save(own)
    assert resolve_style(own) == own
    assert resolve_style(str(own)) == own
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "udnie", format="PNG")
    assert resolve_style("udnie") == Path("udnie")


def test_unknown_style_suggests_close_names(tmp_path):
    with pytest.raises(BrushworkError) as err:
        resolve_style("stary-nigth")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("unknown style 'stary-nigth': not a file and not a preset (see `brushwork models`)")
    assert "starry-night" in message
    with pytest.raises(BrushworkError, match="unknown style"):
        resolve_style(tmp_path / "missing.jpg")
    with pytest.raises(BrushworkError, match="unknown style"):
        resolve_style(tmp_path)  # a directory is not a style image


def test_example_images_are_shipped_with_credits():
    examples = ASSETS / "examples"
    names = {p.name for p in examples.glob("*.jpg")}
    assert {"astronaut.jpg", "rocket.jpg", "hubble-deep-field.jpg", "chelsea.jpg", "coffee.jpg"} <= names
    for name in names:
        with Image.open(examples / name) as im:
            assert max(im.size) <= 512
    credits = (examples / "CREDITS.md").read_text()
    assert all(name in credits for name in names)

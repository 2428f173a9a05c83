import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_photos(folder, count=6, seed=0):
    """Small synthetic 'photos': smooth colour gradients with noise and a few blocks, various sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = 40 + 4 * (i % 3), 48 + 8 * (i % 2)
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        base = np.stack([x, y, 1 - x * y], -1) * rng.uniform(0.4, 1.0, 3)
        img = base + 0.15 * rng.standard_normal((h, w, 3))
        for _ in range(3):
            y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
            img[y0 : y0 + 8, x0 : x0 + 8] = rng.uniform(0, 1, 3)
        arr = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        sub = folder / ("sub" if i % 2 else ".")
        sub.mkdir(exist_ok=True)
        Image.fromarray(arr).save(sub / f"photo{i}.{'png' if i % 3 == 0 else 'jpg'}")
    return folder


@pytest.fixture
def photos(tmp_path):
    return make_photos(tmp_path / "photos")


@pytest.fixture(scope="session")
def vgg():
    from brushwork.features import load_vgg19

    return load_vgg19()


@pytest.fixture
def tiny():
    """Tiny settings every training test shares: 32 px crops, a width-8 network with one residual block."""
    return dict(
        kind="feedforward",  # a network of its own from noise (the default kind adapts Magenta's)
        image_size=32,
        batch_size=2,
        width=8,
        num_residual=1,
        style_size=48,
        style="starry-night",
        learning_rate=1e-2,
        preview_every=0,
        log_every=1,
        checkpoint_every=0,
        device="cpu",
        precision="fp32",
        threads=1,  # also much faster than 2 when the cores are shared
    )


def _recipe_script(name):
    """recipes/NAME.py as a module (a script, not part of the package)."""
    path = Path(__file__).resolve().parents[2] / "recipes" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.fixture(scope="session")
def model_from_checkpoint():
    return _recipe_script("model_from_checkpoint")


@pytest.fixture(scope="session")
def average_models():
    return _recipe_script("average_models")

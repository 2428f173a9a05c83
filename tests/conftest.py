import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny-tensor tests: faster, and on a shared, loaded CPU an
    OpenMP team waiting for a descheduled thread costs milliseconds per op."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="session")
def vgg():
    from brushwork.features import load_vgg19

    return load_vgg19()


def _smooth_image(seed: int, size=(48, 64)) -> np.ndarray:
    """A photo-like test image: smooth colour gradients plus a few shapes (not pure noise)."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(3 * x + seed), np.cos(2 * y + seed), np.sin(4 * (x + y))], -1) * 0.4 + 0.5
    for _ in range(4):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(4, 12)
        img[(np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2 < r * r] = rng.random(3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _stripes(size=(48, 64)) -> np.ndarray:
    """A style-like image: saturated diagonal stripes."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    band = ((x + y) // 4) % 3
    palette = np.array([[230, 60, 30], [30, 80, 220], [250, 220, 40]], dtype=np.uint8)
    return palette[band]


@pytest.fixture
def content_path(tmp_path):
    p = tmp_path / "content.png"
    Image.fromarray(_smooth_image(1)).save(p)
    return p


@pytest.fixture
def style_path(tmp_path):
    p = tmp_path / "style.png"
    Image.fromarray(_stripes()).save(p)
    return p


@pytest.fixture
def style2_path(tmp_path):
    p = tmp_path / "style2.png"
    Image.fromarray(_smooth_image(7)).save(p)
    return p

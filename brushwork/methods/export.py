"""The feed-forward network as it is deployed: an inference rewrite in PyTorch, ONNX and TorchScript.

`InferenceNet` computes exactly what `brushwork.nets.transformer.StyleTransferNet` computes (up to
float rounding; checked in tests) with exact rewrites that make it faster on the CPU:

* the style's norm parameters are baked in, and each norm's scale and shift are folded into the
  instance-norm call itself (one fused pass instead of norm, multiply, add);
* the last layer (a 9x9 convolution with only 3 output channels, which CPU convolution kernels run
  at a fraction of their speed: a quarter of the whole network's time in onnxruntime) is computed
  in space-to-depth form: the image is folded 4x4 into channels, the 9x9 kernel becomes a 3x3
  kernel with 16 x C inputs and 16 x 3 outputs, and the result is unfolded (`folded_conv_weight`).
  More multiply-adds, but in a shape the kernels run at full speed; the sum is the same;
* the two upsampling layers (nearest 2x, then a 3x3 convolution) run at the low resolution as one
  2x2 convolution per output phase (`_UpConv`): 4/9 of the multiply-adds and no upsampled copy;
* any image size works: the input is reflection-padded to a multiple of 4 and the output cropped,
  instead of the plain network's bilinear resize for sizes that are not multiples of 4 (so for
  those sizes the output differs slightly from the plain network's, and is sharper).

It can also freeze the instance-norm statistics (`norm_affine` then `forward(x, affine)`), which is
what tiling needs: see `brushwork.methods.feedforward`.

`build_onnx` writes the same graph node by node with the `onnx` helper (no dependency on
torch's ONNX exporter, whose TorchScript-based form is deprecated and whose new form needs
onnxscript): dynamic batch, height and width, opset 17. `export_onnx` / `export_torchscript` write
files; `OnnxRunner` runs a model in onnxruntime on the CPU.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from brushwork.errors import BrushworkError
from brushwork.files import atomic_write, write_file_atomically
from brushwork.models.registry import ModelFile, build_for_model, find_model
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

FEEDFORWARD_KINDS = ("feedforward", "multi")  # multi: conditional instance norm, one row per style
EXPORT_FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
NORM_EPS = 1e-5  # F.instance_norm's default, which StyleTransferNet uses
ALIGN = 4  # two stride-2 convolutions: sizes must be multiples of 4
OUT_FOLD = 4  # space-to-depth factor of the last convolution


# --------------------------------------------------------------------------------------------
# Loading a feed-forward network


def load_network(model: str | os.PathLike | ModelFile | StyleTransferNet) -> StyleTransferNet:
    """A `StyleTransferNet` (eval mode, on the CPU) from a model name, path or `ModelFile`; a network
    passed in is returned as it is (a caller's network may still be training)."""
    if isinstance(model, StyleTransferNet):
        return model
    if not isinstance(model, ModelFile):
        model = find_model(model)
    if model.kind not in FEEDFORWARD_KINDS:
        raise BrushworkError(
            f"model {model.name!r} is a {model.kind!r} model, not a feed-forward style network "
            f"(expected kind {' or '.join(FEEDFORWARD_KINDS)})"
        )
    try:
        config = TransformerConfig.from_dict(model.config)
    except (TypeError, ValueError, KeyError) as exc:
        where = str(model.path) if model.path else model.name
        raise BrushworkError(f"model {where!r} has an invalid network config ({exc})") from None
    if model.config.get("base") is not None:
        net = StyleTransferNet(config)
        _load_onto_base(net, model)
    else:
        net = build_for_model(lambda: StyleTransferNet(config), model)
    for name, t in net.state_dict().items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            where = str(model.path) if model.path else model.name
            raise BrushworkError(f"model {where!r} is corrupt: {name} holds NaN or infinite values")
    return net.eval()


def _load_onto_base(net: StyleTransferNet, model: ModelFile) -> None:
    """A model that holds only norm parameters (`brushwork train --kind adapt`): its base network's weights,
    then the model's own norm parameters; a base it does not fit is one line."""
    where = str(model.path) if model.path else model.name
    base_name = str(model.config["base"])
    base = find_model(base_name)
    prefix = "net." if base.kind == "arbitrary" else ""
    base_state = {k[len(prefix):]: v for k, v in base.tensors.items() if k.startswith(prefix) and
                  not k.startswith("predictor.")}
    own = net.state_dict()
    if set(base_state) != set(own) or set(model.tensors) - set(own):
        extra = sorted(set(model.tensors) - set(own)) or sorted(set(base_state) ^ set(own))
        raise BrushworkError(f"model {where!r} does not fit its base network {base_name!r}: {extra[0]!r}")
    for k, v in model.tensors.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise BrushworkError(f"model {where!r} does not fit its base network {base_name!r}: {k} has shape "
                                 f"{tuple(v.shape)}, expected {tuple(own[k].shape)}")
    net.load_state_dict({**{k: v.to(own[k].dtype) for k, v in base_state.items()},
                         **{k: v.to(own[k].dtype) for k, v in model.tensors.items()}})


def style_norm_params(net: StyleTransferNet,
                      style_blend: Sequence[float] | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per norm layer (in forward order), the (scale, shift) vectors of one style or a blend of styles."""
    s = net.config.num_styles
    if style_blend is None:
        weights = torch.zeros(s)
        weights[0] = 1.0
    else:
        weights = torch.as_tensor([float(w) for w in style_blend], dtype=torch.float32)
        if weights.numel() != s:
            raise BrushworkError(f"{weights.numel()} style blend weights given for a model with {s} style(s)")
        if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise BrushworkError("style blend weights must be zero or more and not all zero")
        weights = weights / weights.sum()
    out = []
    with torch.no_grad():
        for layer in net.norm_layers():
            out.append(((weights @ layer.scale.float()).clone(), (weights @ layer.shift.float()).clone()))
    return out


# --------------------------------------------------------------------------------------------
# Space-to-depth form of a convolution


def space_to_depth(x: torch.Tensor, r: int) -> torch.Tensor:
    """ONNX SpaceToDepth: N x C x H x W -> N x (r*r*C) x H/r x W/r, channel (a*r + b)*C + c."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // r, r, w // r, r).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(n, r * r * c, h // r, w // r)


def folded_conv_weight(weight: torch.Tensor, bias: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights of a stride-1 k x k convolution rewritten to act on `space_to_depth(x, r)`.

    Output pixel (r*i + a, r*j + b) of channel o reads padded input rows r*i + a + dy for
    dy < k: folded row i + (a + dy) // r, phase (a + dy) % r. So the folded kernel has
    ceil((k - 1 + r) / r) taps, output channel o*r*r + a*r + b (what pixel_shuffle / DepthToSpace
    CRD unfold) and input channel (phase_y*r + phase_x)*C + c (what space_to_depth folds).
    """
    cout, cin, k, k2 = weight.shape
    assert k == k2
    taps = (k - 1 + r - 1) // r + 1
    folded = torch.zeros(cout * r * r, r * r * cin, taps, taps, dtype=torch.float64)
    w64 = weight.detach().double()
    # Every (a, b, dy, dx) at once, scattered with accumulation (one op instead of r*r*k*k small ones: a
    # new style's network is built in milliseconds, which style prediction does for every new painting).
    a, b, dy, dx = (t.reshape(-1) for t in torch.meshgrid(*(torch.arange(n) for n in (r, r, k, k)), indexing="ij"))
    ty, py = (a + dy) // r, (a + dy) % r
    tx, px = (b + dx) // r, (b + dx) % r
    m = a.numel()
    rows = (torch.arange(cout)[:, None] * r * r + (a * r + b)[None, :])[:, None, :].expand(cout, cin, m)
    cols = ((py * r + px)[None, :] * cin + torch.arange(cin)[:, None])[None, :, :].expand(cout, cin, m)
    folded.index_put_((rows, cols, ty.expand(cout, cin, m), tx.expand(cout, cin, m)), w64[:, :, dy, dx],
                      accumulate=True)
    return folded.float(), bias.detach().float().repeat_interleave(r * r)


# --------------------------------------------------------------------------------------------
# The inference network (PyTorch)


class _Conv(nn.Module):
    """Reflection pad + convolution (stride 1 or 2), as `ConvLayer` without upsampling."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.pad = conv.kernel_size[0] // 2
        self.stride = conv.stride[0]
        self.weight = nn.Parameter(conv.weight.detach().clone().float(), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().clone().float(), requires_grad=False)

    def forward(self, x):
        p = self.pad
        x = F.pad(x, (p, p, p, p), mode="reflect")
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype), stride=self.stride)


class _FoldedConv(nn.Module):
    """A stride-1 k x k `ConvLayer` (reflection pad k // 2) in space-to-depth form, see `folded_conv_weight`.

    For the last 9x9 convolution, with 3 output channels, a shape CPU kernels handle badly (the
    first one, with 3 inputs, measured no faster folded). Input height and width must be multiples
    of `r` (InferenceNet aligns to 4).
    """

    def __init__(self, conv: nn.Conv2d, r: int = OUT_FOLD):
        super().__init__()
        assert conv.stride[0] == 1
        self.pad = conv.kernel_size[0] // 2
        self.r = r
        w, b = folded_conv_weight(conv.weight, conv.bias, r)
        self.weight = nn.Parameter(w, requires_grad=False)
        self.bias = nn.Parameter(b, requires_grad=False)

    def forward(self, x):
        p = self.pad
        x = F.pad(x, (p, p, p, p), mode="reflect")
        y = F.conv2d(space_to_depth(x, self.r), self.weight.to(x.dtype), self.bias.to(x.dtype))
        return F.pixel_shuffle(y, self.r)


class _UpConv(nn.Module):
    """`ConvLayer` with upsample=2 (nearest 2x, reflection pad 1, 3x3 convolution), computed at low resolution.

    Nearest upsampling repeats each pixel, so each of the four output phases (py, px) sees only
    2 x 2 distinct input pixels: phase 0 of a row reads low-res rows (i-1, i) with kernel rows
    (w0, w1 + w2), phase 1 reads (i, i+1) with (w0 + w1, w2); the reflection pad of the upsampled
    image is a replicate pad of the small one. So: replicate-pad by 1, one 2x2 convolution with
    4 x C outputs (phase-major), take each phase at its offset, interleave (DepthToSpace DCR).
    4/9 of the multiply-adds, and no 4x-sized upsampled copy.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        w = conv.weight.detach().double()
        assert tuple(w.shape[-2:]) == (3, 3) and conv.stride[0] == 1
        combine = [torch.tensor([[1.0, 0, 0], [0, 1, 1]], dtype=torch.float64),
                   torch.tensor([[1.0, 1, 0], [0, 0, 1]], dtype=torch.float64)]
        phases = [torch.einsum("ay,bx,oiyx->oiab", combine[py], combine[px], w) for py in (0, 1) for px in (0, 1)]
        self.channels = w.shape[0]
        self.weight = nn.Parameter(torch.cat(phases, 0).float(), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().float().repeat(4), requires_grad=False)

    def forward(self, x):
        h, w = x.shape[-2:]
        c = self.channels
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight.to(x.dtype), self.bias.to(x.dtype))
        offsets = ((0, 0), (0, 1), (1, 0), (1, 1))
        phases = [y[:, k * c:(k + 1) * c, py:py + h, px:px + w] for k, (py, px) in enumerate(offsets)]
        n = x.shape[0]
        return F.pixel_shuffle(torch.stack(phases, 2).reshape(n, c * 4, h, w), 2)


class InferenceNet(nn.Module):
    """`StyleTransferNet` for inference, with one style (or blend) baked in. See the module docstring.

    `forward(x)` takes N x 3 x H x W RGB in [0, 1] of any size >= 4 px and returns the unclamped RGB
    output of the same size. `norm_affine(x)` runs the network once and returns, per norm layer,
    the per-channel (scale, shift) that its normalization amounted to on `x`; `forward(x, affine)`
    then applies exactly those instead of normalizing `x` itself (frozen statistics).
    """

    def __init__(self, net: StyleTransferNet, style_blend: Sequence[float] | None = None,
                 norm_params: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None):
        """`norm_params`: per norm layer a (scale, shift) pair of C-vectors to bake in instead of the
        network's own rows (the style-prediction network's output); else `style_blend` picks rows."""
        super().__init__()
        # The weights are copied below and the network is left as it is (no `.eval()`): it may be a
        # caller's, still training, and none of its layers acts differently in training.
        self.config = net.config
        up = {id(net.up1), id(net.up2)}
        convs = [net.conv1, net.conv2, net.conv3]
        for block in net.residuals:
            convs += [block.conv1, block.conv2]
        convs += [net.up1, net.up2]
        self.convs = nn.ModuleList(_UpConv(c.conv) if id(c) in up else _Conv(c.conv) for c in convs)
        if norm_params is not None:
            params = [(a.detach().float().reshape(-1).clone(), b.detach().float().reshape(-1).clone())
                      for a, b in norm_params]
        else:
            params = style_norm_params(net, style_blend)
        self.contract_norm = net.config.contract_norm
        self.output_norm = net.config.output_norm
        self.sigmoid = net.config.output_activation == "sigmoid"
        assert len(params) == len(convs) - (0 if self.contract_norm else 3) + int(self.output_norm)
        self.norm_scale = nn.ParameterList(nn.Parameter(s, requires_grad=False) for s, _ in params)
        self.norm_shift = nn.ParameterList(nn.Parameter(b, requires_grad=False) for _, b in params)
        self.num_residual = len(net.residuals)
        self.out = _FoldedConv(net.out.conv)

    @property
    def num_norms(self) -> int:
        return len(self.norm_scale)

    # One norm layer: instance norm with the affine folded in, or frozen statistics, or recording.
    def _norm(self, i: int, x: torch.Tensor, affine, record: list | None, pool: bool) -> torch.Tensor:
        scale, shift = self.norm_scale[i], self.norm_shift[i]
        if affine is not None:
            a, b = affine[i]
            return x * a[:, :, None, None].to(x.dtype) + b[:, :, None, None].to(x.dtype)
        if record is not None:
            xf = x.float()
            dims = (0, 2, 3) if pool else (2, 3)
            mean = xf.mean(dim=dims)
            var = xf.var(dim=dims, unbiased=False)
            if pool:
                mean, var = mean[None], var[None]
            a = scale[None] * torch.rsqrt(var + NORM_EPS)
            b = shift[None] - mean * a
            record.append((a, b))
            return x * a[:, :, None, None].to(x.dtype) + b[:, :, None, None].to(x.dtype)
        return F.instance_norm(x, weight=scale.to(x.dtype), bias=shift.to(x.dtype), eps=NORM_EPS)

    def _run(self, x: torch.Tensor, affine=None, record: list | None = None, pool: bool = False) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = align(x)
        convs = self.convs
        k = 0  # the next norm layer

        def norm(t):
            nonlocal k
            k += 1
            return self._norm(k - 1, t, affine, record, pool)

        for conv in convs[:3]:
            y = conv(y)
            y = F.relu(norm(y) if self.contract_norm else y)
        i = 3
        for _ in range(self.num_residual):
            z = F.relu(norm(convs[i](y)))
            y = y + norm(convs[i + 1](z))
            i += 2
        y = F.relu(norm(convs[i](y)))
        y = F.relu(norm(convs[i + 1](y)))
        y = self.out(y)
        if self.output_norm:
            y = norm(y)
        if self.sigmoid:
            y = torch.sigmoid(y)
        return y[:, :, :h, :w]

    def forward(self, x: torch.Tensor,
                affine: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        if affine is not None and len(affine) != self.num_norms:
            raise ValueError(f"expected {self.num_norms} (scale, shift) pairs, got {len(affine)}")
        return self._run(x, affine=affine)

    def norm_affine(self, x: torch.Tensor, pool: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per norm layer, (scale, shift) of shape N x C (1 x C with `pool`) that normalize `x`.

        With `pool`, the statistics are taken over the whole batch at once: a batch of crops of one
        image then gives one set of statistics for that image.
        """
        record: list = []
        self._run(x, record=record, pool=pool)
        return record


def align(x: torch.Tensor, multiple: int = ALIGN) -> torch.Tensor:
    """Pad the bottom and right edges (reflecting) so height and width are multiples of `multiple`."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


# --------------------------------------------------------------------------------------------
# ONNX


ONNX_MODES = ("plain", "frozen", "stats")


def build_onnx(net: StyleTransferNet | InferenceNet, *, style_blend: Sequence[float] | None = None,
               mode: str = "plain", opset: int = ONNX_OPSET):
    """The inference network as an `onnx.ModelProto`: input "image" (N x 3 x H x W, float32, [0, 1]),
    output "stylized" (same shape, unclamped). Height and width are dynamic, any size >= 8 px.

    `mode="frozen"`: every instance norm is replaced by a per-channel multiply-add whose factors
    are graph inputs "norm_scale_K" / "norm_shift_K" (N or 1 x C), what `InferenceNet.norm_affine`
    returns (used for tiles, whose statistics come from the whole image). `mode="stats"`: those
    factors, pooled over the batch, are the outputs (as `norm_affine(x, pool=True)`), and the
    graph stops after the last norm.
    """
    if mode not in ONNX_MODES:
        raise ValueError(f"unknown ONNX graph mode {mode!r}")
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise BrushworkError("ONNX export needs the onnx package: pip install 'brushwork[export]'") from None

    inf = net if isinstance(net, InferenceNet) else InferenceNet(net, style_blend)
    nodes, inits, inputs, outputs = [], [], [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(value, prefix="c"):
        arr = value.detach().cpu().numpy() if torch.is_tensor(value) else value
        n = name(prefix)
        inits.append(numpy_helper.from_array(arr, n))
        return n

    def node(op, ins, **attrs):
        out = name(op.lower())
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    import numpy as np

    def i64(*v):
        return np.array(v, dtype=np.int64)

    image = "image"
    inputs.append(helper.make_tensor_value_info(image, TensorProto.FLOAT, ["batch", 3, "height", "width"]))

    # Pad to a multiple of ALIGN (reflecting), remember the size to crop back to.
    shape = node("Shape", [image])
    hw = node("Slice", [shape, const(i64(2)), const(i64(4)), const(i64(0))])
    m = const(i64(ALIGN))
    extra = node("Mod", [node("Sub", [m, node("Mod", [hw, m])]), m])
    pads = node("Concat", [const(i64(0, 0, 0, 0, 0, 0)), extra], axis=0)
    x = node("Pad", [image, pads], mode="reflect")

    def folded(c, x):
        p = c.pad
        x = node("Pad", [x, const(i64(0, 0, p, p, 0, 0, p, p))], mode="reflect")
        x = node("SpaceToDepth", [x], blocksize=c.r)
        k = c.weight.shape[-1]
        x = node("Conv", [x, const(c.weight, "w"), const(c.bias, "b")], kernel_shape=[k, k])
        return node("DepthToSpace", [x], blocksize=c.r, mode="CRD")

    def conv(i, x):
        c = inf.convs[i]
        if isinstance(c, _FoldedConv):
            return folded(c, x)
        if isinstance(c, _UpConv):
            x = node("Pad", [x, const(i64(0, 0, 1, 1, 0, 0, 1, 1))], mode="edge")
            y = node("Conv", [x, const(c.weight, "w"), const(c.bias, "b")], kernel_shape=[2, 2])
            size = node("Shape", [x])
            h, w = node("Sub", [node("Gather", [size, const(i64(2))], axis=0), const(i64(2))]), \
                node("Sub", [node("Gather", [size, const(i64(3))], axis=0), const(i64(2))])
            ch = c.channels
            phases = []
            for k, (py, px) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
                starts = const(i64(k * ch, py, px))
                ends = node("Concat", [const(i64((k + 1) * ch)), node("Add", [h, const(i64(py))]),
                                       node("Add", [w, const(i64(px))])], axis=0)
                phases.append(node("Slice", [y, starts, ends, const(i64(1, 2, 3))]))
            return node("DepthToSpace", [node("Concat", phases, axis=1)], blocksize=2, mode="DCR")
        p = c.pad
        x = node("Pad", [x, const(i64(0, 0, p, p, 0, 0, p, p))], mode="reflect")
        k = c.weight.shape[-1]
        return node("Conv", [x, const(c.weight, "w"), const(c.bias, "b")], kernel_shape=[k, k], strides=[c.stride] * 2)

    def norm(i, x):
        c = inf.norm_scale[i].numel()
        sa, sb = f"norm_scale_{i}", f"norm_shift_{i}"
        if mode == "frozen":
            for n_ in (sa, sb):
                inputs.append(helper.make_tensor_value_info(n_, TensorProto.FLOAT, ["stats_batch", c]))
            axes = const(i64(2, 3))
            return node("Add", [node("Mul", [x, node("Unsqueeze", [sa, axes])]), node("Unsqueeze", [sb, axes])])
        if mode == "stats":
            # Mean and (biased) variance over batch and pixels, in two passes like torch's.
            mean = node("ReduceMean", [x], axes=[0, 2, 3], keepdims=1)
            d = node("Sub", [x, mean])
            var = node("ReduceMean", [node("Mul", [d, d])], axes=[0, 2, 3], keepdims=1)
            a = node("Div", [const(inf.norm_scale[i].reshape(1, c, 1, 1), "scale"),
                             node("Sqrt", [node("Add", [var, const(np.array(NORM_EPS, dtype=np.float32))])])])
            b = node("Sub", [const(inf.norm_shift[i].reshape(1, c, 1, 1), "shift"), node("Mul", [mean, a])])
            shape = const(i64(1, c))
            nodes.append(helper.make_node("Reshape", [a, shape], [sa], name=sa))
            nodes.append(helper.make_node("Reshape", [b, shape], [sb], name=sb))
            outputs.extend(helper.make_tensor_value_info(n_, TensorProto.FLOAT, [1, c]) for n_ in (sa, sb))
            return node("Add", [node("Mul", [x, a]), b])
        return node("InstanceNormalization", [x, const(inf.norm_scale[i], "scale"), const(inf.norm_shift[i], "shift")],
                    epsilon=NORM_EPS)

    norms = iter(range(inf.num_norms))

    def next_norm(x):
        return norm(next(norms), x)

    y = x
    for i in range(3):
        y = conv(i, y)
        y = node("Relu", [next_norm(y) if inf.contract_norm else y])
    i = 3
    for _ in range(inf.num_residual):
        z = node("Relu", [next_norm(conv(i, y))])
        y = node("Add", [y, next_norm(conv(i + 1, z))])
        i += 2
    y = node("Relu", [next_norm(conv(i, y))])
    y = next_norm(conv(i + 1, y))
    # The "stats" graph stops after its last norm.
    if mode != "stats" or inf.output_norm:
        y = folded(inf.out, node("Relu", [y]))
        if inf.output_norm:
            y = next_norm(y)
    if mode != "stats":
        if inf.sigmoid:
            y = node("Sigmoid", [y])
        nodes.append(helper.make_node("Slice", [y, const(i64(0, 0)), hw, const(i64(2, 3))], ["stylized"], name="crop"))
        outputs.append(helper.make_tensor_value_info("stylized", TensorProto.FLOAT, ["batch", 3, "height", "width"]))

    graph = helper.make_graph(nodes, "brushwork_feedforward", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="brushwork")
    model.ir_version = min(model.ir_version, 8)  # readable by onnxruntime >= 1.14
    onnx.checker.check_model(model)
    return model


def cpu_session(model: bytes, threads: int, *, memory_arena: bool = True):
    """An onnxruntime CPU session with the settings every brushwork graph runs with."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # NCHWc layouts, fusions
    so.intra_op_num_threads = max(1, threads)
    # No busy-waiting between ops: on a shared or busy CPU (or a server running two stylizations
    # at once) spinning threads steal the cores the work needs; measured 1.3x faster here.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    so.enable_cpu_mem_arena = memory_arena
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """onnxruntime CPU sessions for the inference graph; its frozen-norm and statistics twins
    (for tiling) are built on first use."""

    def __init__(self, inference_net: InferenceNet, threads: int | None = None):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise BrushworkError("the onnxruntime backend needs onnxruntime: pip install 'brushwork[export]'") from None
        self.net = inference_net
        self.threads = threads if threads is not None else torch.get_num_threads()
        self._sessions: dict[str, object] = {}
        self._lock = threading.Lock()

    def _session(self, mode: str):
        with self._lock:  # built on first use; InferenceSession.run itself is thread-safe
            return self._sessions.get(mode) or self._build(mode)

    def _build(self, mode: str):
        proto = build_onnx(self.net, mode=mode)
        # "stats" runs once per image: give its memory back rather than keep an arena.
        session = cpu_session(proto.SerializeToString(), self.threads, memory_arena=mode != "stats")
        self._sessions[mode] = session
        return session

    def __call__(self, x: torch.Tensor,
                 affine: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """As `InferenceNet.forward`."""
        feeds = {"image": _numpy(x)}
        if affine is not None:
            for i, (a, b) in enumerate(affine):
                feeds[f"norm_scale_{i}"], feeds[f"norm_shift_{i}"] = _numpy(a), _numpy(b)
        (out,) = self._session("plain" if affine is None else "frozen").run(["stylized"], feeds)
        return torch.from_numpy(out)

    def norm_affine(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """As `InferenceNet.norm_affine(x, pool=True)`."""
        outs = self._session("stats").run(None, {"image": _numpy(x)})
        names = [o.name for o in self._session("stats").get_outputs()]
        by_name = dict(zip(names, outs))
        return [(torch.from_numpy(by_name[f"norm_scale_{i}"]), torch.from_numpy(by_name[f"norm_shift_{i}"]))
                for i in range(self.net.num_norms)]


def _numpy(t: torch.Tensor):
    return t.detach().float().cpu().contiguous().numpy()


# --------------------------------------------------------------------------------------------
# Files


class _AlignedModule(nn.Module):
    """What `export_torchscript` writes (scripted): pad to a multiple of 4, run the traced network, crop."""

    def __init__(self, core):
        super().__init__()
        self.core = core

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        ph, pw = (4 - h % 4) % 4, (4 - w % 4) % 4  # ALIGN
        if ph > 0 or pw > 0:
            x = F.pad(x, [0, pw, 0, ph], mode="reflect")
        return self.core(x)[:, :, :h, :w]


NormParams = Sequence[tuple[torch.Tensor, torch.Tensor]]


def export_onnx(model, output: str | os.PathLike, *, style_blend: Sequence[float] | None = None,
                opset: int = ONNX_OPSET, norm_params: NormParams | None = None) -> Path:
    """Write `model` (name, path, `ModelFile` or network) as an ONNX file; returns the path. `norm_params`:
    per norm layer the (scale, shift) to bake in instead of the model's rows (a predicted style)."""
    import onnx

    if opset < ONNX_OPSET:
        raise BrushworkError(f"ONNX opset {opset} is too old: {ONNX_OPSET} or newer is needed")
    proto = build_onnx(InferenceNet(load_network(model), style_blend, norm_params), opset=opset)
    with atomic_write(output) as tmp:
        onnx.save(proto, str(tmp))
    return Path(output)


def export_torchscript(model, output: str | os.PathLike, *, style_blend: Sequence[float] | None = None,
                       norm_params: NormParams | None = None) -> Path:
    """Write `model` as a TorchScript file (any input size >= 8 px); returns the path.

    Load it with `torch.jit.load(path)`; call it on N x 3 x H x W RGB in [0, 1].
    """
    net = InferenceNet(load_network(model), style_blend, norm_params).eval()
    example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        # The trace is shape-generic for sizes that are multiples of 4 (checked in the tests);
        # the scripted wrapper brings every other size there.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.10 deprecates TorchScript; it still works
        core = torch.jit.trace(net, example, check_trace=False)
        scripted = torch.jit.script(_AlignedModule(core))
        # Saved to memory first: TorchScript's writer aborts the whole process when the disk is full.
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
    return write_file_atomically(output, buffer.getvalue())


def export_model(model, output: str | os.PathLike, format: str, *, style_blend: Sequence[float] | None = None,
                 norm_params: NormParams | None = None) -> Path:
    if format not in EXPORT_FORMATS:
        raise BrushworkError(f"unknown export format {format!r}: expected {' or '.join(EXPORT_FORMATS)}")
    if format == "onnx":
        return export_onnx(model, output, style_blend=style_blend, norm_params=norm_params)
    return export_torchscript(model, output, style_blend=style_blend, norm_params=norm_params)


def check_export(path: str | os.PathLike, format: str, net: StyleTransferNet, *,
                 style_blend: Sequence[float] | None = None, size: tuple[int, int] = (64, 72),
                 norm_params: NormParams | None = None) -> float | None:
    """Run an exported file once on a fixed random image; max abs difference from the plain PyTorch
    network (None when the ONNX runtime is not installed)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, *size, generator=gen)
    params = norm_params if norm_params is not None else style_norm_params(net, style_blend)
    with torch.no_grad():
        ref = net(x, style=[(a[None], b[None]) for a, b in params])
    if format == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out = torch.from_numpy(session.run(["stylized"], {"image": x.numpy()})[0])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
        with torch.no_grad():
            out = module(x)
    return float((out - ref).abs().max())


"""The feed-forward network as it is deployed: an exact inference rewrite of `StyleTransferNet`.

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
  2x2 convolution per output phase (`UpConv`): 4/9 of the multiply-adds and no upsampled copy;
* any image size works: the input is reflection-padded to a multiple of 4 and the output cropped,
  instead of the plain network's bilinear resize for sizes that are not multiples of 4 (so for
  those sizes the output differs slightly from the plain network's, and is sharper).

It can also freeze the instance-norm statistics (`norm_affine` then `forward(x, affine)`), which is
what tiling needs: see `brushwork.methods.feedforward`.

The same graph in ONNX: `brushwork.nets.onnx_graph`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from brushwork.errors import BrushworkError
from brushwork.nets.transformer import StyleTransferNet

NORM_EPS = 1e-5  # F.instance_norm's default, which StyleTransferNet uses
ALIGN = 4  # two stride-2 convolutions: sizes must be multiples of 4
OUT_FOLD = 4  # space-to-depth factor of the last convolution
NormParams = Sequence[tuple[torch.Tensor, torch.Tensor]]  # per norm layer: (scale, shift)


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


class PaddedConv(nn.Module):
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


class FoldedConv(nn.Module):
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


class UpConv(nn.Module):
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
        self.convs = nn.ModuleList(UpConv(c.conv) if id(c) in up else PaddedConv(c.conv) for c in convs)
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
        self.out = FoldedConv(net.out.conv)

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


class AlignedNet(nn.Module):
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

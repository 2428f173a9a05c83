"""Writing a feed-forward network (or a predicted style's) to a file: ONNX or TorchScript, checked
against the plain PyTorch network."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from brushwork.errors import BrushworkError
from brushwork.files import atomic_write, write_file_atomically
from brushwork.models.networks import load_network
from brushwork.nets.inference import AlignedNet, InferenceNet, NormParams, style_norm_params
from brushwork.nets.onnx_graph import ONNX_OPSET, build_onnx
from brushwork.nets.transformer import StyleTransferNet

EXPORT_FORMATS = ("onnx", "torchscript")


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
        scripted = torch.jit.script(AlignedNet(core))
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

"""The inference network (`brushwork.nets.inference.InferenceNet`) as an ONNX graph, and the
onnxruntime CPU sessions that run it.

`build_onnx` writes the graph node by node with the `onnx` helper (no dependency on torch's ONNX
exporter, whose TorchScript-based form is deprecated and whose new form needs onnxscript): dynamic
batch, height and width, opset 17. `OnnxRunner` runs it on the CPU; its frozen-norm and statistics
forms serve tiling. onnx and onnxruntime are optional dependencies, imported where they are used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch

from brushwork.errors import BrushworkError
from brushwork.nets.inference import ALIGN, NORM_EPS, FoldedConv, InferenceNet, UpConv
from brushwork.nets.transformer import StyleTransferNet

ONNX_OPSET = 17
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
        if isinstance(c, FoldedConv):
            return folded(c, x)
        if isinstance(c, UpConv):
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

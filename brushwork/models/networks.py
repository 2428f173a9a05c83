"""Feed-forward networks from model files: a `StyleTransferNet` from a name, a path or a `ModelFile`,
checked (config, shapes, finite weights); a model that holds only norm parameters is loaded onto the
network it extends."""

from __future__ import annotations

import os

import torch

from brushwork.errors import BrushworkError
from brushwork.models.registry import ModelFile, build_for_model, find_model
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig

FEEDFORWARD_KINDS = ("feedforward", "multi")  # multi: conditional instance norm, one row per style


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

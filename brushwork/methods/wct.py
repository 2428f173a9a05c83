"""Universal style transfer by whitening and colouring transforms (Li et al. 2017).

At relu5_1, relu4_1, relu3_1, relu2_1 and relu1_1 in turn (coarse to fine), the current image is
encoded, its features are whitened (their covariance made the identity) and coloured with the style
features' covariance and mean (`wct`: symmetric matrix roots by eigendecomposition in float64,
regularized), blended with the unchanged features by `alpha`, and decoded by that level's decoder.
The decoders are trained only to invert the encoder, never on style images, so no style is ever
"unseen". Options, several styles, masks, colour preservation and tiles: see
`brushwork.methods.feature_transfer`.
"""

from __future__ import annotations

from brushwork.errors import BrushworkError
from brushwork.features.transfer import AffineMap, wct, wct_map
from brushwork.methods.feature_transfer import FeatureTransferStylizer
from brushwork.models.registry import ModelFile, build_for_model
from brushwork.nets.decoder import DECODER_LAYERS, Decoder, DecoderConfig

MODEL_KIND = "wct"
DEFAULT_MODEL = "wct"


def decoders_from_model(model) -> dict[str, Decoder]:
    """The decoders of a `wct` model file: tensors `LAYER.KEY`, config {"layers": [...], "width": w,
    "input_scales": {layer: s}}."""
    layers = model.config.get("layers") or []
    if not isinstance(layers, list) or not layers or any(layer not in DECODER_LAYERS for layer in layers):
        raise BrushworkError(f"model {model.name!r} names no decoder layers among {', '.join(DECODER_LAYERS)}")
    decoders = {}
    for layer in layers:
        try:
            scale = float((model.config.get("input_scales") or {}).get(layer, 1.0))  # absent: saved before scales
            config = DecoderConfig(layer=layer, width=float(model.config.get("width", 1.0)), input_scale=scale)
        except (TypeError, ValueError, AttributeError) as exc:
            raise BrushworkError(f"model {model.name!r} has an invalid decoder config ({exc})") from None
        prefix = f"{layer}."
        part = ModelFile(kind=model.kind, config=model.config, card=model.card, path=model.path,
                         tensors={k[len(prefix):]: v for k, v in model.tensors.items() if k.startswith(prefix)})
        decoders[layer] = build_for_model(lambda: Decoder(config), part)
    return decoders


class WCTStylizer(FeatureTransferStylizer):
    """Loaded WCT decoders (a shipped name, a model file, or a dict layer -> `Decoder`)."""

    method = "wct"
    model_kind = MODEL_KIND
    default_model = DEFAULT_MODEL

    full_covariance = True

    def statistics_of(self, running):
        return running.result()

    def transfer_map(self, content_stats, style_stats) -> AffineMap:
        return wct_map(content_stats, style_stats)

    def decoders_from_model(self, model) -> dict[str, Decoder]:
        return decoders_from_model(model)


__all__ = ["WCTStylizer", "decoders_from_model", "wct"]

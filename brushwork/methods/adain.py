"""Arbitrary style transfer by adaptive instance normalization (Huang and Belongie 2017).

VGG-19 encodes the content and the style image up to relu4_1; the content features are given the
channel-wise means and standard deviations of the style's (`adain`), blended with the content
features by `alpha`, and a trained decoder turns them back into an image. Any style image works,
including paintings never seen in training. Options, several styles, masks, colour preservation and
tiles: see `brushwork.methods.feature_transfer`.

    from brushwork import stylize
    stylize("photo.jpg", style="painting.jpg", method="adain", alpha=0.8)
"""

from __future__ import annotations

from brushwork.errors import BrushworkError
from brushwork.features.transfer import AffineMap, adain, adain_map, mean_std_of
from brushwork.methods.feature_transfer import FeatureTransferStylizer
from brushwork.models.registry import build_for_model
from brushwork.nets.decoder import Decoder, DecoderConfig

ADAIN_LAYER = "relu4_1"
MODEL_KIND = "adain"
DEFAULT_MODEL = "adain"


def decoder_from_model(model) -> Decoder:
    """The decoder of an `adain` model file (config: layer and width)."""
    try:
        config = DecoderConfig.from_dict(model.config)
    except (TypeError, ValueError) as exc:
        raise BrushworkError(f"model {model.name!r} has an invalid decoder config ({exc})") from None
    return build_for_model(lambda: Decoder(config), model)


class AdaINStylizer(FeatureTransferStylizer):
    """A loaded AdaIN decoder (a shipped name, a model file, or a `Decoder`), ready for any style image."""

    method = "adain"
    model_kind = MODEL_KIND
    default_model = DEFAULT_MODEL
    # On an AMD EPYC with AVX-512 BF16 (2026-12-04, quiet, 2 threads; `benchmarks/arbitrary.py --speed-only
    # --speed-sizes 512,1024`, the README's table) PyTorch in bf16 took 518 / 2,786 ms at 512 / 1024 px
    # against onnxruntime fp32's 838 / 3,550, and its output stayed 45-53 dB from the fp32 path's (4
    # held-out paintings x 2 photos x both sizes): well above the 35 dB asked of a default path, unlike
    # the feed-forward networks' 33 dB.
    native_bf16_on_cpu = True

    def statistics_of(self, running):
        return mean_std_of(running)

    def transfer_map(self, content_stats, style_stats) -> AffineMap:
        return adain_map(content_stats, style_stats)

    def decoders_from_model(self, model) -> dict[str, Decoder]:
        decoder = decoder_from_model(model)
        return {decoder.config.layer: decoder}


__all__ = ["ADAIN_LAYER", "AdaINStylizer", "adain", "decoder_from_model"]

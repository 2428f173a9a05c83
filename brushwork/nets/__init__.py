"""Every `nn.Module` (no training code): the transformation network and its inference rewrite, decoders,
style predictors, and the loader of Magenta's trained networks onto them."""

from brushwork.nets.decoder import Decoder, DecoderConfig
from brushwork.nets.inference import InferenceNet
from brushwork.nets.magenta import MAGENTA_MODELS, magenta_network
from brushwork.nets.mobilenet import MobileNetPredictorConfig, MobileNetStylePredictor
from brushwork.nets.style_predictor import PredictorConfig, StylePredictor, style_statistics
from brushwork.nets.transformer import (
    InstanceNorm,
    StyleTransferNet,
    TransformerConfig,
    split_norm_params,
)

__all__ = ["StyleTransferNet", "TransformerConfig", "InstanceNorm", "split_norm_params", "StylePredictor",
           "PredictorConfig", "style_statistics", "MobileNetStylePredictor", "MobileNetPredictorConfig",
           "MAGENTA_MODELS", "magenta_network", "InferenceNet", "Decoder", "DecoderConfig"]

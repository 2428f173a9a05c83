"""Network definitions only: no training code, no I/O."""

from brushwork.nets.style_predictor import PredictorConfig, StylePredictor, style_statistics
from brushwork.nets.transformer import (
    InstanceNorm,
    StyleTransferNet,
    TransformerConfig,
    split_norm_params,
)

__all__ = ["StyleTransferNet", "TransformerConfig", "InstanceNorm", "split_norm_params", "StylePredictor",
           "PredictorConfig", "style_statistics"]

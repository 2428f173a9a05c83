"""Layer 1: pixels in and out (loading, saving, resizing, colour transforms). No models."""

from brushwork.imaging.color import (
    match_color_statistics,
    rgb_to_yiq,
    transfer_luminance,
    yiq_to_rgb,
)
from brushwork.imaging.io import (
    DEFAULT_MAX_PIXELS,
    image_to_tensor,
    load_image,
    open_image,
    save_image,
    tensor_to_image,
)
from brushwork.imaging.resize import fit_long_side, painting_views, resize, resize_long_side

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "fit_long_side",
    "image_to_tensor",
    "load_image",
    "match_color_statistics",
    "open_image",
    "resize",
    "resize_long_side",
    "painting_views",
    "rgb_to_yiq",
    "save_image",
    "tensor_to_image",
    "transfer_luminance",
    "yiq_to_rgb",
]

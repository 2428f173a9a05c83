"""The loss network: VGG-19 with named layers and its own preprocessing."""

from brushwork.features.vgg import (
    CONV_NAMES,
    LAYER_NAMES,
    VGG19,
    check_layer_names,
    deepest_layer,
    layer_channels,
    load_vgg19,
    shared_vgg19,
)

__all__ = ["VGG19", "LAYER_NAMES", "CONV_NAMES", "load_vgg19", "shared_vgg19", "layer_channels", "check_layer_names",
           "deepest_layer"]

"""Brushwork: neural style transfer (optimization, feed-forward, many-style and arbitrary-style methods).

The public Python API is the command line's entry points: `optimize`, `stylize`, `stylize_video`,
`embed_style`, `train` and `export_model`. The stylizing ones take images (paths, PIL images, arrays or
tensors) and options, report progress through a callback, and return a PIL image.
"""

from brushwork.errors import BrushworkError

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"
from brushwork.methods.optimize import OptimizeOptions, optimize

__all__ = ["__version__", "BrushworkError", "OptimizeOptions", "optimize"]


def __getattr__(name):
    # Later methods are imported on first use so `import brushwork` stays quick.
    if name in ("stylize", "stylize_tensor"):
        # One entry point for every stylizing method (feedforward, adain, wct): see methods/dispatch.py.
        from brushwork.methods import dispatch

        return getattr(dispatch, name)
    if name == "stylize_video":
        from brushwork.video import stylize_video

        return stylize_video
    if name == "embed_style":
        from brushwork.methods.predict import embed_style

        return embed_style
    if name == "train":  # brushwork train: every network kind, the fields of TrainOptions as keywords
        from brushwork.training.runner import train

        return train
    if name == "export_model":  # brushwork export: ONNX or TorchScript
        from brushwork.methods.export import export_model

        return export_model
    raise AttributeError(f"module 'brushwork' has no attribute {name!r}")

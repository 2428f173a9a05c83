"""Brushwork: neural style transfer (optimization, feed-forward, many-style and arbitrary-style methods).

The public Python API is the command line's entry points: `optimize`, `stylize`, `stylize_video`,
`embed_style`, `train` and `export_model`. The stylizing ones take images (paths, PIL images, arrays or
tensors) and options, report progress through a callback, and return a PIL image.
"""

from brushwork.errors import BrushworkError
from brushwork.methods.dispatch import stylize, stylize_tensor
from brushwork.methods.export import export_model
from brushwork.methods.one_pass import StylizeOptions
from brushwork.methods.optimize import OptimizeOptions, optimize
from brushwork.methods.predict import embed_style
from brushwork.training.runner import train
from brushwork.version import __version__
from brushwork.video import stylize_video

__all__ = ["__version__", "BrushworkError", "OptimizeOptions", "StylizeOptions", "embed_style", "export_model",
           "optimize", "stylize", "stylize_tensor", "stylize_video", "train"]

"""The stylizing methods, one module each, on the shared one-pass contract (`one_pass`); `dispatch` picks
one and holds the one `stylize`."""

from brushwork.methods.adain import AdaINStylizer
from brushwork.methods.dispatch import (
    get_stylizer,
    method_names,
    register_method,
    resolve_method,
    stylize,
    stylize_tensor,
)
from brushwork.methods.export import export_model
from brushwork.methods.feedforward import FeedForwardStylizer
from brushwork.methods.one_pass import StylizeOptions
from brushwork.methods.optimize import OptimizeOptions, optimize
from brushwork.methods.predict import PredictStylizer, embed_style
from brushwork.methods.wct import WCTStylizer

__all__ = ["AdaINStylizer", "FeedForwardStylizer", "OptimizeOptions", "PredictStylizer", "StylizeOptions",
           "WCTStylizer", "embed_style", "export_model", "get_stylizer", "method_names", "optimize",
           "register_method", "resolve_method", "stylize", "stylize_tensor"]

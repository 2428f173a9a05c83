"""The stylizing methods, one module each, on the shared one-pass contract (`one_pass`); `dispatch` picks
one and holds the one `stylize`. (`optimize` is not re-exported here: the name is its module's, which
`from brushwork.methods import optimize` must keep giving; `brushwork.optimize` is the function.)"""

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
from brushwork.methods.predict import PredictStylizer, embed_style
from brushwork.methods.wct import WCTStylizer

__all__ = ["AdaINStylizer", "FeedForwardStylizer", "PredictStylizer", "StylizeOptions", "WCTStylizer", "embed_style",
           "export_model", "get_stylizer", "method_names", "register_method", "resolve_method", "stylize",
           "stylize_tensor"]

"""Which method stylizes a `brushwork stylize` request: the `--method` table.

`auto` uses a trained feed-forward (or multi-style) model when `--model` or `--style` names one,
an arbitrary-style model given with `--model` through style prediction, and otherwise (a style
image, preset, embedding file or blend of them) style prediction with the shipped arbitrary-style
model when there is one. Each stylizer offers `stylize(image, options)`, `name`, `backend` and
`runtime`.
"""

from __future__ import annotations

from brushwork.errors import BrushworkError
from brushwork.methods.feedforward import DEFAULT_STYLE, StylizeOptions, _merge, get_stylizer
from brushwork.progress import ProgressCallback


def _predict(options: StylizeOptions):
    from brushwork.methods.predict import get_predictor

    return get_predictor(options)


def _feedforward(options: StylizeOptions):
    return get_stylizer(options)


STYLIZERS = {"feedforward": _feedforward, "predict": _predict}


def choose_method(options: StylizeOptions) -> str:
    """The method `auto` stands for with these options (or the one named)."""
    from brushwork.methods.export import FEEDFORWARD_KINDS
    from brushwork.methods.predict import ARBITRARY_KINDS, DEFAULT_ARBITRARY_MODEL
    from brushwork.models.registry import find_model

    if options.method != "auto":
        return options.method
    if options.model is not None:
        return "predict" if find_model(options.model).kind in ARBITRARY_KINDS else "feedforward"
    try:
        find_model(options.style, kinds=FEEDFORWARD_KINDS)
        return "feedforward"
    except BrushworkError:
        pass
    try:
        find_model(DEFAULT_ARBITRARY_MODEL, kinds=ARBITRARY_KINDS)
    except BrushworkError:
        return "feedforward"  # no arbitrary-style model shipped: the feed-forward error says what to do
    return "predict"


def make_stylizer(options: StylizeOptions):
    """A loaded stylizer for these options (bad models fail here, before any image is read)."""
    options.validate()
    return STYLIZERS[choose_method(options)](options)


def stylize(image, style=DEFAULT_STYLE, *, progress: ProgressCallback | None = None, **options):
    """Stylize `image` by whichever method the options ask for (`method`, default auto); a PIL image out.

    `style` and the options are those of `StylizeOptions`: e.g. `stylize(img, "udnie", model="multi-paintings")`,
    `stylize(img, "any.jpg", method="predict", strength=0.7)`, `stylize(img, "starry-night", tile=1024)`.
    """
    opts = _merge(StylizeOptions(style=style), options)
    return make_stylizer(opts).stylize(image, opts, progress=progress)

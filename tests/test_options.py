"""Keyword options of the Python API: each entry point takes its options dataclass's fields by name."""

import pytest

import brushwork
from brushwork.errors import BrushworkError
from brushwork.methods.one_pass import StylizeOptions
from brushwork.options import with_overrides
from brushwork.training.runner import train


def test_overrides_replace_the_named_fields_and_leave_the_given_options_alone():
    base = StylizeOptions(strength=0.5)
    changed = with_overrides(base, {"tile": 256}, "stylize")
    assert (changed.strength, changed.tile) == (0.5, 256) and base.tile == 0
    assert with_overrides(base, {}, "stylize") is base


@pytest.mark.parametrize("call, what", [
    (lambda: brushwork.stylize("photo.jpg", tiles=256), "stylize"),
    (lambda: brushwork.optimize("photo.jpg", "udnie", stpes=10), "optimize"),
    (lambda: train(learning_rte=1e-3), "train"),
    (lambda: brushwork.train(learning_rte=1e-3), "train"),
])
def test_a_misspelt_option_is_one_clear_error_before_any_work(call, what):
    with pytest.raises(BrushworkError) as err:
        call()  # no such photo either: the option is checked first
    assert str(err.value).startswith("unknown option ") and str(err.value).endswith(f" for {what}")


def test_the_top_level_api_names_each_command_line_entry_point():
    from brushwork.methods.export import export_model
    from brushwork.methods.predict import embed_style
    from brushwork.video import stylize_video

    assert (brushwork.train, brushwork.export_model) == (train, export_model)
    assert (brushwork.embed_style, brushwork.stylize_video) == (embed_style, stylize_video)
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        brushwork.trian  # noqa: B018

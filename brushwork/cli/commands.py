"""The subcommands, each registered by its own module."""

from brushwork.cli import cmd_models, cmd_optimize, cmd_train

REGISTRY = [cmd_optimize.register, cmd_train.register, cmd_models.register]

from brushwork.cli import cmd_serve  # noqa: E402

REGISTRY.append(cmd_serve.register)

from brushwork.cli import cmd_export, cmd_stylize  # noqa: E402

REGISTRY += [cmd_stylize.register, cmd_export.register]

from brushwork.cli import cmd_embed_style  # noqa: E402

REGISTRY.append(cmd_embed_style.register)

from brushwork.cli import cmd_video  # noqa: E402

REGISTRY.append(cmd_video.register)

"""The subcommands, each registered by its own module."""

from brushwork.cli import cmd_models, cmd_optimize, cmd_train

REGISTRY = [cmd_optimize.register, cmd_train.register, cmd_models.register]

"""The subcommands, each registered by its own module."""

from brushwork.cli import cmd_optimize

REGISTRY = [cmd_optimize.register]

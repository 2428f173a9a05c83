"""`brushwork` command line: parses and formats only; the work happens in `brushwork.methods`."""

from __future__ import annotations

import argparse
import os
import sys

from brushwork.cli import commands
from brushwork.errors import BrushworkError
from brushwork.version import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, like every other bad-input path
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="brushwork", description="Neural style transfer: repaint a photo in the style of a painting.")
    parser.add_argument("--version", action="version", version=f"brushwork {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for register in commands.REGISTRY:
        register(sub)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BrushworkError as exc:
        if debug:
            raise
        print(f"brushwork: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("brushwork: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`brushwork models | head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe
    except MemoryError:
        if debug:
            raise
        print("brushwork: error: out of memory: try a smaller --size (or --tile for stylize)", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"brushwork: internal error: {type(exc).__name__}: {first} (run with --debug for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

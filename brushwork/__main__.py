"""`python -m brushwork COMMAND ...`, the same as the `brushwork` command; what `torchrun ... -m brushwork train`
runs in each of its processes (see docs/distributed.md)."""

import sys

from brushwork import distributed
from brushwork.cli.main import main

try:
    code = main()
finally:
    distributed.finish()  # a process group joined by the command is left before the interpreter exits
sys.exit(code)

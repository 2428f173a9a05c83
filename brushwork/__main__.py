"""`python -m brushwork COMMAND ...`, the same as the `brushwork` command; what `torchrun ... -m brushwork train`
runs in each of its processes (see docs/distributed.md)."""

import logging
import os
import sys

from brushwork import distributed
from brushwork.cli.main import main

try:
    code = main()
finally:
    in_group = distributed.finish()  # a process group joined by the command is left before the interpreter exits
if in_group:
    # Even after leaving the group, gloo's threads can still be torn down with the interpreter's C++ statics and
    # abort the process (SIGABRT, "terminate called without an active exception": 2 of 6 two-process test runs
    # on an Intel Xeon). Everything the command wrote is closed by now: flush what is buffered and leave at once.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)
sys.exit(code)

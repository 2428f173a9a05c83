"""`python -m brushwork COMMAND ...`, the same as the `brushwork` command; what `torchrun ... -m brushwork train`
runs in each of its processes (see docs/distributed.md)."""

import sys

from brushwork.cli.main import main

sys.exit(main())

import sys

from brushwork.cli.main import main

sys.exit(main())

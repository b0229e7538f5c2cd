"""`python -m focoos.cli`: the same as the `focoos` command."""

import sys

from .app import main

sys.exit(main())

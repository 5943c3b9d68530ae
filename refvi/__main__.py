"""`python -m refvi` is the `refvi` command."""

import sys

from refvi.cli import main

sys.exit(main())

"""`python -m engine` runs the gitward CLI."""

import sys

from engine.cli import main

sys.exit(main())

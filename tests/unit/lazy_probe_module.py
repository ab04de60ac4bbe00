"""Imported by tests/unit/test_cli_lazy.py: records whether the collector ran while it loaded."""

import gc

COLLECTOR_ENABLED_AT_IMPORT = gc.isenabled()

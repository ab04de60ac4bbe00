"""Executors: the only code that writes to git or the cluster; each records its outcome."""

"""Whether a cluster is configured, told from the options and the environment alone.

Kept apart from engine/observe/cluster.py, which loads the kubernetes client: `gitward run`
without a cluster asks this and never imports kubernetes (a tenth of a fleet pass's time).
"""

from __future__ import annotations

import os
from pathlib import Path

IN_CLUSTER_HOST = "KUBERNETES_SERVICE_HOST"
"""Set in every pod: gitward runs inside a cluster."""


def cluster_configured(kubeconfig: str | Path | None, context: str | None) -> bool:
    """Whether a cluster is configured: a kubeconfig or context given, `KUBECONFIG` set, or
    running inside a cluster (commands that can work without one use this to decide)."""
    return bool(kubeconfig or context or os.environ.get("KUBECONFIG")
                or os.environ.get(IN_CLUSTER_HOST))

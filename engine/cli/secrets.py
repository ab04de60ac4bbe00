"""Where a command reads the Secrets its objects name: the cluster it is configured for."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

from engine.model import Rule
from engine.observe.transport import SecretReader
from engine.reconcile.transport import names_secrets


def cluster_secrets(stack: ExitStack, rules: Iterable[Rule], kubeconfig: Path | None = None,
                    context: str | None = None) -> SecretReader | None:
    """A reader of the cluster's Secrets when one of `rules` names a Secret and a cluster is
    configured (the connection closes with `stack`); else None, and a rule naming a Secret
    fails saying that no cluster is configured."""
    if not names_secrets(list(rules)):
        return None
    # the kubernetes client only when a Secret is to be read: `plan` and `images` commands
    # without one never import it (tests/e2e/test_lazy_imports.py)
    from engine.observe.cluster import connect
    from engine.observe.kubeenv import cluster_configured
    from engine.reconcile.live import secret_reader
    if not cluster_configured(kubeconfig, context):
        return None
    return secret_reader(stack.enter_context(connect(kubeconfig, context)))

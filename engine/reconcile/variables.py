"""Reading `postBuild.substituteFrom` ConfigMaps and Secrets from the cluster for a build.

kustomize-controller reads these objects from the Kustomization's own namespace with its own
client, not with the client that impersonates `serviceAccountName`: the namespace is the
tenant's boundary, and the account only limits what is applied. gitward does the same, so
the cluster paths pass the run's client here, never an impersonating one. A Secret's values
are returned to the build and go nowhere else: not to messages, events or the store.
"""

from __future__ import annotations

from engine.evaluate.postbuild import live_variables
from engine.model import SubstituteFrom
from engine.observe.cluster import ClusterClient, read_object
from engine.reconcile.build import VariablesReader


def cluster_variables(client: ClusterClient) -> VariablesReader:
    """A reader of `substituteFrom` objects through `client`: each object's variables, None when
    it does not exist; a refused or failed read raises (ClusterError, ApiError)."""

    def read(ref: SubstituteFrom, namespace: str) -> dict[str, str] | None:
        live = read_object(client, "v1", ref.kind, namespace, ref.name)
        return None if live is None else live_variables(ref.kind, live)

    return read

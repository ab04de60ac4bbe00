"""What a command with a cluster reads from it besides the objects it applies: the bootstrap
GitRepository and the Secrets of `secretRef`s.

`flux bootstrap` creates flux-system's GitRepository in the cluster, and git need not hold it:
`live_sources` reads it and `load_repository` takes it as a hint. This module imports the
kubernetes client, so the modules a command without a cluster uses (engine/reconcile/repo.py,
images.py) do not import it; tests/e2e/test_lazy_imports.py asserts that they do not.
"""

from __future__ import annotations

from dataclasses import replace

import yaml

from engine.errors import Problems
from engine.evaluate.discover import BOOTSTRAP_SOURCE, SourceHint
from engine.model import GitSource, ObjectKey
from engine.observe.cluster import ClusterClient, read_object
from engine.observe.transport import SecretReader
from engine.rules.fluxapi import SOURCE_GROUP
from engine.rules.fluxread import read_object as read_object_doc
from engine.rules.yamldoc import Document, graft


def live_sources(client: ClusterClient) -> dict[ObjectKey, SourceHint]:
    """The bootstrap GitRepository as the live cluster has it (flux bootstrap created it there;
    git need not hold it); empty when the cluster has no such object or no such kind."""
    key = BOOTSTRAP_SOURCE
    body = read_object(client, f"{SOURCE_GROUP}/v1", key.kind, key.namespace, key.name)
    if body is None:
        return {}
    body = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
    body["metadata"] = {k: v for k, v in (body.get("metadata") or {}).items() if k in ("name", "namespace")}
    shown = f"cluster: {key.kind} {key.ref}"
    anchor = yaml.ScalarNode("tag:yaml.org,2002:null", "", _MARK, _MARK)
    found = read_object_doc(Document(shown, 0, graft(body, None, anchor)), Problems())
    if not isinstance(found, GitSource):
        return {}
    source = replace(found, origin=None)
    return {key: SourceHint(source, f"GitRepository {key.ref} is not in git: taken from the live "
                                    f"cluster as {source.url}#{source.ref.describe()}")}


_MARK = yaml.Mark("cluster", 0, 0, 0, "", 0)


def secret_reader(cluster: ClusterClient) -> SecretReader:
    """Reads an ImageRepository's `secretRef` Secret from the cluster."""
    def read(namespace: str, name: str) -> dict[str, object] | None:
        return read_object(cluster, "v1", "Secret", namespace, name)
    return read

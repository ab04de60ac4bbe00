"""Sources: fetch a GitRepository's ref, or pull an OCIRepository's artifact, and record the
revision it resolved to.

A fetch that finds the commit recorded last time writes nothing to `git_revisions` and no
event; a new (or revisited) commit writes its row and a `NewRevision` event; a failure writes
a `GitOperationFailed` event carrying the redacted message. An OCIRepository is the same with
`oci_revisions`, `NewArtifact` and `OCIOperationFailed` (Flux's reasons). Credentials are
parameters that reach git or the registry only: the store keeps the URL without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.clock import Clock, utcnow
from engine.errors import GitwardError
from engine.model import GitRevision, GitSource, OCIRevision, OCISource
from engine.observe.dockerconfig import (
    Credentials,
    credentials_from_docker_config,
    credentials_from_secret,
)
from engine.observe.git import Checkout, SourceError, fetch_source
from engine.observe.oci import Artifact, oci_image, pull_artifact
from engine.observe.httpclient import registry_client
from engine.observe.transport import SecretError, SecretReader
from engine.reconcile.transport import git_transport, registry_transport
from engine.store import queries
from engine.store.artifacts import latest_oci_revision, record_oci_revision
from engine.store.db import Store

NEW_REVISION = "NewRevision"
FETCH_FAILED = "GitOperationFailed"
NEW_ARTIFACT = "NewArtifact"
UP_TO_DATE = "ArtifactUpToDate"
PULL_FAILED = "OCIOperationFailed"


@dataclass(frozen=True)
class SourceOutcome:
    """What one reconciliation of a source found: a checkout and its recorded row, or an error."""

    source: GitSource
    checkout: Checkout | None = None
    revision: GitRevision | None = None
    changed: bool = False
    error: SourceError | None = None


def reconcile_source(store: Store, source: GitSource, *, cache_dir: Path,
                     ssh_command: str | None = None, token: str | None = None,
                     read_secret: SecretReader | None = None, clock: Clock = utcnow) -> SourceOutcome:
    """Fetch the source (through the proxy of its proxySecretRef, read with `read_secret`) and
    record its revision; a failure is recorded and returned, not raised."""
    name = source.key.ref
    previous = queries.latest_git_revision(store, name)
    try:
        checkout = fetch_git(source, cache_dir=cache_dir, ssh_command=ssh_command, token=token,
                             read_secret=read_secret)
    except SourceError as err:
        queries.record_event(store, queries.Event(
            time=clock(), object_kind=source.KIND, object_name=name,
            severity=queries.EventSeverity.ERROR, reason=FETCH_FAILED, message=str(err)))
        return SourceOutcome(source, error=err)
    recorded = queries.record_git_revision(store, GitRevision(
        source=name, url=source.url, branch=checkout.branch, sha=checkout.sha,
        fetched_at=clock(), author=checkout.author, message=checkout.message,
        committed_at=checkout.committed_at))
    changed = previous is None or previous.sha != checkout.sha
    if changed:
        queries.record_event(store, queries.Event(
            time=clock(), object_kind=source.KIND, object_name=name,
            severity=queries.EventSeverity.INFO, reason=NEW_REVISION,
            message=f"fetched revision {checkout.revision}: '{checkout.subject}'"))
    return SourceOutcome(source, checkout, recorded, changed)


@dataclass(frozen=True)
class ArtifactOutcome:
    """What one reconciliation of an OCIRepository found: an artifact and its row, or an error."""

    source: OCISource
    artifact: Artifact | None = None
    revision: OCIRevision | None = None
    changed: bool = False
    error: GitwardError | None = None


def oci_credentials(source: OCISource, read_secret: SecretReader | None) -> Credentials | None:
    """The Secret `spec.secretRef` names (read from the cluster, when one is configured), else
    the docker config.json's credentials for the registry, else none (anonymous)."""
    registry = oci_image(source).registry
    if source.secret_ref and read_secret is not None:
        secret = read_secret(source.namespace, source.secret_ref)
        return credentials_from_secret(secret, source.namespace, source.secret_ref, registry,
                                       referrer=source.KIND)
    return credentials_from_docker_config(registry)


def fetch_git(source: GitSource, *, cache_dir: Path, ssh_command: str | None, token: str | None,
              read_secret: SecretReader | None) -> Checkout:
    """Fetch a git source through the proxy its proxySecretRef gives; SourceError on failure
    (a Secret gitward cannot use included: it never fetches around the proxy)."""
    try:
        proxy = git_transport(source, read_secret).proxy
    except SecretError as err:
        raise SourceError(str(err), permanent=True) from None
    return fetch_source(source, cache_dir=cache_dir, ssh_command=ssh_command, token=token, proxy=proxy)


def pull(source: OCISource, *, cache_dir: Path, read_secret: SecretReader | None,
         credentials: Credentials | None = None) -> Artifact:
    """Pull the source's artifact with the credentials, TLS material and proxy its Secrets give
    (`credentials`, when given, instead of its secretRef's)."""
    creds = credentials or oci_credentials(source, read_secret)
    transport = registry_transport(source, read_secret)
    with registry_client(transport) as client:
        return pull_artifact(source, cache_dir=cache_dir, credentials=creds, client=client,
                             hidden=transport.secrets())


def reconcile_oci_source(store: Store, source: OCISource, *, cache_dir: Path,
                         credentials: Credentials | None = None,
                         read_secret: SecretReader | None = None,
                         clock: Clock = utcnow) -> ArtifactOutcome:
    """Pull the source's artifact and record its revision; a failure is recorded and returned."""
    name = source.key.ref
    previous = latest_oci_revision(store, name)
    try:
        artifact = pull(source, cache_dir=cache_dir, read_secret=read_secret, credentials=credentials)
    except GitwardError as err:
        queries.record_event(store, queries.Event(
            time=clock(), object_kind=source.KIND, object_name=name,
            severity=queries.EventSeverity.ERROR, reason=PULL_FAILED,
            message=f"failed to pull artifact from '{source.url}': {err}"))
        return ArtifactOutcome(source, error=err)
    recorded = record_oci_revision(store, OCIRevision(
        source=name, url=source.url, tag=artifact.tag, digest=artifact.digest,
        revision=artifact.revision, layer_digest=artifact.layer_digest,
        media_type=artifact.media_type, operation=artifact.operation, fetched_at=clock(),
        origin_source=artifact.origin_source, origin_revision=artifact.origin_revision,
        created=artifact.created))
    changed = previous is None or previous.revision != artifact.revision
    last = queries.list_events(store, object_kind=source.KIND, object_name=name, limit=1)
    if changed:
        reason, message = NEW_ARTIFACT, f"stored artifact with revision '{artifact.revision}' from '{source.url}'"
    elif last and last[-1].severity is queries.EventSeverity.ERROR:  # healed: say so once
        reason, message = UP_TO_DATE, f"artifact up-to-date with remote revision: '{artifact.revision}'"
    else:
        return ArtifactOutcome(source, artifact, recorded, changed)
    queries.record_event(store, queries.Event(
        time=clock(), object_kind=source.KIND, object_name=name,
        severity=queries.EventSeverity.INFO, reason=reason, message=message))
    return ArtifactOutcome(source, artifact, recorded, changed)

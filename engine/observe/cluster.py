"""Reading a Kubernetes cluster: connect, read live objects, dry-run applies, poll health.

`connect` finds the cluster the way kubectl does: an explicit kubeconfig, else `$KUBECONFIG`
(a list of files), else `~/.kube/config`, else the in-cluster service account. Nothing here
writes: a server-side dry-run apply stores nothing. The executor (engine/act/cluster.py) is
handed `ClusterClient.dynamic` for its writes. Tokens and certificates stay in the client's
configuration; no message carries them.
"""

from __future__ import annotations

import copy

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as kube, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError
from kubernetes.dynamic.resource import Resource

from engine.errors import GitwardError, UserError, did_you_mean
from engine.evaluate.apply import describe
from engine.evaluate.health import Health, assess
from engine.kubeapi import FIELD_MANAGER, REQUEST_TIMEOUT, ApiError, api_error
from engine.model import HealthCheck, Manifest
from engine.observe.kubeenv import IN_CLUSTER_HOST



class ClusterError(GitwardError):
    """The cluster cannot be reached or configured (no kubeconfig, unknown context, refused)."""


class KubeconfigError(ClusterError, UserError):
    """The kubeconfig or context asked for does not exist."""


@dataclass
class ClusterClient:
    """An API client and a dynamic client on it, with a discovery cache of its own.

    The cache lives in a private temporary directory (the library's default is shared by every
    process that talks to the same URL) and goes away on `close`.
    """

    api: kube.ApiClient
    dynamic: DynamicClient
    server: str
    context: str = ""
    cache_dir: Path | None = field(default=None, repr=False)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]
        if self.cache_dir is not None:
            shutil.rmtree(self.cache_dir, ignore_errors=True)

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_INSECURE_WARNED: set[str] = set()
"""API servers already warned about, so the warning shows once per process."""


def client_for(api: kube.ApiClient, *, context: str = "") -> ClusterClient:
    """Wrap a configured `ApiClient` (discovery happens now, so an unreachable server fails here).

    A kubeconfig that skips TLS verification gets one warning on stderr, not urllib3's warning on
    every request (which would bury the logs, JSON ones included).
    """
    if not api.configuration.verify_ssl and api.configuration.host not in _INSECURE_WARNED:
        _INSECURE_WARNED.add(api.configuration.host)
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        sys.stderr.write(f"warning: TLS verification is off for {api.configuration.host} "
                         "(insecure-skip-tls-verify in the kubeconfig)\n")
    cache_dir = Path(tempfile.mkdtemp(prefix="gitward-discovery-"))
    try:
        dynamic = _guarded("discover the API", lambda: DynamicClient(
            api, cache_file=str(cache_dir / "discovery.json")))  # type: ignore[no-untyped-call]
    except BaseException:
        shutil.rmtree(cache_dir, ignore_errors=True)
        raise
    return ClusterClient(api, dynamic, str(api.configuration.host), context, cache_dir)


def connect(kubeconfig: str | Path | None = None, context: str | None = None) -> ClusterClient:
    """A client for the cluster a kubeconfig (or `$KUBECONFIG`, `~/.kube/config`, in-cluster) names."""
    path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or ""
    files = [p for p in path.split(os.pathsep) if p] if path else [str(Path.home() / ".kube" / "config")]
    existing = [f for f in files if Path(f).expanduser().is_file()]
    if not existing:
        if kubeconfig or context or os.environ.get("KUBECONFIG") or not os.environ.get(IN_CLUSTER_HOST):
            raise KubeconfigError(f"no kubeconfig found at {os.pathsep.join(files)}; pass --kubeconfig, "
                                  "set KUBECONFIG, or run inside a cluster")
        return _in_cluster()
    joined = os.pathsep.join(existing)
    try:
        contexts, current = config.list_kube_config_contexts(config_file=joined)  # type: ignore[no-untyped-call]
    except ConfigException as err:
        raise KubeconfigError(f"kubeconfig {joined}: {err}") from None
    names = [str(c.get("name")) for c in contexts or []]
    chosen = context or (str(current.get("name")) if current else "")
    if not chosen:
        raise KubeconfigError(f"kubeconfig {joined} sets no current-context; pass --context "
                              f"(contexts: {', '.join(names) or 'none'})")
    if chosen not in names:
        raise KubeconfigError(f"kubeconfig {joined} has no context '{chosen}'{did_you_mean(chosen, names)}")
    try:
        api = config.new_client_from_config(config_file=joined, context=chosen)  # type: ignore[no-untyped-call]
    except ConfigException as err:
        raise KubeconfigError(f"kubeconfig {joined}, context '{chosen}': {err}") from None
    return client_for(api, context=chosen)


def impersonating(client: ClusterClient, namespace: str, service_account: str) -> ClusterClient:
    """A client acting as a Kustomization's `serviceAccountName` (Flux's multi-tenancy lockdown):
    every request carries `Impersonate-User: system:serviceaccount:<ns>:<name>`, so the API
    server's RBAC decides what that account may apply. Close it after use."""
    configuration = copy.copy(client.api.configuration)
    api = kube.ApiClient(configuration)
    api.set_default_header("Impersonate-User",  # type: ignore[no-untyped-call]
                           f"system:serviceaccount:{namespace}:{service_account}")
    return client_for(api, context=f"{client.context} as {namespace}/{service_account}")


def _in_cluster() -> ClusterClient:
    configuration = kube.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as err:
        raise ClusterError(f"in-cluster configuration: {err}") from None
    return client_for(kube.ApiClient(configuration), context="in-cluster")


def _guarded(doing: str, call: Callable[[], Any]) -> Any:
    """Run one API call, turning transport failures into a ClusterError (never a traceback)."""
    try:
        return call()
    except urllib3.exceptions.HTTPError as err:
        raise ClusterError(f"cannot {doing}: the API server is unreachable ({type(err).__name__})") from err
    except ApiException as err:
        if err.status in (401, 403):
            raise ClusterError(f"cannot {doing}: the API server answered {err.status} "
                               f"({'unauthorized' if err.status == 401 else 'forbidden'})") from None
        raise


def wrap_api_error(err: ApiException, subject: str, *, secret: bool = False) -> ApiError:
    return api_error(int(err.status or 0), err.body, subject, secret=secret)


def resource(client: ClusterClient, api_version: str, kind: str, subject: str = "") -> Resource:
    """The API resource serving `kind` in `api_version`; refreshes discovery once when unknown."""
    try:
        found: Resource = _guarded(f"discover {kind}", lambda: client.dynamic.resources.get(
            api_version=api_version, kind=kind))
    except (ResourceNotFoundError, ResourceNotUniqueError):
        raise ApiError(f"{subject or kind}: the server has no kind {kind} in {api_version}",
                       status=404) from None
    except ApiException as err:
        raise wrap_api_error(err, f"{subject or kind}: discovery") from None
    return found


@dataclass
class Kinds:
    """Each kind's API resource, looked up once: the dynamic client walks its discovery cache
    on every lookup, and a sync asks about the same few kinds a thousand times. Only kinds the
    server serves are remembered, so a kind whose definition a sync has just created is found
    by the next lookup. Keep one per sync: a kind removed later would otherwise be remembered."""

    client: ClusterClient
    _found: dict[tuple[str, str], Resource] = field(default_factory=dict, repr=False)

    def resource(self, api_version: str, kind: str, subject: str = "") -> Resource:
        key = (api_version, kind)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = resource(self.client, api_version, kind, subject)
        return found


def _resource_of(client: ClusterClient, kinds: Kinds | None, api_version: str, kind: str,
                 subject: str) -> Resource:
    if kinds is not None:
        return kinds.resource(api_version, kind, subject)
    return resource(client, api_version, kind, subject)


def read_object(client: ClusterClient, api_version: str, kind: str, namespace: str,
                name: str, *, kinds: Kinds | None = None) -> dict[str, Any] | None:
    """The live object, or None when it does not exist (nor does its kind)."""
    subject = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
    try:
        res = _resource_of(client, kinds, api_version, kind, subject)
    except ApiError:
        return None
    try:
        answer = _guarded(f"read {subject}", lambda: client.dynamic.get(  # type: ignore[no-untyped-call]
            res, name=name, namespace=namespace if res.namespaced else None, serialize=False,
            _request_timeout=REQUEST_TIMEOUT))
    except ApiException as err:
        if err.status == 404:
            return None
        raise wrap_api_error(err, subject) from None
    live: dict[str, Any] = json.loads(answer.data)
    return live


def list_labelled(client: ClusterClient, api_version: str, kind: str, namespace: str,
                  labels: Mapping[str, str], *, kinds: Kinds | None = None) -> dict[str, dict[str, Any]]:
    """The live objects of a kind (in `namespace`, for a namespaced kind) carrying every one of
    `labels`, by name, each as a GET would return it; one request for all of them.

    Empty when the kind is unknown or the list fails (a 403 where a GET is allowed, say): the
    caller reads what it misses one by one, and those reads report any real error.
    """
    subject = f"{kind} in {namespace}" if namespace else kind
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    try:
        res = _resource_of(client, kinds, api_version, kind, subject)
        answer = _guarded(f"list {subject}", lambda: client.dynamic.get(  # type: ignore[no-untyped-call]
            res, namespace=namespace if res.namespaced else None, label_selector=selector,
            serialize=False, _request_timeout=REQUEST_TIMEOUT))
    except (GitwardError, ApiException):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for item in json.loads(answer.data).get("items") or []:
        # a list's items leave out apiVersion and kind; a GET's answer has them first
        live: dict[str, Any] = {"apiVersion": api_version, "kind": kind, **item}
        found[str(live.get("metadata", {}).get("name", ""))] = live
    return found


def dry_run_apply(client: ClusterClient, manifest: Manifest, *, force: bool = True,
                  kinds: Kinds | None = None) -> dict[str, Any]:
    """What a server-side apply of `manifest` would leave, defaults and other managers' fields
    included, without storing anything. Raises ApiError (422 invalid, immutable field...)."""
    res = _resource_of(client, kinds, manifest.api_version, manifest.kind, describe(manifest))
    secret = manifest.group == "" and manifest.kind == "Secret"
    try:
        answer = _guarded(f"dry-run {manifest.id}", lambda: client.dynamic.server_side_apply(  # type: ignore[no-untyped-call]
            res, body=manifest.body, namespace=manifest.namespace if res.namespaced else None,
            field_manager=FIELD_MANAGER, force_conflicts=force, dry_run="All", serialize=False,
            _request_timeout=REQUEST_TIMEOUT))
    except ApiException as err:
        raise wrap_api_error(err, describe(manifest), secret=secret) from None
    merged: dict[str, Any] = json.loads(answer.data)
    return merged


def is_namespaced(client: ClusterClient, manifest: Manifest, *, kinds: Kinds | None = None) -> bool:
    return bool(_resource_of(client, kinds, manifest.api_version, manifest.kind, describe(manifest)).namespaced)


@dataclass(frozen=True)
class HealthReport:
    """An object's health when waiting ended."""

    target: HealthCheck
    health: Health

    @property
    def subject(self) -> str:
        t = self.target
        return f"{t.kind}/{t.namespace}/{t.name}" if t.namespace else f"{t.kind}/{t.name}"

    def __str__(self) -> str:
        return f"{self.subject}: {self.health.status.value}: {self.health.message}"

    def to_json(self) -> dict[str, object]:
        return {"object": self.subject, "apiVersion": self.target.api_version,
                "status": self.health.status.value, "message": self.health.message}


def _health(client: ClusterClient, target: HealthCheck) -> Health:
    return assess(read_object(client, target.api_version, target.kind, target.namespace, target.name))


def wait_healthy(client: ClusterClient, targets: Sequence[HealthCheck], *, timeout: float,
                 interval: float = 2.0) -> tuple[HealthReport, ...]:
    """Poll each target until all are current or `timeout` seconds pass; the last reading of each.

    A target that is current is not read again; an API error on a read counts as not ready.
    """
    deadline = time.monotonic() + timeout
    latest: dict[HealthCheck, Health] = {}
    while True:
        for target in targets:
            if target in latest and latest[target].ready:
                continue
            try:
                latest[target] = _health(client, target)
            except ApiError as err:
                latest[target] = Health(assess(None).status, str(err))
        pending = [t for t in targets if not latest[t].ready]
        if not pending or time.monotonic() >= deadline:
            return tuple(HealthReport(t, latest[t]) for t in targets)
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def wait_gone(client: ClusterClient, api_version: str, kind: str, namespace: str, name: str, *,
              timeout: float, interval: float = 1.0) -> bool:
    """Poll until the object no longer exists (finalizers done); False on timeout."""
    deadline = time.monotonic() + timeout
    while read_object(client, api_version, kind, namespace, name) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True

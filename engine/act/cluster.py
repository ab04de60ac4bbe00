"""Writing to a Kubernetes cluster: server-side apply as `gitward`, and deletes.

The only module that changes cluster state. It is handed the `DynamicClient` of an
observe-side `ClusterClient` (act and observe are siblings and do not import each other).
Applies force conflicts, as Flux does: gitward's manifest wins over another manager's value
for every field it sets, and fields it does not set stay with whoever set them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError
from kubernetes.dynamic.resource import Resource

from engine.evaluate.apply import describe
from engine.kubeapi import FIELD_MANAGER, REQUEST_TIMEOUT, ApiError, api_error
from engine.model import Manifest


def _call(subject: str, call: Callable[[], Any], *, secret: bool = False) -> Any:
    try:
        return call()
    except ApiException as err:
        raise api_error(int(err.status or 0), err.body, subject, secret=secret) from None
    except urllib3.exceptions.HTTPError as err:
        raise ApiError(f"{subject}: the API server is unreachable ({type(err).__name__})",
                       status=0) from err


def _resource(dynamic: DynamicClient, api_version: str, kind: str, subject: str) -> Resource:
    try:
        found: Resource = _call(subject, lambda: dynamic.resources.get(api_version=api_version, kind=kind))
    except (ResourceNotFoundError, ResourceNotUniqueError):
        raise ApiError(f"{subject}: the server has no kind {kind} in {api_version}", status=404) from None
    return found


def apply_object(dynamic: DynamicClient, manifest: Manifest) -> dict[str, Any]:
    """Server-side apply `manifest` as field manager `gitward`, forcing conflicts; the stored object."""
    subject = describe(manifest)
    res = _resource(dynamic, manifest.api_version, manifest.kind, subject)
    answer = _call(subject, lambda: dynamic.server_side_apply(  # type: ignore[no-untyped-call]
        res, body=manifest.body, namespace=manifest.namespace if res.namespaced else None,
        field_manager=FIELD_MANAGER, force_conflicts=True, serialize=False,
        _request_timeout=REQUEST_TIMEOUT), secret=manifest.group == "" and manifest.kind == "Secret")
    stored: dict[str, Any] = json.loads(answer.data)
    return stored


def delete_object(dynamic: DynamicClient, api_version: str, kind: str, namespace: str, name: str) -> bool:
    """Delete an object, its dependents in the background; False when it was already gone."""
    subject = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
    try:
        res = _resource(dynamic, api_version, kind, subject)
    except ApiError as err:
        if err.status == 404:
            return False
        raise
    try:
        _call(subject, lambda: dynamic.delete(  # type: ignore[no-untyped-call]
            res, name=name, namespace=namespace if res.namespaced else None,
            propagation_policy="Background", serialize=False, _request_timeout=REQUEST_TIMEOUT))
    except ApiError as err:
        if err.status == 404:
            return False
        raise
    return True

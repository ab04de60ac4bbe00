"""Secrets a Flux object names, put into the real API server, and the check that their values
reach no output, event or store row.

A test that hands gitward a private key, a passphrase or a proxy password calls `nowhere` with
those values and everything gitward said (its stdout and stderr, its log) and the state store
file: none may hold a value, as typed or base64-encoded.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from pathlib import Path

from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

CONFLICT = 409


def put_secret(api: kube.ApiClient, namespace: str, name: str, data: Mapping[str, str | bytes],
               type_: str = "Opaque") -> None:
    """Create Secret `namespace/name` (and its namespace, when missing) holding `data`."""
    core = kube.CoreV1Api(api)
    try:
        core.create_namespace(kube.V1Namespace(metadata=kube.V1ObjectMeta(name=namespace)))
    except ApiException as err:
        if err.status != CONFLICT:
            raise
    encoded = {key: base64.b64encode(value.encode() if isinstance(value, str) else value).decode()
               for key, value in data.items()}
    core.create_namespaced_secret(namespace, kube.V1Secret(
        metadata=kube.V1ObjectMeta(name=name), type=type_, data=encoded))


def nowhere(secrets: Iterable[str | bytes], texts: Iterable[str], state: Path) -> None:
    """Fail when a secret value appears in any of `texts` or in the bytes of the store `state`."""
    said = "\n".join(texts)
    stored = state.read_bytes() if state.is_file() else b""
    for secret in secrets:
        raw = secret.encode() if isinstance(secret, str) else secret
        assert raw, "an empty secret proves nothing"
        for form in (raw, base64.b64encode(raw)):
            assert form.decode() not in said, f"a secret ({len(raw)} bytes) was shown"
            assert form not in stored, f"a secret ({len(raw)} bytes) reached the store {state}"

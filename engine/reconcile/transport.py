"""The Secrets an object names for its connection and its commits, read from the cluster as
Flux reads them.

An ImageRepository or an OCIRepository reaches its registry with the TLS material of its
`certSecretRef` and through the proxy of its `proxySecretRef`; a GitRepository (and the
automations that push to it) through the proxy of its `proxySecretRef`; an automation signs its
commits with the key of its `spec.git.commit.signingKey` (`git.asc`, and `passphrase` when the
key is protected). Each Secret lives in the object's namespace. A Secret gitward cannot read,
because no cluster is configured, fails the operation with a message saying so: gitward never
connects, or pushes, without what the object asks for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Union

from engine.act.signing import SigningKey
from engine.model import GitSource, ImageRepository, ImageUpdate, OCISource, Rule
from engine.observe.transport import (
    SecretError,
    SecretReader,
    Transport,
    proxy_from_secret,
    secret_data,
    tls_from_secret,
)

Reaching = Union[ImageRepository, OCISource, GitSource, ImageUpdate]
"""An object that names Secrets for its connection or its commits."""


def names_secrets(rules: Iterable[Rule]) -> bool:
    """Whether any of `rules` names a Secret gitward reads from the cluster (a command connects
    to one only then)."""
    for rule in rules:
        if isinstance(rule, (ImageRepository, OCISource)) and (
                rule.secret_ref or rule.cert_secret_ref or rule.proxy_secret_ref):
            return True
        if isinstance(rule, GitSource) and rule.proxy_secret_ref:
            return True
        if isinstance(rule, ImageUpdate) and rule.signing_key_secret:
            return True
    return False


def read_named(rule: Reaching, field: str, name: str,
               read_secret: SecretReader | None) -> tuple[dict[str, object] | None, str, str]:
    """(the Secret `field` names, "Secret ns/name", "the Kind's field"), or SecretError when no
    cluster is configured to read it from."""
    source = f"Secret {rule.namespace}/{name}"
    referrer = f"the {rule.KIND}'s {field}"
    if read_secret is None:
        raise SecretError(f"{rule.KIND} {rule.key.ref}: {field} names {source}, which gitward reads "
                          "from the cluster, and none is configured (--kubeconfig, --context or "
                          "KUBECONFIG)")
    return read_secret(rule.namespace, name), source, referrer


def registry_transport(rule: ImageRepository | OCISource,
                       read_secret: SecretReader | None) -> Transport:
    """The TLS material and proxy an image repository or OCI source reaches its registry with."""
    tls = proxy = None
    if rule.cert_secret_ref:
        tls = tls_from_secret(*read_named(rule, "spec.certSecretRef", rule.cert_secret_ref, read_secret),
                              deprecated_keys=isinstance(rule, ImageRepository))
    if rule.proxy_secret_ref:
        proxy = proxy_from_secret(*read_named(rule, "spec.proxySecretRef", rule.proxy_secret_ref,
                                              read_secret))
    return Transport(tls, proxy)


def git_transport(source: GitSource, read_secret: SecretReader | None) -> Transport:
    """The proxy a git source is fetched through, and its automations push through (as Flux's
    image-automation-controller takes it from the GitRepository)."""
    if not source.proxy_secret_ref:
        return Transport()
    return Transport(proxy=proxy_from_secret(*read_named(source, "spec.proxySecretRef",
                                                         source.proxy_secret_ref, read_secret)))


def signing_key(update: ImageUpdate, read_secret: SecretReader | None) -> SigningKey:
    """The key an automation signs its commits with: the armored `git.asc` of its signingKey
    Secret, and its `passphrase` (as written: a passphrase may end in white space)."""
    secret, source, referrer = read_named(update, "spec.git.commit.signingKey",
                                          update.signing_key_secret, read_secret)
    data = secret_data(secret, source, referrer)
    if not data.get("git.asc"):
        raise SecretError(f"{source} ({referrer}) has no git.asc (an ASCII-armored OpenPGP key)")
    try:
        passphrase = data.get("passphrase", b"").decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{source}: passphrase is not UTF-8 text") from None
    return SigningKey(source, data["git.asc"], passphrase)

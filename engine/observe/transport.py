"""How gitward reaches a registry or a git server, as the Secrets a Flux object names say.

`certSecretRef` gives TLS material: a CA to trust (`ca.crt`) and a client certificate with its key
(`tls.crt`, `tls.key`); an ImageRepository also reads the keys Flux deprecated (`caFile`,
`certFile`, `keyFile`). `proxySecretRef` gives a proxy: `address`, and `username` and `password`
when it asks for Basic auth. The keys are Flux's (source-controller, image-reflector-controller).

A `Transport` holds what they give; engine/observe/httpclient.py makes a registry's HTTP client
of one (httpx is imported there, so reading the Secrets does not load it). Nothing here shows a
secret in `repr` or in a message.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

from engine.errors import UserError

SecretReader = Callable[[str, str], "dict[str, object] | None"]
"""Reads a Secret (namespace, name) from the cluster, when one is configured."""

TLS_TYPES = ("Opaque", "kubernetes.io/tls")
"""The Secret types Flux accepts for a certSecretRef."""
PROXY_SCHEMES = ("http", "https", "socks5")
"""The proxy addresses Flux accepts; a registry client takes http and https ones."""


class SecretError(UserError):
    """A Secret a Flux object names that gitward cannot use: missing, of another type, or
    without the keys Flux documents. The message names the Secret and the key, never a value."""


def secret_data(secret: Mapping[str, object] | None, source: str, referrer: str) -> dict[str, bytes]:
    """The decoded `data` of a live Secret; `source` names it ("Secret ns/name") and `referrer`
    the field that named it ("the ImageRepository's spec.certSecretRef")."""
    if secret is None:
        raise SecretError(f"{source} ({referrer}) does not exist")
    data = secret.get("data")
    found: dict[str, bytes] = {}
    for key, value in (data.items() if isinstance(data, dict) else ()):
        try:
            found[str(key)] = base64.b64decode(str(value), validate=True)
        except (ValueError, binascii.Error):
            raise SecretError(f"{source}: the value of {key} is not base64") from None
    return found


def text_of(data: Mapping[str, bytes], key: str, source: str) -> str:
    """A Secret value that must be UTF-8 text (an address, a user name, a passphrase)."""
    try:
        return data[key].decode("utf-8").strip() if key in data else ""
    except UnicodeDecodeError:
        raise SecretError(f"{source}: {key} is not UTF-8 text") from None


@dataclass(frozen=True)
class TLS:
    """TLS material from a certSecretRef: PEM bytes, any of which may be empty."""

    source: str
    ca: bytes = field(default=b"", repr=False)
    cert: bytes = field(default=b"", repr=False)
    key: bytes = field(default=b"", repr=False)


def tls_from_secret(secret: Mapping[str, object] | None, source: str, referrer: str, *,
                    deprecated_keys: bool = False) -> TLS:
    """`ca.crt`, `tls.crt` and `tls.key` (with `deprecated_keys`, also `caFile`, `certFile`,
    `keyFile`, which the newer keys win over)."""
    data = secret_data(secret, source, referrer)
    kind = secret.get("type", "Opaque") if secret is not None else "Opaque"
    if kind not in TLS_TYPES:
        raise SecretError(f"{source} ({referrer}) is of type {kind!r}, not Opaque or kubernetes.io/tls")

    def pem(key: str, old: str) -> bytes:
        return data.get(key) or (data.get(old, b"") if deprecated_keys else b"")

    tls = TLS(source, pem("ca.crt", "caFile"), pem("tls.crt", "certFile"), pem("tls.key", "keyFile"))
    if not (tls.ca or tls.cert or tls.key):
        raise SecretError(f"{source} ({referrer}) holds neither ca.crt nor tls.crt and tls.key")
    if bool(tls.cert) != bool(tls.key):
        given, missing = ("tls.crt", "tls.key") if tls.cert else ("tls.key", "tls.crt")
        raise SecretError(f"{source} ({referrer}) holds {given} without {missing}")
    return tls


@dataclass(frozen=True)
class Proxy:
    """A proxy from a proxySecretRef: its address, and Basic credentials when it asks for them."""

    source: str
    address: str
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def scheme(self) -> str:
        return urlsplit(self.address).scheme

    def url(self) -> str:
        """The address with the credentials in it, as git's `http.proxy` takes them."""
        parts = urlsplit(self.address)
        if not (self.username or self.password):
            return self.address
        userinfo = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never appear in a message: the password, as typed and quoted,
        the URL carrying it, and the Basic header value made of it."""
        if not self.password:
            return ()
        pair = f"{self.username}:{self.password}".encode()
        return (self.password, quote(self.password, safe=""), self.url(),
                base64.b64encode(pair).decode("ascii"))


def proxy_from_secret(secret: Mapping[str, object] | None, source: str, referrer: str) -> Proxy:
    """`address` (required: a URL of scheme http, https or socks5), `username`, `password`."""
    data = secret_data(secret, source, referrer)
    address = text_of(data, "address", source)
    if not address:
        raise SecretError(f"{source} ({referrer}) has no address")
    parts = urlsplit(address)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise SecretError(f"{source}: address must be a URL such as http://proxy.example.com:3128 "
                          f"(scheme {', '.join(PROXY_SCHEMES)})")
    if parts.username or parts.password:
        raise SecretError(f"{source}: address carries credentials: give them as username and password")
    return Proxy(source, address, text_of(data, "username", source), text_of(data, "password", source))


@dataclass(frozen=True)
class Transport:
    """How to reach one server: the TLS material and the proxy its object's Secrets give."""

    tls: TLS | None = None
    proxy: Proxy | None = None

    def secrets(self) -> tuple[str, ...]:
        return self.proxy.secrets() if self.proxy is not None else ()

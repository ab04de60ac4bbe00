"""The HTTP client a registry session uses, made from a `Transport` (engine/observe/transport.py).

`registry_client` trusts the CAs httpx trusts by default (certifi, or SSL_CERT_FILE) plus the
Secret's CA, so a token service on a public host still verifies; it presents the client
certificate; it goes through the proxy, which replaces the environment's (`HTTPS_PROXY`) as
Flux's does. Every answer a registry client gets is passed to the hooks `observing_answers`
holds (the metrics of `gitward run`). httpx is imported here and not beside the Secrets' parsing: a command that never
talks to a registry (`check`, `get`) does not load it.
"""

from __future__ import annotations

import functools
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from engine.observe.transport import TLS, SecretError, Transport


AnswerHook = Callable[[str, int], None]
"""Told of each registry answer: the host (`host[:port]`, as in an image name) and the status."""

_hooks: list[AnswerHook] = []


@contextmanager
def observing_answers(hook: AnswerHook) -> Iterator[None]:
    """Tell `hook` of every answer the registry clients made in the block get (a process-wide
    setting: `gitward run` sets it once, around its loop)."""
    _hooks.append(hook)
    try:
        yield
    finally:
        _hooks.remove(hook)


def _answered(response: httpx.Response) -> None:
    host = response.request.url.netloc.decode("ascii", "replace")
    for hook in tuple(_hooks):
        hook(host, response.status_code)


def registry_client(transport: Transport) -> httpx.Client:
    """An HTTP client for a registry session: TLS trust, client certificate and proxy as the
    transport says, the environment's settings otherwise. The caller closes it."""
    proxy = transport.proxy
    if proxy is not None and proxy.scheme not in ("http", "https"):
        raise SecretError(f"{proxy.source}: gitward reaches registries through http and https "
                          f"proxies only, not {proxy.scheme}")
    context = _ssl_context(transport.tls)
    through = None
    if proxy is not None:
        auth = (proxy.username, proxy.password) if proxy.username or proxy.password else None
        through = httpx.Proxy(proxy.address, auth=auth)
    return httpx.Client(verify=context, proxy=through, event_hooks={"response": [_answered]})


@functools.cache
def _default_context() -> ssl.SSLContext:
    """The system trust store, loaded once per process: loading it takes ~60 ms, which a pass
    over hundreds of image repositories would otherwise pay per repository. A context is safe to
    share; nothing is loaded into it after this."""
    return httpx.create_ssl_context()


def _ssl_context(tls: TLS | None) -> ssl.SSLContext:
    if tls is None:
        return _default_context()
    context = httpx.create_ssl_context()
    if tls.ca:
        try:
            context.load_verify_locations(cadata=tls.ca.decode("ascii"))
        except (ssl.SSLError, ValueError, UnicodeDecodeError):
            raise SecretError(f"{tls.source}: ca.crt is not a PEM certificate") from None
    if tls.cert:
        load_client_certificate(context, tls)
    return context


def load_client_certificate(context: ssl.SSLContext, tls: TLS) -> None:
    """Python's ssl reads a certificate chain from files only: the PEMs are written to a private
    temporary directory, read, and removed at once."""
    with tempfile.TemporaryDirectory(prefix="gitward-tls-") as directory:
        cert, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        for path, data in ((cert, tls.cert), (key, tls.key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
        try:
            context.load_cert_chain(str(cert), str(key))
        except (ssl.SSLError, ValueError):
            raise SecretError(f"{tls.source}: tls.crt and tls.key are not a PEM certificate and "
                              "its unencrypted key") from None

"""Talking to an OCI registry the way real registries expect it: one session per operation.

A `RegistrySession` answers Bearer and Basic challenges with a token fetched for its repository
alone (pull scope), retries only what can heal (429, 5xx, broken connections) honouring
`Retry-After`, and bounds the whole operation by one deadline. Tag listings
(engine/observe/registry.py) and artifact pulls (engine/observe/oci.py) both go through it. No
secret (password, token, Authorization header, URL userinfo) ever reaches a message or a log line.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from engine.clock import utcnow
from engine.errors import RetryableError
from engine.observe.dockerconfig import Credentials

log = logging.getLogger(__name__)

USER_AGENT = "gitward"
MAX_RETRY_WAIT = 60.0
"""A `Retry-After` longer than this ends the operation with a temporary error carrying the delay."""
MAX_ERROR_BODY = 64 * 1024
"""Bytes of an error answer read for its message; the rest is dropped."""


class RegistryError(RetryableError):
    """A listing that failed. `permanent` failures need a fix; temporary ones heal on retry.

    `retry_after` is the registry's requested delay in seconds when it gave one.
    """

    def __init__(
        self, message: str, *, permanent: bool, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, permanent=permanent)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class ImageName:
    """A repository on a registry: `registry` is the API host[:port], `insecure` means plain HTTP."""

    registry: str
    repository: str
    insecure: bool = False

    @property
    def base_url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.registry}"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


def redact_url(url: str) -> str:
    """The URL (or image reference) with any `user:password@` replaced by `***@`."""
    if "://" in url:
        return re.sub(r"(?<=://)[^/@?#]*@", "***@", url, count=1)
    return re.sub(r"^[^/@]*@(?=[^/]*/)", "***@", url, count=1)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A `Retry-After` header (delta-seconds or HTTP-date) as seconds from `now`; None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """A `WWW-Authenticate` value as (lower-case scheme, params): `Bearer realm="..",service=".."`."""
    scheme, _, rest = value.strip().partition(" ")
    params = {
        key.lower(): quoted if quoted or not bare else bare
        for key, quoted, bare in re.findall(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))', rest)
    }
    return scheme.lower(), params


class RegistrySession:
    """One operation on one repository: its deadline, its token, the secrets to keep out of messages.

    `doing` names the operation for timeouts ("listing the tags of ghcr.io/a/b"); `request`
    names it for refusals ("the tag listing of a/b"). The `client` supplies TLS trust and proxies
    (`hidden` are the secrets it holds, a proxy's password); the session keeps no token beyond
    its own life.
    """

    def __init__(self, image: ImageName, credentials: Credentials | None, client: httpx.Client,
                 timeout: float, retries: int, *, doing: str, request: str,
                 hidden: Collection[str] = ()) -> None:
        self.image = image
        self.credentials = credentials
        self.client = client
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.retries = retries
        self.doing = doing
        self.request = request
        self.authorization: str | None = None
        self.secrets: list[str] = [*(credentials.secrets() if credentials else ()), *hidden]
        """What no message may show: the credentials', the client's (a proxy password), tokens."""

    @property
    def remaining(self) -> float:
        """Seconds left before the operation's deadline."""
        return self.deadline - time.monotonic()

    def fetch(self, url: httpx.URL, *, accept: str = "application/json", expect: Collection[int] = (200,),
              stream: bool = False, method: str = "GET") -> httpx.Response:
        """GET (or HEAD) a registry URL, authenticating once on a 401: a response whose status is
        in `expect` (the caller closes it when `stream`), or a RegistryError."""
        response = self.send(method, url, headers=self.auth_headers(accept), stream=stream)
        if response.status_code == 401:
            response.close()
            self.authenticate(response)
            response = self.send(method, url, headers=self.auth_headers(accept), stream=stream)
        if response.status_code in expect:
            return response
        _drain(response)
        raise self.refusal(response)

    def auth_headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept}
        if self.authorization:
            headers["Authorization"] = self.authorization
        return headers

    def authenticate(self, response: httpx.Response) -> None:
        challenges = [parse_challenge(v) for v in response.headers.get_list("www-authenticate")]
        bearer = next((p for s, p in challenges if s == "bearer"), None)
        if bearer is not None:
            token = self.token(bearer)
            self.secrets.append(token)
            self.authorization = f"Bearer {token}"
            return
        if any(s == "basic" for s, _ in challenges):
            creds = self.credentials
            if creds is None or not (creds.username or creds.password):
                raise self.needs_credentials(response)
            self.authorization = _basic(creds)
            return
        raise self.needs_credentials(response)

    def token(self, challenge: dict[str, str]) -> str:
        """A pull token for this repository from the challenge's realm (docker token spec)."""
        registry = self.image.registry
        realm = challenge.get("realm", "")
        realm_url = httpx.URL(realm) if realm else None
        if realm_url is None or realm_url.scheme not in ("http", "https") or not realm_url.host:
            raise self.fail(f"registry {registry} sent a Bearer challenge without a usable realm", permanent=True)
        creds = self.credentials
        if creds is not None and realm_url.scheme == "http" and not self.image.insecure:
            raise self.fail(
                f"registry {registry} asks for credentials at a plain-HTTP token service "
                f"({redact_url(realm)}); gitward sends credentials over plain HTTP only when the "
                "image is marked insecure",
                permanent=True,
            )
        form = {"scope": f"repository:{self.image.repository}:pull"}
        if challenge.get("service"):
            form["service"] = challenge["service"]
        if creds is not None and creds.identity_token:
            form |= {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "gitward"}
            response = self.send("POST", realm_url, data=form)
        else:
            headers: dict[str, str] = {}
            if creds is not None and (creds.username or creds.password):
                form["account"] = creds.username
                headers["Authorization"] = _basic(creds)
            response = self.send("GET", realm_url.copy_merge_params(form), headers=headers)
        if response.status_code in (401, 403):
            raise self.needs_credentials(response, at_token_service=True)
        if response.status_code != 200:
            raise self.fail(
                f"token service of registry {registry} answered {status_text(response)} "
                f"for repository {self.image.repository}",
                permanent=True,
                status=response.status_code,
            )
        try:
            doc = response.json()
        except ValueError as err:
            raise self.fail(f"token service of registry {registry} sent invalid JSON", permanent=True) from err
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise self.fail(f"token service of registry {registry} sent no token", permanent=True)
        return token

    def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request, retried on 429, 5xx and broken connections; any other answer is returned
        (unread when `stream`)."""
        attempt = 0
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise self.fail(self.timed_out(), permanent=False)
            failure: RegistryError
            try:
                request = self.client.build_request(
                    method, url, headers={"User-Agent": USER_AGENT, **(headers or {})}, data=data,
                    timeout=remaining)
                response = self.client.send(request, stream=stream, follow_redirects=True)
            except httpx.TimeoutException as err:
                failure = self.fail(self.timed_out(), permanent=False)
                failure.__cause__ = err
            except httpx.TransportError as err:
                if _tls_verification_failed(err):
                    raise self.fail(
                        f"the TLS certificate of {_host(url)} could not be verified: {err}; give gitward "
                        "the registry's CA certificate (spec.certSecretRef: a Secret with ca.crt)",
                        permanent=True,
                    ) from err
                if isinstance(err, httpx.ProxyError):  # the proxy answered CONNECT with a refusal
                    raise self.fail(f"the proxy refused to connect to {self.what(url)} ({err})",
                                    permanent=True) from err
                failure = self.fail(
                    f"cannot reach {self.what(url)}: {str(err) or type(err).__name__} "
                    f"({attempt + 1} attempt{'s' if attempt else ''})",
                    permanent=False,
                )
                failure.__cause__ = err
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                _drain(response)
                wait = retry_after_seconds(response.headers.get("retry-after"), utcnow())
                verb = "is rate-limiting requests" if response.status_code == 429 else "is failing"
                failure = self.fail(
                    f"{self.what(url)} {verb} ({status_text(response)}; {attempt + 1} "
                    f"attempt{'s' if attempt else ''})",
                    permanent=False,
                    status=response.status_code,
                    retry_after=wait,
                )
            delay = failure.retry_after if failure.retry_after is not None else min(0.5 * 2**attempt, 8.0)
            if attempt >= self.retries or delay > MAX_RETRY_WAIT or time.monotonic() + delay >= self.deadline:
                raise failure
            log.debug("retrying %s %s in %.1fs: %s", method, redact_url(str(url.copy_with(query=None))), delay, failure)
            time.sleep(delay)
            attempt += 1

    # Messages ----------------------------------------------------------------------------------

    def fail(
        self, message: str, *, permanent: bool, status: int | None = None, retry_after: float | None = None
    ) -> RegistryError:
        for secret in self.secrets:
            message = message.replace(secret, "***")
        return RegistryError(message, permanent=permanent, status=status, retry_after=retry_after)

    def what(self, url: httpx.URL) -> str:
        if _host(url) == self.image.registry:
            return f"registry {self.image.registry}"
        return f"token service {_host(url)} of registry {self.image.registry}"

    def timed_out(self) -> str:
        return f"{self.doing} timed out after {self.timeout:g}s"

    def needs_credentials(self, response: httpx.Response, *, at_token_service: bool = False) -> RegistryError:
        registry, status = self.image.registry, status_text(response)
        creds = self.credentials
        if creds is not None:
            message = f"registry {registry} refused the credentials from {creds.source} ({status})"
        else:
            message = (
                f"registry {registry} requires credentials for repository {self.image.repository} "
                f"({status}); none were given"
            )
        if at_token_service:
            message += f" at its token service {_host(response.url)}"
        return self.fail(message, permanent=True, status=response.status_code)

    def refusal(self, response: httpx.Response) -> RegistryError:
        """The error for a final non-200 answer to a registry request."""
        registry, repo, code = self.image.registry, self.image.repository, response.status_code
        if code == 401:
            return self.needs_credentials(response)
        if code == 407:
            return self.fail(f"the proxy asks for credentials it was not given, or refused those given, "
                             f"to reach registry {registry} ({status_text(response)}): check the "
                             "username and password of the proxySecretRef", permanent=True, status=code)
        if code == 403:
            by = f" with the credentials from {self.credentials.source}" if self.credentials else ""
            return self.fail(
                f"registry {registry} denied access to repository {repo}{by} ({status_text(response)})",
                permanent=True,
                status=code,
            )
        if code == 404:
            return self.fail(
                f"repository {repo} does not exist on registry {registry} ({status_text(response)})",
                permanent=True,
                status=code,
            )
        detail = _registry_message(response)
        return self.fail(
            f"registry {registry} rejected {self.request} ({status_text(response)}{detail})",
            permanent=True,
            status=code,
        )


def read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body of a streamed answer, or None when it is longer than `limit`."""
    body = b""
    for chunk in response.iter_bytes(1 << 16):
        body += chunk
        if len(body) > limit:
            return None
    return body


def _drain(response: httpx.Response) -> None:
    """Read an unwanted answer (when small: its body words the refusal) and close it."""
    try:
        size = int(response.headers.get("content-length", "-1"))
        if 0 <= size <= MAX_ERROR_BODY:
            response.read()
    except (ValueError, httpx.HTTPError):
        pass  # the refusal is worded from the status alone
    finally:
        response.close()


def _basic(creds: Credentials) -> str:
    pair = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _host(url: httpx.URL) -> str:
    return f"{url.host}:{url.port}" if url.port else url.host


def _tls_verification_failed(err: BaseException) -> bool:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def error_codes(response: httpx.Response) -> list[str]:
    """The registry's error codes (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, ...) in a read response."""
    return [str(e["code"]) for e in _errors(response) if isinstance(e.get("code"), str)]


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The registry's `{"errors": [{"code", "message"}]}` body, or [] when it sent none."""
    try:
        doc = json.loads(response.content)
    except (ValueError, httpx.ResponseNotRead):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def status_text(response: httpx.Response) -> str:
    """`404 NAME_UNKNOWN`: the status and the registry's error code (or the reason phrase)."""
    codes = error_codes(response)
    word = codes[0] if codes else response.reason_phrase.upper().replace(" ", "_")
    return f"{response.status_code} {word}".strip()


def _registry_message(response: httpx.Response) -> str:
    messages = [str(e["message"]) for e in _errors(response) if isinstance(e.get("message"), str)]
    return f": {messages[0][:200]}" if messages else ""

"""List an image repository's tags from an OCI registry, the way real registries expect it.

`list_tags` follows every `Link` page, answers Bearer and Basic challenges with a token fetched
for this repository alone, and retries only what can heal (429, 5xx, broken connections),
honouring `Retry-After`. It records nothing: it returns the whole list or raises, so a scan that
fails half way never yields a partial list. No secret (password, token, Authorization header,
URL userinfo) ever reaches a message or a log line.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from engine.errors import GitwardError, UserError
from engine.observe.dockerconfig import DOCKER_HUB, DOCKER_HUB_HOSTS, Credentials

log = logging.getLogger(__name__)

USER_AGENT = "gitward"
MAX_RETRY_WAIT = 60.0
"""A `Retry-After` longer than this ends the scan with a temporary error carrying the delay."""

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?")
_MAX_NAME = 255


class ImageNameError(UserError):
    """An image reference that names no repository (a tag, a digest, a scheme, bad characters)."""


class RegistryError(GitwardError):
    """A listing that failed. `permanent` failures need a fix; temporary ones heal on retry.

    `retry_after` is the registry's requested delay in seconds when it gave one.
    """

    def __init__(
        self, message: str, *, permanent: bool, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
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


@dataclass(frozen=True)
class TagList:
    """Every tag a registry listed for one repository, in listing order, and how many pages it took."""

    image: ImageName
    tags: tuple[str, ...]
    pages: int


def parse_image(image: str, insecure: bool = False) -> ImageName:
    """An image reference without tag or digest, with Docker Hub's implicit names filled in.

    `nginx` -> registry-1.docker.io/library/nginx; `ghcr.io/o/a`; `localhost:5000/app`.
    """
    text = image.strip()
    shown = redact_url(text)
    if not text:
        raise ImageNameError("image must not be empty")
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise ImageNameError(f"image '{shown}' should not start with a URL scheme; remove '{scheme}://'")
    first_slash, at = text.find("/"), text.find("@")
    if 0 <= at < first_slash:
        raise ImageNameError(f"image '{shown}' should not contain credentials; put them in a Secret")
    if at >= 0:
        raise ImageNameError(f"image '{shown}' should not contain a digest; remove '{text[at:]}'")
    head, slash, rest = text.partition("/")
    if slash and ("." in head or ":" in head or head == "localhost"):
        registry, path = head, rest
    else:
        registry, path = DOCKER_HUB, text
    if ":" in path:
        raise ImageNameError(f"image '{shown}' should not contain a tag; remove ':{path.split(':')[1]}'")
    if not _HOST.fullmatch(registry):
        raise ImageNameError(f"image '{shown}' has an invalid registry host '{registry}'")
    if registry.lower() in DOCKER_HUB_HOSTS:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    _check_repository(path, shown)
    return ImageName(registry=registry, repository=path, insecure=insecure)


def _check_repository(path: str, shown: str) -> None:
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            hint = " (repository names are lower-case)" if component.lower() != component else ""
            raise ImageNameError(
                f"image '{shown}' has an invalid repository path component '{component}'{hint}: "
                "use lower-case letters and digits, separated by '.', '_', '__' or '-'"
            )
    if len(path) > _MAX_NAME:
        raise ImageNameError(f"image '{shown}' has a repository name longer than {_MAX_NAME} characters")


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


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)")
_REL = re.compile(r"""\brel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


def next_link(values: list[str]) -> str | None:
    """The target of the `rel="next"` link among `Link` header values (RFC 8288), else None.

    A lone link with no `rel` at all is followed too, as go-containerregistry (Flux) does.
    """
    links: list[tuple[str, set[str] | None]] = []
    for value in values:
        for target, params in _LINK.findall(value):
            rel = _REL.search(params)
            links.append((target.strip(), set((rel.group(1) or rel.group(2)).lower().split()) if rel else None))
    for target, rels in links:
        if rels is not None and "next" in rels:
            return target
    if len(links) == 1 and links[0][1] is None:
        return links[0][0]
    return None


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """A `WWW-Authenticate` value as (lower-case scheme, params): `Bearer realm="..",service=".."`."""
    scheme, _, rest = value.strip().partition(" ")
    params = {
        key.lower(): quoted if quoted or not bare else bare
        for key, quoted, bare in re.findall(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))', rest)
    }
    return scheme.lower(), params


def list_tags(
    image: ImageName,
    *,
    credentials: Credentials | None,
    page_size: int = 1000,
    timeout: float = 30.0,
    retries: int = 3,
    client: httpx.Client | None = None,
) -> TagList:
    """Every tag of `image`, following all pages; raises RegistryError, never returns part of a list.

    `timeout` bounds the whole listing, waits included; `retries` is per request. Pass a `client`
    to supply TLS trust (a CA bundle) or proxies; it is used for this listing's requests only and
    keeps no token afterwards.
    """
    if page_size < 1:
        raise UserError(f"page size must be at least 1, not {page_size}")
    if retries < 0:
        raise UserError(f"retries must not be negative, not {retries}")
    own = client is None
    http = client if client is not None else httpx.Client()
    try:
        return _Listing(image, credentials, http, timeout, retries).run(page_size)
    finally:
        if own:
            http.close()


class _Listing:
    """One listing's state: its deadline, its token, the secrets to keep out of messages."""

    def __init__(
        self, image: ImageName, credentials: Credentials | None, client: httpx.Client, timeout: float, retries: int
    ) -> None:
        self.image = image
        self.credentials = credentials
        self.client = client
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.retries = retries
        self.authorization: str | None = None
        self.secrets: list[str] = list(credentials.secrets()) if credentials else []

    # The page walk ---------------------------------------------------------------------------

    def run(self, page_size: int) -> TagList:
        origin = httpx.URL(self.image.base_url)
        url = httpx.URL(f"{self.image.base_url}/v2/{self.image.repository}/tags/list", params={"n": page_size})
        tags: dict[str, None] = {}
        seen: set[str] = set()
        pages = 0
        while True:
            seen.add(str(url))
            response = self.fetch(url)
            pages += 1
            for tag in self.page_tags(response, pages):
                tags.setdefault(tag)
            target = next_link(response.headers.get_list("link"))
            if target is None:
                return TagList(image=self.image, tags=tuple(tags), pages=pages)
            url = response.url.join(target)
            if (url.scheme, url.host, url.port) != (origin.scheme, origin.host, origin.port):
                raise self.fail(
                    f"registry {self.image.registry} sent a next-page link to another origin "
                    f"({redact_url(str(url))}) after page {pages} of {self.image.repository}; "
                    "gitward follows links only on the registry itself",
                    permanent=True,
                )
            if str(url) in seen:
                raise self.fail(
                    f"registry {self.image.registry} sent a next-page link that repeats an earlier page "
                    f"after page {pages} of {self.image.repository}",
                    permanent=True,
                )

    def page_tags(self, response: httpx.Response, page: int) -> list[str]:
        where = f"registry {self.image.registry} sent an invalid tag list for {self.image.repository} (page {page})"
        try:
            doc = json.loads(response.content)
        except json.JSONDecodeError as err:
            raise self.fail(f"{where}: {err.msg} at byte {err.pos} of {len(response.content)}", permanent=True) from err
        except UnicodeDecodeError as err:
            raise self.fail(f"{where}: not UTF-8 text", permanent=True) from err
        if not isinstance(doc, dict):
            raise self.fail(f"{where}: expected a JSON object", permanent=True)
        tags = doc.get("tags")
        if tags is None:
            return []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise self.fail(f"{where}: 'tags' must be a list of strings", permanent=True)
        return tags

    # Requests, authentication and retries -------------------------------------------------------

    def fetch(self, url: httpx.URL) -> httpx.Response:
        """GET a registry URL, authenticating once on a 401; a 200 response or a RegistryError."""
        response = self.send("GET", url, headers=self.auth_headers())
        if response.status_code == 401:
            self.authenticate(response)
            response = self.send("GET", url, headers=self.auth_headers())
        if response.status_code == 200:
            return response
        raise self.refusal(response)

    def auth_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
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
                f"token service of registry {registry} answered {_status(response)} "
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
    ) -> httpx.Response:
        """One request, retried on 429, 5xx and broken connections; any other answer is returned."""
        attempt = 0
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise self.fail(self.timed_out(), permanent=False)
            failure: RegistryError
            try:
                response = self.client.request(
                    method,
                    url,
                    headers={"User-Agent": USER_AGENT, **(headers or {})},
                    data=data,
                    timeout=remaining,
                    follow_redirects=True,
                )
            except httpx.TimeoutException as err:
                failure = self.fail(self.timed_out(), permanent=False)
                failure.__cause__ = err
            except httpx.TransportError as err:
                if _tls_verification_failed(err):
                    raise self.fail(
                        f"the TLS certificate of {_host(url)} could not be verified: {err}; give gitward "
                        "the registry's CA certificate",
                        permanent=True,
                    ) from err
                failure = self.fail(
                    f"cannot reach {self.what(url)}: {str(err) or type(err).__name__} "
                    f"({attempt + 1} attempt{'s' if attempt else ''})",
                    permanent=False,
                )
                failure.__cause__ = err
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                wait = retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))
                verb = "is rate-limiting requests" if response.status_code == 429 else "is failing"
                failure = self.fail(
                    f"{self.what(url)} {verb} ({_status(response)}; {attempt + 1} "
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
        return f"listing the tags of {self.image} timed out after {self.timeout:g}s"

    def needs_credentials(self, response: httpx.Response, *, at_token_service: bool = False) -> RegistryError:
        registry, status = self.image.registry, _status(response)
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
        if code == 403:
            by = f" with the credentials from {self.credentials.source}" if self.credentials else ""
            return self.fail(
                f"registry {registry} denied access to repository {repo}{by} ({_status(response)})",
                permanent=True,
                status=code,
            )
        if code == 404:
            return self.fail(
                f"repository {repo} does not exist on registry {registry} ({_status(response)})",
                permanent=True,
                status=code,
            )
        detail = _registry_message(response)
        return self.fail(
            f"registry {registry} rejected the tag listing of {repo} ({_status(response)}{detail})",
            permanent=True,
            status=code,
        )


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


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The registry's `{"errors": [{"code", "message"}]}` body, or [] when it sent none."""
    try:
        doc = json.loads(response.content)
    except ValueError:
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _status(response: httpx.Response) -> str:
    """`404 NAME_UNKNOWN`: the status and the registry's error code (or the reason phrase)."""
    codes = [str(e["code"]) for e in _errors(response) if isinstance(e.get("code"), str)]
    word = codes[0] if codes else response.reason_phrase.upper().replace(" ", "_")
    return f"{response.status_code} {word}".strip()


def _registry_message(response: httpx.Response) -> str:
    messages = [str(e["message"]) for e in _errors(response) if isinstance(e.get("message"), str)]
    return f": {messages[0][:200]}" if messages else ""

"""List an image repository's tags from an OCI registry, the way real registries expect it.

`list_tags` follows every `Link` page through a `RegistrySession` (engine/observe/registryhttp.py:
tokens, retries, redaction). It records nothing: it returns the whole list or raises, so a scan
that fails half way never yields a partial list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass

import httpx

from engine.errors import UserError
from engine.observe.dockerconfig import DOCKER_HUB, DOCKER_HUB_HOSTS, Credentials
from engine.observe.registryhttp import (
    ImageName,
    RegistryError,
    RegistrySession,
    parse_challenge,
    redact_url,
    retry_after_seconds,
)

__all__ = [
    "ImageName", "ImageNameError", "RegistryError", "TagList", "list_tags", "next_link",
    "parse_challenge", "parse_image", "redact_url", "retry_after_seconds", "walk_tags",
]

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?")
_MAX_NAME = 255


class ImageNameError(UserError):
    """An image reference that names no repository (a tag, a digest, a scheme, bad characters)."""


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


def list_tags(
    image: ImageName,
    *,
    credentials: Credentials | None,
    page_size: int = 1000,
    timeout: float = 30.0,
    retries: int = 3,
    client: httpx.Client | None = None,
    hidden: Collection[str] = (),
) -> TagList:
    """Every tag of `image`, following all pages; raises RegistryError, never returns part of a list.

    `timeout` bounds the whole listing, waits included; `retries` is per request. Pass a `client`
    to supply TLS trust (a CA bundle) or proxies (`hidden`: the secrets it holds, which no message
    shows); it is used for this listing's requests only and keeps no token afterwards.
    """
    if page_size < 1:
        raise UserError(f"page size must be at least 1, not {page_size}")
    if retries < 0:
        raise UserError(f"retries must not be negative, not {retries}")
    own = client is None
    http = client if client is not None else httpx.Client()
    try:
        session = RegistrySession(image, credentials, http, timeout, retries,
                                  doing=f"listing the tags of {image}",
                                  request=f"the tag listing of {image.repository}", hidden=hidden)
        return walk_tags(session, page_size)
    finally:
        if own:
            http.close()


def walk_tags(session: RegistrySession, page_size: int) -> TagList:
    """Every tag of the session's repository, page by page, on the registry's own origin only."""
    image = session.image
    origin = httpx.URL(image.base_url)
    url = httpx.URL(f"{image.base_url}/v2/{image.repository}/tags/list", params={"n": page_size})
    tags: dict[str, None] = {}
    seen: set[str] = set()
    pages = 0
    while True:
        seen.add(str(url))
        response = session.fetch(url)
        pages += 1
        for tag in _page_tags(session, response, pages):
            tags.setdefault(tag)
        target = next_link(response.headers.get_list("link"))
        if target is None:
            return TagList(image=image, tags=tuple(tags), pages=pages)
        url = response.url.join(target)
        if (url.scheme, url.host, url.port) != (origin.scheme, origin.host, origin.port):
            raise session.fail(
                f"registry {image.registry} sent a next-page link to another origin "
                f"({redact_url(str(url))}) after page {pages} of {image.repository}; "
                "gitward follows links only on the registry itself",
                permanent=True,
            )
        if str(url) in seen:
            raise session.fail(
                f"registry {image.registry} sent a next-page link that repeats an earlier page "
                f"after page {pages} of {image.repository}",
                permanent=True,
            )


def _page_tags(session: RegistrySession, response: httpx.Response, page: int) -> list[str]:
    image = session.image
    where = f"registry {image.registry} sent an invalid tag list for {image.repository} (page {page})"
    try:
        doc = json.loads(response.content)
    except json.JSONDecodeError as err:
        raise session.fail(f"{where}: {err.msg} at byte {err.pos} of {len(response.content)}", permanent=True) from err
    except UnicodeDecodeError as err:
        raise session.fail(f"{where}: not UTF-8 text", permanent=True) from err
    except RecursionError:
        raise session.fail(f"{where}: JSON nested too deep to read", permanent=True) from None
    if not isinstance(doc, dict):
        raise session.fail(f"{where}: expected a JSON object", permanent=True)
    tags = doc.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise session.fail(f"{where}: 'tags' must be a list of strings", permanent=True)
    return tags

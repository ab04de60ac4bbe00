"""The OCI source observer: pull an OCIRepository's artifact as source-controller does.

`pull_artifact` resolves `spec.ref` (digest > semver > tag, else `latest`), fetches the manifest
(an OCI or Docker image manifest: `flux push artifact` writes one whose config is
`application/vnd.cncf.flux.config.v1+json` and whose one layer is
`application/vnd.cncf.flux.content.v1.tar+gzip`), picks the layer (`layerSelector.mediaType`,
else the first), downloads its blob checking the size and sha256 digest the manifest gives, and
unpacks it (operation `extract`, engine/observe/untar.py) or keeps the tarball (`copy`).

The revision is Flux's: `<tag>@sha256:<manifest digest>`, or `sha256:<manifest digest>` for a
digest reference. Artifacts are cached under `cache_dir/oci/<namespace>/<name>-<hash>/`, one
entry per manifest and layer, each renamed into place complete; a pull of an artifact already
there downloads nothing. Every request goes through a `RegistrySession` (tokens, retries,
redaction); every failure is a SourceError with a message free of credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from engine.errors import GitwardError
from engine.model import DEFAULT_OCI_TAG, LayerOperation, OCISource
from engine.observe.dockerconfig import Credentials
from engine.observe.git import SourceError
from engine.observe.registry import parse_image, walk_tags
from engine.observe.registryhttp import ImageName, RegistryError, RegistrySession, read_capped
from engine.observe.untar import ArchiveError, extract
from engine.rules.regex import PatternError, compile_pattern, utf8
from engine.rules.semver import ConstraintError, parse_constraint, parse_version

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST))

SOURCE_ANNOTATION = "org.opencontainers.image.source"
REVISION_ANNOTATION = "org.opencontainers.image.revision"
CREATED_ANNOTATION = "org.opencontainers.image.created"

MAX_MANIFEST_BYTES = 4 << 20
"""The largest manifest read (distribution's own limit)."""
MAX_LAYER_BYTES = 256 << 20
"""The largest layer downloaded; a manifest naming a larger one is refused before any byte."""
KEPT_ENTRIES = 2
"""Cache entries kept per source: the artifact just pulled and the one before (a build may
still be reading it)."""
STALE_AFTER = 3600.0
"""Seconds after which a temporary cache entry is taken for a killed pull's leftover."""
RETRIES = 3
LISTED = 20
"""How many tags a "not found" message lists."""

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Artifact:
    """An OCIRepository's pulled artifact.

    `path` is the unpacked directory (operation extract) or the layer's tarball (copy); `tag`
    is "" for a digest reference; `digest` is the manifest's, `layer_digest` the selected
    layer's. `origin_source`, `origin_revision` and `created` are the manifest's
    org.opencontainers.image.* annotations ("" when absent); `skipped_links` are the symlinks
    left out of the tree.
    """

    source: str
    url: str
    revision: str
    tag: str
    digest: str
    layer_digest: str
    media_type: str
    operation: LayerOperation
    path: Path
    origin_source: str = ""
    origin_revision: str = ""
    created: str = ""
    skipped_links: tuple[str, ...] = ()


def revision_of(tag: str, digest: str) -> str:
    """Flux's OCI revision: `<tag>@<digest>`, or the digest alone for a digest reference."""
    return f"{tag}@{digest}" if tag else digest


def oci_image(source: OCISource) -> ImageName:
    """The repository an `oci://` URL names; SourceError when it names none."""
    url = source.url
    if not url.startswith("oci://"):
        raise SourceError(f"OCIRepository {source.key.ref}: url must start with oci://", permanent=True)
    try:
        return parse_image(url.removeprefix("oci://"), source.insecure)
    except GitwardError as err:
        raise SourceError(f"OCIRepository {source.key.ref}: {err}", permanent=True) from None


def pull_artifact(source: OCISource, *, cache_dir: Path, credentials: Credentials | None = None,
                  client: httpx.Client | None = None, hidden: Collection[str] = ()) -> Artifact:
    """Resolve, fetch, verify and unpack the source's artifact; SourceError on any failure.

    Pass a `client` to supply TLS trust (a CA bundle) or proxies (`hidden`: the secrets it
    holds, which no message shows).
    """
    image = oci_image(source)
    own = client is None
    http = client if client is not None else httpx.Client()
    session = RegistrySession(
        image, credentials, http, source.timeout.total_seconds(), RETRIES,
        doing=f"pulling {image} ({source.ref.describe()})", request=f"the pull of {image.repository}",
        hidden=hidden)
    try:
        return _Pull(source, image, session, _cache_path(cache_dir, source, image)).run()
    except RegistryError as err:
        raise _source_error(err) from None
    except ArchiveError as err:
        raise SourceError(f"the artifact of {image}: {err}", permanent=True) from None
    except OSError as err:
        raise _source_error(session.fail(f"cannot use the cache {cache_dir}: {err}",
                                         permanent=False)) from None
    finally:
        if own:
            http.close()


def cached_artifact(source: OCISource, *, cache_dir: Path, digest: str, layer_digest: str,
                    operation: LayerOperation) -> Path | None:
    """Where a pulled artifact is kept, when it still is (no network): the path an `Artifact`
    of this manifest, layer and operation had."""
    try:
        image = oci_image(source)
    except SourceError:
        return None
    path = _cache_path(cache_dir, source, image) / _entry_name(digest, layer_digest, operation)
    return path if path.exists() else None


def unpacked_root(path: Path, operation: LayerOperation) -> Path:
    """The directory of an artifact's files: `path` itself, or (operation copy) its tarball
    unpacked beside it once, as kustomize-controller unpacks any artifact it applies."""
    if operation is LayerOperation.EXTRACT:
        return path
    root = path.with_name(path.name.removesuffix(".tar.gz") + ".d")
    if not root.is_dir():
        try:
            extract(path, root)
        except ArchiveError as err:
            raise SourceError(f"the artifact {path.name}: {err}", permanent=True) from None
        except FileExistsError:
            pass  # another process unpacked it first
    return root


def _source_error(err: RegistryError) -> SourceError:
    return SourceError(str(err), permanent=err.permanent)


def _cache_path(cache_dir: Path, source: OCISource, image: ImageName) -> Path:
    digest = hashlib.sha256(f"{source.key.ref}\n{image}".encode()).hexdigest()[:12]
    return cache_dir / "oci" / source.namespace / f"{source.name}-{digest}"


@dataclass(frozen=True)
class _Manifest:
    digest: str
    layers: tuple[dict[str, Any], ...]
    annotations: dict[str, str]


class _Pull:
    """One pull of one source through one session."""

    def __init__(self, source: OCISource, image: ImageName, session: RegistrySession,
                 cache: Path) -> None:
        self.source, self.image, self.session, self.cache = source, image, session, cache

    def run(self) -> Artifact:
        tag, reference = self.resolve()
        manifest = self.manifest(tag, reference)
        layer = self.select(manifest)
        layer_digest, media_type = str(layer["digest"]), str(layer.get("mediaType", ""))
        operation = self.source.layer_selector.operation
        path = self.cache / _entry_name(manifest.digest, layer_digest, operation)
        skipped: tuple[str, ...] = ()
        if not path.exists():
            skipped = self.fetch_layer(layer, path, operation)
        os.utime(path)  # the newest entry is kept by the clean-up, whichever pull made it
        self.clean(keep=path)
        notes = manifest.annotations
        return Artifact(
            source=self.source.key.ref, url=self.source.url,
            revision=revision_of(tag, manifest.digest), tag=tag, digest=manifest.digest,
            layer_digest=layer_digest, media_type=media_type, operation=operation, path=path,
            origin_source=notes.get(SOURCE_ANNOTATION, ""),
            origin_revision=notes.get(REVISION_ANNOTATION, ""),
            created=notes.get(CREATED_ANNOTATION, ""), skipped_links=skipped)

    # Which manifest ---------------------------------------------------------------------------

    def resolve(self) -> tuple[str, str]:
        """(the tag, the reference to fetch): digest > semver > tag > `latest`."""
        ref = self.source.ref
        if ref.digest:
            if not _SHA256.fullmatch(ref.digest):
                raise self.fail(f"digest '{ref.digest}' is not a sha256 digest gitward can verify")
            return "", ref.digest
        if ref.semver:
            tag = self.highest_matching(ref.semver, ref.semver_filter)
            return tag, tag
        tag = ref.tag or DEFAULT_OCI_TAG
        return tag, tag

    def highest_matching(self, semver: str, pattern: str) -> str:
        """The tag of the highest version in range (as Flux: a tag needs two dots, an optional
        lowercase `v`; `semverFilter` is an unanchored RE2 search); ties go to the highest name."""
        try:
            constraint = parse_constraint(semver)
            regex = compile_pattern(pattern) if pattern else None
        except ConstraintError as err:
            raise self.fail(f"invalid semver range '{semver}': {err}") from None
        except PatternError as err:
            raise self.fail(f"invalid semverFilter: {err}") from None
        tags = walk_tags(self.session, 1000).tags
        best: tuple[object, str] | None = None
        for tag in tags:
            if regex is not None and regex.search(utf8(tag)) is None:
                continue
            version = parse_version(tag)
            if version is None or not constraint.check(version):
                continue
            if best is None or (version.sort_key, tag) > best:
                best = (version.sort_key, tag)
        if best is None:
            matching = f" and semverFilter '{pattern}'" if pattern else ""
            raise self.fail(f"no tag of {self.image} matches semver '{semver}'{matching}; "
                            f"tags: {_listing(sorted(tags)) or 'none'}")
        return best[1]

    def manifest(self, tag: str, reference: str) -> _Manifest:
        url = httpx.URL(f"{self.image.base_url}/v2/{self.image.repository}/manifests/{reference}")
        response = self.session.fetch(url, accept=ACCEPT, expect=(200, 404), stream=True)
        try:
            body = read_capped(response, MAX_MANIFEST_BYTES)
        finally:
            response.close()
        if body is None:
            raise self.fail(f"the manifest of {self.image}@{reference} is larger than "
                            f"{MAX_MANIFEST_BYTES} bytes")
        if response.status_code == 404:
            raise self.not_found(body, tag, reference)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise self.fail(f"the manifest {self.image}@{reference} the registry sent has digest {digest}")
        announced = response.headers.get("docker-content-digest", "")
        if announced.startswith("sha256:") and announced != digest:
            raise self.fail(f"the manifest of {self.image}:{tag} has digest {digest}, not the "
                            f"{announced} the registry announced")
        return self.parse(body, digest, response.headers.get("content-type", ""))

    def not_found(self, body: bytes, tag: str, reference: str) -> SourceError:
        """What a 404 for the manifest means: no such repository (some registries say so only
        when its tags are listed), or no such tag (the ones there are listed) or digest."""
        missing = self.fail(f"repository {self.image.repository} does not exist on registry "
                            f"{self.image.registry}")
        if "NAME_UNKNOWN" in _error_codes(body):
            return missing
        try:
            tags = sorted(walk_tags(self.session, 1000).tags)
        except RegistryError as err:
            if err.status == 404:
                return missing
            tags = []
        if not tag:
            return self.fail(f"digest {reference} not found in {self.image}")
        listed = f"; tags: {_listing(tags) or 'none'}" if tags else ""
        return self.fail(f"tag '{tag}' not found in {self.image}{listed}")

    def parse(self, body: bytes, digest: str, content_type: str) -> _Manifest:
        where = f"the manifest {self.image}@{digest}"
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise self.fail(f"{where} is not valid JSON") from None
        if not isinstance(doc, dict):
            raise self.fail(f"{where} is not a JSON object")
        media_type = str(doc.get("mediaType") or content_type.split(";")[0].strip())
        if media_type in (OCI_INDEX, DOCKER_LIST) or "manifests" in doc:
            raise self.fail(f"{where} is an image index (a multi-platform image), not an artifact: "
                            "push the artifact with `flux push artifact`")
        if media_type not in (OCI_MANIFEST, DOCKER_MANIFEST, ""):
            raise self.fail(f"{where} has media type '{media_type}', not an image manifest")
        layers = doc.get("layers")
        if not isinstance(layers, list) or not layers:
            raise self.fail(f"{where} has no layers")
        for index, layer in enumerate(layers):
            if not (isinstance(layer, dict) and isinstance(layer.get("digest"), str)
                    and isinstance(layer.get("size"), int)):
                raise self.fail(f"{where}: layer {index} has no digest or size")
        notes = doc.get("annotations")
        annotations = {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {}
        return _Manifest(digest, tuple(layers), annotations)

    def select(self, manifest: _Manifest) -> dict[str, Any]:
        """The layer `layerSelector.mediaType` names (its first match), else the first layer."""
        wanted = self.source.layer_selector.media_type
        if not wanted:
            return manifest.layers[0]
        for layer in manifest.layers:
            if layer.get("mediaType") == wanted:
                return layer
        present = ", ".join(sorted({str(layer.get("mediaType", "?")) for layer in manifest.layers}))
        raise self.fail(f"no layer of media type '{wanted}' in {self.image}@{manifest.digest} "
                        f"(its layers: {present})")

    # The layer --------------------------------------------------------------------------------

    def fetch_layer(self, layer: dict[str, Any], path: Path, operation: LayerOperation) -> tuple[str, ...]:
        """Download the layer's blob, verify it, and put it at `path` (unpacked, or as is)."""
        digest, size = str(layer["digest"]), int(layer["size"])
        if not _SHA256.fullmatch(digest):
            raise self.fail(f"layer digest '{digest}' is not a sha256 digest gitward can verify")
        if size > MAX_LAYER_BYTES or size < 0:
            raise self.fail(f"the layer {digest} of {self.image} is {size} bytes; gitward pulls "
                            f"layers of at most {MAX_LAYER_BYTES} bytes")
        self.cache.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".blob-", dir=self.cache)
        blob = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                self.download(digest, size, out)
            if operation is LayerOperation.COPY:
                blob.replace(path)
                return ()
            try:
                return extract(blob, path).skipped_links
            except FileExistsError:
                return ()  # another process unpacked the same artifact first
        finally:
            blob.unlink(missing_ok=True)

    def download(self, digest: str, size: int, out: Any) -> None:
        url = httpx.URL(f"{self.image.base_url}/v2/{self.image.repository}/blobs/{digest}")
        response = self.session.fetch(url, accept="*/*", stream=True)
        hashed, received = hashlib.sha256(), 0
        try:
            for chunk in response.iter_bytes(_CHUNK):
                received += len(chunk)
                if received > size:
                    raise self.fail(f"the registry sent more than the {size} bytes the manifest "
                                    f"gives for layer {digest} of {self.image}")
                if self.session.remaining <= 0:
                    raise RegistryError(self.session.timed_out(), permanent=False)
                hashed.update(chunk)
                out.write(chunk)
        except httpx.HTTPError as err:
            raise RegistryError(f"downloading layer {digest} of {self.image} failed: {err}",
                                permanent=False) from None
        finally:
            response.close()
        actual = "sha256:" + hashed.hexdigest()
        if received != size or actual != digest:
            raise self.fail(f"the layer of {self.image} does not match its manifest: expected "
                            f"{digest} ({size} bytes), received {actual} ({received} bytes)")

    def clean(self, keep: Path) -> None:
        """Remove all but the newest cache entries, and what a killed pull left (a temporary
        entry, named with a dot, older than STALE_AFTER; a younger one may be another pull's)."""
        entries = sorted((p for p in self.cache.iterdir() if p != keep),
                         key=lambda p: p.lstat().st_mtime, reverse=True)
        done = [p for p in entries if not p.name.startswith(".")]
        stale = time.time() - STALE_AFTER
        doomed = done[KEPT_ENTRIES - 1:] + [p for p in entries if p.name.startswith(".")
                                             and p.lstat().st_mtime < stale]
        for entry in doomed:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def fail(self, message: str) -> SourceError:
        """A permanent failure, its message redacted like the session's own."""
        return _source_error(self.session.fail(message, permanent=True))


def _error_codes(body: bytes) -> list[str]:
    """The codes of a registry's `{"errors": [...]}` answer."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e.get("code")) for e in errors if isinstance(e, dict)]


def _entry_name(digest: str, layer_digest: str, operation: LayerOperation) -> str:
    name = f"{_hex(digest)[:32]}-{_hex(layer_digest)[:32]}"
    return f"{name}.tar.gz" if operation is LayerOperation.COPY else name


def _hex(digest: str) -> str:
    return digest.partition(":")[2]


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return f"{shown} and {len(names) - LISTED} more" if len(names) > LISTED else shown

"""Registry credentials from a docker `config.json` or a Kubernetes dockerconfigjson Secret.

Both hold the same `auths` map keyed by registry host (or by a URL such as Docker Hub's
`https://index.docker.io/v1/`). A `Credentials` remembers where it came from so that errors can
name the source, and never shows its secrets in `repr` or messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import SourcePos, UserError

DOCKER_HUB = "registry-1.docker.io"
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


class DockerConfigError(UserError):
    """A docker config or dockerconfigjson Secret that cannot be read as credentials."""


@dataclass(frozen=True)
class Credentials:
    """A user/password or an identity token for one registry, and where they were found."""

    source: str
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never appear in a message or log."""
        values = [self.password, self.identity_token]
        if self.password:
            pair = f"{self.username}:{self.password}".encode()
            values.append(base64.b64encode(pair).decode())
        return tuple(v for v in values if v)


def docker_config_path() -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as the docker CLI looks."""
    base = os.environ.get("DOCKER_CONFIG")
    directory = Path(base) if base else Path.home() / ".docker"
    return directory / "config.json"


def registry_host(key: str) -> str:
    """The host[:port] an `auths` key stands for: `https://index.docker.io/v1/` -> index.docker.io."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme) :]
            break
    return host.split("/", 1)[0].lower()


def credentials_from_docker_config(registry: str, path: Path | None = None) -> Credentials | None:
    """The credentials a docker config file holds for `registry`; None when it holds none.

    A missing file means no credentials, as for the docker CLI.
    """
    config = path or docker_config_path()
    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise DockerConfigError(f"{config}: cannot read docker config: {err}") from err
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        pos = SourcePos(str(config), err.lineno, err.colno, syntax="json")
        raise DockerConfigError(f"{pos}: invalid JSON in docker config: {err.msg}") from err
    return _lookup(doc, registry, f"docker config {config}", _FileLocator(str(config), text))


def credentials_from_dockerconfigjson(
    data: bytes, registry: str, *, source: str = "a dockerconfigjson Secret"
) -> Credentials | None:
    """The credentials a Secret's `.dockerconfigjson` value holds for `registry`, or None.

    `source` names the Secret ("Secret ns/name") in credentials and errors.
    """
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        detail = str(err)
        if isinstance(err, json.JSONDecodeError):
            detail = f"line {err.lineno} column {err.colno}: {err.msg}"
        raise DockerConfigError(f"{source}: .dockerconfigjson is not valid JSON ({detail})") from err
    return _lookup(doc, registry, source, _FileLocator(source, ""))


@dataclass(frozen=True)
class _FileLocator:
    """Points an error at an `auths` key: `path:line:col` in a file, or the Secret's name."""

    where: str
    text: str

    def at(self, key: str) -> str:
        offset = self.text.find(json.dumps(key))
        if offset < 0:
            return f'{self.where}: auths["{key}"]'
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return f'{SourcePos(self.where, line, column, syntax="json")}: auths["{key}"]'


def _candidates(registry: str) -> frozenset[str]:
    host = registry_host(registry)
    return DOCKER_HUB_HOSTS if host in DOCKER_HUB_HOSTS else frozenset({host})


def _lookup(doc: Any, registry: str, source: str, locate: _FileLocator) -> Credentials | None:
    if not isinstance(doc, dict):
        raise DockerConfigError(f"{locate.where}: a docker config must be a JSON object")
    auths = doc.get("auths", {})
    if not isinstance(auths, dict):
        raise DockerConfigError(f"{locate.where}: 'auths' must be a JSON object")
    wanted = _candidates(registry)
    keys = [k for k in auths if k == registry] + [k for k in auths if k != registry and registry_host(k) in wanted]
    for key in keys:
        found = _entry(auths[key], source, locate.at(key))
        if found is not None:
            return found
    _refuse_helpers(doc, keys, wanted, registry, locate.where)
    return None


def _entry(entry: Any, source: str, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        raise DockerConfigError(f"{where} must be a JSON object")
    for name in ("auth", "username", "password", "identitytoken"):
        if not isinstance(entry.get(name, ""), str):
            raise DockerConfigError(f"{where}.{name} must be a string")
    username: str = entry.get("username", "")
    password: str = entry.get("password", "")
    if entry.get("auth"):
        username, password = _decode_auth(entry["auth"], where)
    token: str = entry.get("identitytoken", "")
    if not (username or password or token):
        return None
    return Credentials(source=source, username=username, password=password, identity_token=token)


def _decode_auth(value: str, where: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as err:
        raise DockerConfigError(f"{where}.auth is not base64 of 'user:password'") from err
    username, colon, password = raw.partition(":")
    if not colon:
        raise DockerConfigError(f"{where}.auth is not base64 of 'user:password' (no ':' in it)")
    return username, password


def _refuse_helpers(doc: dict[str, Any], keys: list[str], wanted: frozenset[str], registry: str, where: str) -> None:
    """A credential helper holds the secret: say so rather than scan anonymously and fail later."""
    declared = doc.get("credHelpers")
    helpers: dict[str, Any] = declared if isinstance(declared, dict) else {}
    helper = next((str(h) for k, h in helpers.items() if registry_host(k) in wanted), "")
    if not helper and keys and doc.get("credsStore"):
        helper = str(doc["credsStore"])
    if helper:
        raise DockerConfigError(
            f"{where}: the credentials for {registry} are kept by the credential helper "
            f"'docker-credential-{helper}', which gitward does not run; put them in 'auths' "
            "or in a Secret"
        )


DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"


def credentials_from_secret(secret: dict[str, object] | None, namespace: str, name: str,
                            registry: str, *, referrer: str = "ImageRepository") -> Credentials | None:
    """Credentials from a live `kubernetes.io/dockerconfigjson` Secret (the `secretRef` of an
    ImageRepository or an OCIRepository, the `referrer`); a missing Secret or one of another
    type is a clear error, never a silent anonymous scan."""
    source = f"Secret {namespace}/{name}"
    if secret is None:
        raise DockerConfigError(f"{source} (the {referrer}'s secretRef) does not exist")
    if secret.get("type") != DOCKERCONFIGJSON:
        raise DockerConfigError(f"{source} is of type {secret.get('type')!r}, not "
                                f"{DOCKERCONFIGJSON!r}")
    data = secret.get("data")
    encoded = data.get(".dockerconfigjson") if isinstance(data, dict) else None
    if not isinstance(encoded, str):
        raise DockerConfigError(f"{source} has no .dockerconfigjson key")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, binascii.Error):
        raise DockerConfigError(f"{source}: .dockerconfigjson is not base64") from None
    return credentials_from_dockerconfigjson(raw, registry, source=source)

"""A plan's questions to one image repository's registry: a tag's digest, and when an image was
built (engine/reconcile/imagefacts.py asks them only of what the store does not know).

A module of its own so that a plan that stays offline never imports the registry client.
"""

from __future__ import annotations

from datetime import datetime

import httpx

from engine.errors import GitwardError
from engine.model import ImageRepository
from engine.observe.httpclient import registry_client
from engine.observe.imageinfo import image_config, manifest_digest
from engine.observe.registry import parse_image
from engine.observe.registryhttp import RegistryError, RegistrySession
from engine.reconcile.imagefacts import NO_CREATED, RegistryAccess
from engine.reconcile.images import registry_credentials
from engine.reconcile.transport import registry_transport

RETRIES = 2


class RegistryImages:
    """One repository's registry for one plan: a session opened on first use, and given up on
    once it cannot be reached or read (every other image would fail alike)."""

    def __init__(self, repository: ImageRepository, access: RegistryAccess) -> None:
        self.repository, self.access = repository, access
        self.client: httpx.Client | None = None
        self.session: RegistrySession | None = None
        self.down = ""

    def __enter__(self) -> RegistryImages:
        return self

    def __exit__(self, *_: object) -> None:
        if self.client is not None:
            self.client.close()

    def digest(self, tag: str) -> tuple[str, str]:
        """(the digest `tag` names now, "") or ("", why it is not known)."""
        if self.down:
            return "", self.down
        try:
            return manifest_digest(self._open(), tag), ""
        except GitwardError as err:
            return "", self._failed(err)

    def created(self, digest: str) -> tuple[datetime | None, str]:
        """(when the image `digest` names was built, "") or (None, why it is not known); a
        configuration without a time is (None, NO_CREATED)."""
        if self.down:
            return None, self.down
        try:
            created = image_config(self._open(), digest).created
        except GitwardError as err:
            return None, self._failed(err)
        return created, "" if created is not None else NO_CREATED

    def _open(self) -> RegistrySession:
        if self.session is None:
            repository = self.repository
            image = parse_image(repository.image, repository.insecure)
            creds = registry_credentials(repository, image.registry, self.access.credentials,
                                         self.access.read_secret)
            transport = registry_transport(repository, self.access.read_secret)
            self.client = registry_client(transport)
            self.session = RegistrySession(
                image, creds, self.client, repository.effective_timeout.total_seconds(), RETRIES,
                doing=f"reading the images of {image}", request=f"an image of {image.repository}",
                hidden=transport.secrets())
        return self.session

    def _failed(self, err: GitwardError) -> str:
        """Why an image is not known; a registry that refuses or fails (anything but "no such
        image") is not asked again in this plan."""
        if isinstance(err, RegistryError) and err.status == 404:
            return str(err)
        self.down = f"the registry could not be read: {err}"
        return self.down

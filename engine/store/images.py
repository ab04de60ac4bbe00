"""What gitward learnt of images outside a tag listing: the digest a tag names, when the ledger
first saw a tag, and when the image a digest names was built (`image_configs`, read once per
digest, for the rollback gate).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update

from engine.store.db import Store
from engine.store.queries import dialect_insert, transaction
from engine.store.schema import ImageConfigRow, ImageTagRow

_CHUNK = 500
"""Digests per `IN (...)` list, well under every dialect's bound-parameter limit."""


def record_tag_digest(store: Store, repository: str, tag: str, digest: str) -> bool:
    """Record the digest a tag names now (a registry's answer outside a scan); True when the
    ledger had another (or none). A tag the ledger never saw is left alone."""
    with transaction(store) as session:
        done = session.execute(
            update(ImageTagRow)
            .where(ImageTagRow.repository == repository, ImageTagRow.tag == tag,
                   (ImageTagRow.digest != digest) | ImageTagRow.digest.is_(None))
            .values(digest=digest)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(done, "rowcount", 0))


def first_seen(store: Store, repository: str, tags: Iterable[str]) -> dict[str, datetime]:
    """When the ledger first saw each of `tags` in `repository` (gone tags too), in one query
    per `_CHUNK` tags; a tag it never saw is not a key."""
    wanted = sorted(set(tags))
    found: dict[str, datetime] = {}
    with transaction(store, "read") as session:
        for start in range(0, len(wanted), _CHUNK):
            rows = session.execute(select(ImageTagRow.tag, ImageTagRow.first_seen)
                                   .where(ImageTagRow.repository == repository,
                                          ImageTagRow.tag.in_(wanted[start : start + _CHUNK])))
            found.update({row.tag: row.first_seen for row in rows})
    return found


def image_created(store: Store, digests: Iterable[str]) -> dict[str, datetime | None]:
    """When each known image was built (None: its configuration says nothing), by digest; a
    digest gitward never read is not a key."""
    wanted = sorted(set(digests))
    found: dict[str, datetime | None] = {}
    with transaction(store, "read") as session:
        for start in range(0, len(wanted), _CHUNK):
            rows = session.execute(select(ImageConfigRow.digest, ImageConfigRow.created)
                                   .where(ImageConfigRow.digest.in_(wanted[start : start + _CHUNK])))
            found.update({row.digest: row.created for row in rows})
    return found


def record_image_created(store: Store, digest: str, created: datetime | None,
                         fetched_at: datetime) -> None:
    """Keep when an image was built; a digest names one image for good, so a second answer for
    it changes nothing."""
    with transaction(store) as session:
        session.execute(
            dialect_insert(session, ImageConfigRow)
            .values(digest=digest, created=created, fetched_at=fetched_at)
            .on_conflict_do_nothing(index_elements=["digest"])
        )

"""OCI artifacts in the store: one `oci_revisions` row per manifest an OCIRepository resolved to.

Recorded like git revisions (engine/store/queries.py): the same digest as last time writes
nothing, a digest the source returns to moves to the top. The URL is kept without credentials.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.model import LayerOperation, OCIRevision
from engine.redact import public_url
from engine.store.db import Store
from engine.store.queries import dialect_insert, transaction
from engine.store.schema import OciRevisionRow


def _revision(row: OciRevisionRow) -> OCIRevision:
    return OCIRevision(
        source=row.source, url=row.url, tag=row.tag, digest=row.digest, revision=row.revision,
        layer_digest=row.layer_digest, media_type=row.media_type,
        operation=LayerOperation(row.operation), fetched_at=row.fetched_at,
        origin_source=row.origin_source, origin_revision=row.origin_revision, created=row.created,
        id=row.id)


def _latest_row(session: Session, source: str) -> OciRevisionRow | None:
    return session.scalars(
        select(OciRevisionRow)
        .where(OciRevisionRow.source == source)
        .order_by(OciRevisionRow.fetched_at.desc(), OciRevisionRow.id.desc())
        .limit(1)
    ).first()


def record_oci_revision(store: Store, revision: OCIRevision) -> OCIRevision:
    """Record a pull; the same artifact as last time (digest, layer and tag) writes nothing."""
    with transaction(store) as session:
        latest = _latest_row(session, revision.source)
        if latest is not None and (latest.digest, latest.layer_digest, latest.revision) == (
                revision.digest, revision.layer_digest, revision.revision):
            return _revision(latest)
        values = {
            "url": public_url(revision.url),
            "tag": revision.tag,
            "revision": revision.revision,
            "layer_digest": revision.layer_digest,
            "media_type": revision.media_type,
            "operation": revision.operation.value,
            "origin_source": revision.origin_source,
            "origin_revision": revision.origin_revision,
            "created": revision.created,
            "fetched_at": revision.fetched_at,
        }
        statement = dialect_insert(session, OciRevisionRow).values(
            source=revision.source, digest=revision.digest, **values)
        session.execute(statement.on_conflict_do_update(index_elements=["source", "digest"], set_=values))
        row = session.scalars(select(OciRevisionRow).where(
            OciRevisionRow.source == revision.source, OciRevisionRow.digest == revision.digest)).one()
        return _revision(row)


def latest_oci_revision(store: Store, source: str) -> OCIRevision | None:
    """The artifact the OCIRepository `namespace/name` resolved to last, or None."""
    with transaction(store, "read") as session:
        row = _latest_row(session, source)
        return _revision(row) if row is not None else None

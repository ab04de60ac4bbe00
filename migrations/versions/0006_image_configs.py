"""image configs

The `image_configs` table: when each image gitward compared was built (its configuration's
`created`), kept by manifest digest so that a registry is asked once per image, ever. The
rollback gate compares the image git deploys with the one a policy selects by these times.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

Frozen history: types are spelled out, not imported from engine/store/schema.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_configs",
        sa.Column("digest", sa.String(100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_image_configs")),
    )


def downgrade() -> None:
    op.drop_table("image_configs")

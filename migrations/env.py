"""Alembic environment for gitward's state database.

gitward configures Alembic in code (engine/store/migrate.py): an open connection arrives in
`config.attributes["connection"]`; offline SQL generation names a dialect in
`config.attributes["dialect_name"]`; a developer's script may instead pass `url`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from engine.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(
        dialect_name=config.attributes["dialect_name"],
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.attributes["url"])
        with engine.begin() as own:
            context.configure(connection=own, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        engine.dispose()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

"""The state store: facts, decisions and bookkeeping in SQLite (default) or PostgreSQL.

`db` opens the database and keeps its schema current (Alembic, `migrations/`), `schema` holds
the tables, `queries` the narrow readers and writers the rest of gitward uses.
"""

"""Alembic environment: runs against the connection handed in by netplex.db.migration."""

from __future__ import annotations

from alembic import context

from netplex.db import models  # noqa: F401  (registers every table)
from netplex.db.base import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only used through netplex.db.migration
    raise RuntimeError("run migrations through 'netplex db upgrade'")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

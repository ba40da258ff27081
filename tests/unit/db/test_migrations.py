"""Migrations produce exactly the models' schema, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from netplex.db import migration
from netplex.db.base import Base
from netplex.db.engine import normalize_url


def test_schema_matches_models(db_url: str) -> None:
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == []
    assert migration.current(db_url) == migration.head()


def test_upgrade_is_idempotent(db_url: str) -> None:
    migration.upgrade(db_url)
    migration.upgrade(db_url)
    assert migration.current(db_url) == migration.head()

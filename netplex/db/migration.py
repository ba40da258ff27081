"""Schema migrations (Alembic), callable from code and from ``netplex db``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert, select

from netplex.db.engine import null_pool_engine
from netplex.db.models import FeedHead

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    """The newest revision this code knows."""
    rev = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert rev is not None
    return rev


def current(url: str) -> str | None:
    """The revision the database is at (None: empty database)."""
    engine = null_pool_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        if conn.execute(select(FeedHead.id)).first() is None:
            conn.execute(insert(FeedHead).values(id=1, revision=0, compacted=0))


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run on every start."""
    engine = null_pool_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Several servers may start at once against one database.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7372010)")
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        _seed(engine)
    finally:
        engine.dispose()


def autogenerate(url: str, message: str) -> None:
    """Developer helper: write a new revision from the models' diff."""
    engine = null_pool_engine(url)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.revision(cfg, message=message, autogenerate=True)
    finally:
        engine.dispose()

"""Shared fixtures: fresh, migrated databases on SQLite and PostgreSQL.

PostgreSQL tests reach the server at ``NETPLEX_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Each fresh database is
cloned from a template migrated once per test session, so migrations are
exercised and every test starts empty. Databases are dropped on teardown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from netplex.db import migration

PG_ADMIN_URL = os.environ.get("NETPLEX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgres"]


def _pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def _pg_admin() -> object:
    return create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database for this test session (created lazily)."""
    name = f"netplex_tmpl_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text(f'CREATE DATABASE "{name}"'))
    migration.upgrade(_pg_url(name))
    yield name
    with admin.connect() as c:  # type: ignore[attr-defined]
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def make_db_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Factory: ``make_db_url("sqlite")`` / ``make_db_url("postgres")`` -> fresh migrated URL."""
    created: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'netplex-{uuid.uuid4().hex[:8]}.sqlite'}"
            migration.upgrade(url)
            return url
        if backend == "postgres":
            template = request.getfixturevalue("pg_template")
            name = f"netplex_t_{uuid.uuid4().hex[:12]}"
            admin = _pg_admin()
            with admin.connect() as c:  # type: ignore[attr-defined]
                c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            admin.dispose()  # type: ignore[attr-defined]
            created.append(name)
            return _pg_url(name)
        raise ValueError(backend)

    yield make
    if created:
        admin = _pg_admin()
        with admin.connect() as c:  # type: ignore[attr-defined]
            for name in created:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, make_db_url: Callable[[str], str]) -> str:
    """A fresh migrated database, once per backend."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
    return make_db_url(request.param)


@pytest.fixture
def sqlite_url(make_db_url: Callable[[str], str]) -> str:
    return make_db_url("sqlite")

"""Fixtures for type-driver tests: a real database per backend, drivers from options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from sqlalchemy.orm import Session

from netplex.core.type_api import SegmentContext
from netplex.db.base import new_id
from netplex.db.engine import Database, Txn

T = TypeVar("T")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def run(db: Database, fn: Callable[[Session], T]) -> T:
    """Run ``fn(session)`` in one committed write transaction."""

    def body(txn: Txn) -> T:
        return fn(txn.session)

    return db.transaction(body)


def ctx(session: Session, segment_id: str | None = None) -> SegmentContext:
    """A context for one new segment (type drivers do not need the network row)."""
    return SegmentContext(session, "net-" + new_id()[:8], segment_id or new_id())

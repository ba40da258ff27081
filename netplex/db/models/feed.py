"""The change feed: one row per committed change, numbered without gaps in commit order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import Base, utcnow


class FeedHead(Base):
    """Single row. Updating it serialises feed writers until they commit,
    so revisions become visible in order (no reader ever sees N+1 before N)."""

    __tablename__ = "feed_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Entries at or below this revision have been compacted away.
    compacted: Mapped[int] = mapped_column(BigInteger, default=0)


class Change(Base):
    __tablename__ = "changes"

    revision: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    resource: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

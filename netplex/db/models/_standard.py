"""Columns every Neutron "standard attribute" resource carries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, new_id, utcnow


class StandardAttrs:
    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectOwned:
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")

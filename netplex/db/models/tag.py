"""Tags on networks, subnets and ports (Neutron's standard-attr tags)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, Base


class Tag(Base):
    __tablename__ = "tags"

    resource_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)

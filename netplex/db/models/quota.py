"""Per-project quota limits an admin set (Neutron's ``quotas`` table).

A missing row means the configured default ([quotas] quota_<resource> / default_quota).
Usage is never stored: it is counted from the resources' own rows inside the creating
transaction, so it cannot drift.
"""

from __future__ import annotations

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import Base

__all__ = ["Quota"]


class Quota(Base):
    __tablename__ = "quotas"
    __table_args__ = (UniqueConstraint("project_id", "resource", name="uq_quotas_project_id_resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    resource: Mapped[str] = mapped_column(String(255))
    #: -1: unlimited.
    limit: Mapped[int] = mapped_column(Integer)

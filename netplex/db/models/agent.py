"""Agents registered by hosts (register + heartbeat)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, Base, new_id, utcnow


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("agent_type", "host"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255), default="N/A")
    host: Mapped[str] = mapped_column(String(255), index=True)
    admin_state_up: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str | None] = mapped_column(String(255), default=None)
    configurations: Mapped[dict] = mapped_column(default=dict)
    availability_zone: Mapped[str | None] = mapped_column(String(255), default=None)
    resources_synced: Mapped[bool | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_timestamp: Mapped[datetime] = mapped_column(default=utcnow)

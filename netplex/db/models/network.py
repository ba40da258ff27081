"""Networks, their segments, and the segment-ID allocation ledger."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, Base
from netplex.db.models._standard import ProjectOwned, StandardAttrs


class Network(StandardAttrs, ProjectOwned, Base):
    __tablename__ = "networks"

    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(default=False)
    router_external: Mapped[bool] = mapped_column(default=False)
    mtu: Mapped[int] = mapped_column(default=1500)
    availability_zone_hints: Mapped[list] = mapped_column(default=list)


class NetworkSegment(StandardAttrs, Base):
    """One L2 segment of a network: (type, physnet, segmentation id)."""

    __tablename__ = "network_segments"
    __table_args__ = (Index("ix_network_segments_network_id_index", "network_id", "segment_index"),)

    network_id: Mapped[str] = mapped_column(ID, ForeignKey("networks.id", ondelete="CASCADE"))
    network_type: Mapped[str] = mapped_column(String(32))
    physical_network: Mapped[str | None] = mapped_column(String(64), default=None)
    # BigInteger: GRE keys go up to 2**32-1, beyond a 32-bit signed INTEGER.
    segmentation_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    is_dynamic: Mapped[bool] = mapped_column(default=False)
    segment_index: Mapped[int] = mapped_column(default=0)
    name: Mapped[str | None] = mapped_column(String(255), default=None)


class SegmentAllocation(Base):
    """One row per *allocated* segmentation ID; free IDs have no row.

    The primary key is the uniqueness guarantee: two transactions that race
    for the same ID cannot both commit, on SQLite or PostgreSQL. Types
    without a segmentation ID (flat) use ``segmentation_id = 0`` so that a
    physical network is handed out at most once.
    """

    __tablename__ = "segment_allocations"

    network_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    physical_network: Mapped[str] = mapped_column(String(64), primary_key=True)
    # BigInteger: GRE keys go up to 2**32-1, beyond a 32-bit signed INTEGER.
    segmentation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    segment_id: Mapped[str | None] = mapped_column(ID, index=True, default=None)

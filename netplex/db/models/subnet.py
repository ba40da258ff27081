"""Subnets. Pools, DNS servers and host routes are small ordered lists: JSON."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, Base
from netplex.db.models._standard import ProjectOwned, StandardAttrs


class Subnet(StandardAttrs, ProjectOwned, Base):
    __tablename__ = "subnets"

    network_id: Mapped[str] = mapped_column(ID, ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int]
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    enable_dhcp: Mapped[bool] = mapped_column(default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    allocation_pools: Mapped[list] = mapped_column(default=list)
    dns_nameservers: Mapped[list] = mapped_column(default=list)
    host_routes: Mapped[list] = mapped_column(default=list)
    segment_id: Mapped[str | None] = mapped_column(ID, default=None)
    subnetpool_id: Mapped[str | None] = mapped_column(ID, default=None)

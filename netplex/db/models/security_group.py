"""Security groups, their rules, and port security (Neutron's security-group and port-security extensions)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, Base
from netplex.db.models._standard import ProjectOwned, StandardAttrs


class SecurityGroup(StandardAttrs, ProjectOwned, Base):
    __tablename__ = "security_groups"

    name: Mapped[str] = mapped_column(String(255), default="")
    stateful: Mapped[bool] = mapped_column(default=True)


class SecurityGroupRule(StandardAttrs, ProjectOwned, Base):
    __tablename__ = "security_group_rules"
    __table_args__ = (
        Index("ix_security_group_rules_remote_group_id", "remote_group_id"),
        #: Equal match keys are duplicate rules; unique, so two concurrent creates cannot both commit.
        Index("uq_security_group_rules_match", "security_group_id", "match_key", unique=True),
    )

    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("security_groups.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8))
    #: As the caller wrote it (a name or a number as text); None means any protocol.
    protocol: Mapped[str | None] = mapped_column(String(40), default=None)
    port_range_min: Mapped[int | None] = mapped_column(Integer, default=None)
    port_range_max: Mapped[int | None] = mapped_column(Integer, default=None)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), default=None)
    remote_group_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("security_groups.id", ondelete="CASCADE"), default=None)
    remote_address_group_id: Mapped[str | None] = mapped_column(ID, default=None)
    #: The rule in canonical form (protocol number, normalised prefix ...).
    match_key: Mapped[str] = mapped_column(String(255))


class DefaultSecurityGroup(Base):
    """The one ``default`` group of a project; the primary key makes it one even under races."""

    __tablename__ = "default_security_groups"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("security_groups.id", ondelete="CASCADE"), unique=True)


class SecurityGroupPortBinding(Base):
    __tablename__ = "security_group_port_bindings"

    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("security_groups.id", ondelete="RESTRICT"), primary_key=True, index=True)


class PortSecurity(Base):
    __tablename__ = "port_security"

    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)


class NetworkSecurity(Base):
    __tablename__ = "network_port_security"

    network_id: Mapped[str] = mapped_column(ID, ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)

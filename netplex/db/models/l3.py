"""Routers, external networks, floating IPs and router scheduling (Neutron's router, extraroute,
ext-gw-mode, external-net and l3_agent_scheduler extensions).

A router's interfaces and gateway are ordinary ``ports`` rows (device_owner
``network:router_interface`` / ``network:router_gateway``); ``router_ports`` says which router
owns which. A floating IP owns a ``network:floatingip`` port on the external network that
holds its address, so IPAM and "port in use" rules need nothing special.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, Base
from netplex.db.models._standard import ProjectOwned, StandardAttrs

__all__ = ["ExternalNetwork", "FloatingIP", "Router", "RouterL3AgentBinding", "RouterPort", "RouterRoute"]


class ExternalNetwork(Base):
    """A row means ``router:external = true`` for that network."""

    __tablename__ = "external_networks"

    network_id: Mapped[str] = mapped_column(ID, ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)


class Router(StandardAttrs, ProjectOwned, Base):
    __tablename__ = "routers"

    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    #: The gateway port on the external network (None: no external_gateway_info).
    gw_port_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="SET NULL"), default=None, index=True)
    #: ext-gw-mode's enable_snat; meaningful only with a gateway.
    enable_snat: Mapped[bool] = mapped_column(default=True)


class RouterPort(Base):
    """Which router owns a port; ``port_type`` is the port's device_owner at attach time."""

    __tablename__ = "router_ports"

    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    router_id: Mapped[str] = mapped_column(ID, ForeignKey("routers.id", ondelete="CASCADE"), index=True)
    port_type: Mapped[str] = mapped_column(String(255))


class RouterRoute(Base):
    """extraroute: one static route of a router."""

    __tablename__ = "router_routes"

    router_id: Mapped[str] = mapped_column(ID, ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)


class FloatingIP(StandardAttrs, ProjectOwned, Base):
    __tablename__ = "floatingips"
    __table_args__ = (
        #: One floating IP per (external network, fixed port, fixed address): a second
        #: concurrent association cannot both commit (FloatingIPPortAlreadyAssociated).
        UniqueConstraint("floating_network_id", "fixed_port_id", "fixed_ip_address",
                         name="uq_floatingips_fixed_association"),
    )

    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_network_id: Mapped[str] = mapped_column(ID, ForeignKey("networks.id", ondelete="RESTRICT"), index=True)
    #: The network:floatingip port holding the address; deleting the FIP deletes it.
    floating_port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), unique=True)
    fixed_port_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="SET NULL"), default=None, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), default=None)
    router_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("routers.id", ondelete="SET NULL"), default=None, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")


class RouterL3AgentBinding(Base):
    """Legacy scheduling: one L3 agent per router."""

    __tablename__ = "router_l3_agent_bindings"

    router_id: Mapped[str] = mapped_column(ID, ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    l3_agent_id: Mapped[str] = mapped_column(ID, ForeignKey("agents.id", ondelete="CASCADE"), index=True)

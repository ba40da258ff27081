"""Tables of the dhcp service: which DHCP agents serve which networks, and ports' extra DHCP options."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from netplex.db.base import ID, Base


class NetworkDhcpAgentBinding(Base):
    """Neutron's ``networkdhcpagentbindings``: one row per (network, DHCP agent) scheduled."""

    __tablename__ = "network_dhcp_agent_bindings"

    network_id: Mapped[str] = mapped_column(ID, ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)
    dhcp_agent_id: Mapped[str] = mapped_column(
        ID, ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True)


class ExtraDhcpOpt(Base):
    """Neutron's ``extradhcpopts``: one option of one port (name, value, IP version)."""

    __tablename__ = "extra_dhcp_opts"

    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    opt_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ip_version: Mapped[int] = mapped_column(Integer, primary_key=True, default=4)
    opt_value: Mapped[str] = mapped_column(String(255))

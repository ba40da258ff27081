"""Linux bridge mechanism driver: one kernel bridge per network on each host.

Binds ``local`` segments, ``flat``/``vlan`` segments whose physical network
appears in the agent's ``interface_mappings`` (or ``bridge_mappings``, for
bridges the operator made), and ``vxlan`` segments when the agent lists
``vxlan`` in ``tunnel_types``. vif_type ``bridge``; the bridge is named
``brq`` + the first 11 characters of the network id, which is what the
agent creates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from netplex.core.mech_api import AGENT_TYPE_LINUXBRIDGE, VIF_TYPE_BRIDGE, AgentInfo, PortContext
from netplex.core.segments_model import Segment
from netplex.drivers.mechanisms.agent_base import AgentMechanismDriverBase

__all__ = ["LinuxbridgeMechanismDriver", "bridge_name"]

_TUNNELS = frozenset({"vxlan"})


def bridge_name(network_id: str) -> str:
    """The Linux bridge carrying ``network_id`` (15 characters at most, IFNAMSIZ)."""
    return "brq" + network_id[:11]


class LinuxbridgeMechanismDriver(AgentMechanismDriverBase):
    """``[ml2] mechanism_drivers = linuxbridge``."""

    agent_type = AGENT_TYPE_LINUXBRIDGE
    vif_type = VIF_TYPE_BRIDGE

    def allowed_network_types(self, agent: AgentInfo) -> Collection[str]:
        return {"local", "flat", "vlan", *(_TUNNELS & set(agent.tunnel_types))}

    def mappings(self, agent: AgentInfo) -> Mapping[str, str]:
        return {**agent.bridge_mappings, **agent.interface_mappings}

    def vif_details(
        self, agent: AgentInfo, segment: Segment, context: PortContext
    ) -> dict[str, Any]:
        return {
            "port_filter": True,
            "bridge_name": bridge_name(context.network.id),
            "connectivity": self.connectivity,
        }

"""Open vSwitch mechanism driver: ports plugged into the agent's integration bridge.

Binds ``local`` segments, ``flat``/``vlan`` segments whose physical network
appears in the agent's ``bridge_mappings``, and tunnel segments whose type
appears in its ``tunnel_types``. vif_type ``ovs``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from netplex.core.mech_api import AGENT_TYPE_OVS, VIF_TYPE_OVS, AgentInfo, PortContext
from netplex.core.segments_model import Segment
from netplex.drivers.mechanisms.agent_base import AgentMechanismDriverBase

if TYPE_CHECKING:
    from typing import Self

    from netplex.config import Config

__all__ = ["OpenvswitchMechanismDriver"]

DEFAULT_INTEGRATION_BRIDGE = "br-int"


class OpenvswitchMechanismDriver(AgentMechanismDriverBase):
    """``[ml2] mechanism_drivers = openvswitch``."""

    agent_type = AGENT_TYPE_OVS
    vif_type = VIF_TYPE_OVS

    def __init__(self, datapath_type: str = "system") -> None:
        #: Used when the agent does not report its own ``datapath_type``.
        self.datapath_type = datapath_type

    @classmethod
    def from_config(cls, config: Config | None) -> Self:
        if config is None:
            return cls()
        return cls(datapath_type=str(config.get("ovs", "datapath_type")))

    def allowed_network_types(self, agent: AgentInfo) -> Collection[str]:
        return {"local", "flat", "vlan", *agent.tunnel_types}

    def mappings(self, agent: AgentInfo) -> Mapping[str, str]:
        return agent.bridge_mappings

    def vif_details(
        self, agent: AgentInfo, segment: Segment, context: PortContext
    ) -> dict[str, Any]:
        conf = agent.configurations
        return {
            "port_filter": True,
            "ovs_hybrid_plug": False,
            "bridge_name": str(conf.get("integration_bridge") or DEFAULT_INTEGRATION_BRIDGE),
            "datapath_type": str(conf.get("datapath_type") or self.datapath_type),
            "connectivity": self.connectivity,
        }

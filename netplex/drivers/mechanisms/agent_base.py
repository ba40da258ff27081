"""Template for mechanism drivers that bind through a host agent.

A subclass answers three questions about one registered agent, and the base
does the rest: which network types the agent can serve
(:meth:`AgentMechanismDriverBase.allowed_network_types`), which physical
networks it is wired to (:meth:`AgentMechanismDriverBase.mappings`), and what
the compute side needs to plug a VM (:meth:`AgentMechanismDriverBase.vif_details`).

The base's :meth:`~AgentMechanismDriverBase.bind_port` checks the vnic_type,
finds the agents of :attr:`~AgentMechanismDriverBase.agent_type` on the host,
skips dead and administratively disabled ones, and tries each segment to
bind in order; every reason for not binding is declined with words an
operator can act on ("no alive Open vSwitch agent on host-3", "agent on
host-3 has no mapping for physical network physnet2", "segment type gre not
in agent tunnel_types [vxlan]").
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from netplex.core.mech_api import VNIC_NORMAL, AgentInfo, MechanismDriver, PortContext
from netplex.core.segments_model import Segment

__all__ = ["PHYSICAL_NETWORK_TYPES", "AgentMechanismDriverBase"]

#: Network types whose segments name a physical network the agent must map.
PHYSICAL_NETWORK_TYPES = frozenset({"flat", "vlan"})
_LOCAL_TYPES = frozenset({"local", "flat", "vlan"})


class AgentMechanismDriverBase(MechanismDriver, abc.ABC):
    """Binds a port to the first segment an alive, enabled agent on the host can serve."""

    #: ``agent_type`` the agent reports, e.g. ``"Open vSwitch agent"``.
    agent_type: ClassVar[str | None] = None
    #: ``binding:vif_type`` this driver binds with.
    vif_type: ClassVar[str] = ""
    #: vnic types this driver can bind (others are declined with a reason).
    supported_vnic_types: ClassVar[frozenset[str]] = frozenset({VNIC_NORMAL})

    @abc.abstractmethod
    def allowed_network_types(self, agent: AgentInfo) -> Collection[str]:
        """Network types ``agent`` can connect ports to."""

    @abc.abstractmethod
    def mappings(self, agent: AgentInfo) -> Mapping[str, str]:
        """physical network -> local device/bridge, for flat and vlan segments."""

    @abc.abstractmethod
    def vif_details(
        self, agent: AgentInfo, segment: Segment, context: PortContext
    ) -> dict[str, Any]:
        """``binding:vif_details`` for a port bound through ``agent`` to ``segment``."""

    def segment_problem(self, agent: AgentInfo, segment: Segment) -> str | None:
        """Why ``agent`` cannot serve ``segment``, or None if it can."""
        ntype = segment.network_type
        if ntype not in self.allowed_network_types(agent):
            if ntype in _LOCAL_TYPES or ntype in agent.tunnel_types:
                return f"segment type {ntype} is not supported by {agent.agent_type}"
            return (
                f"segment type {ntype} not in agent tunnel_types "
                f"[{', '.join(agent.tunnel_types)}]"
            )
        if ntype in PHYSICAL_NETWORK_TYPES:
            physnet = segment.physical_network
            if not physnet:
                return f"{ntype} segment {segment.id} has no physical network"
            if physnet not in self.mappings(agent):
                return f"agent on {agent.host} has no mapping for physical network {physnet}"
        return None

    def bind_port(self, context: PortContext) -> None:
        """Template method; see the module docstring."""
        if context.vnic_type not in self.supported_vnic_types:
            context.decline(
                f"vnic_type {context.vnic_type} is not supported "
                f"(supported: {', '.join(sorted(self.supported_vnic_types))})"
            )
            return
        agent_type = self.agent_type or "agent"
        agents = context.host_agents(agent_type)
        if not agents:
            context.decline(f"no alive {agent_type} on {context.host}")
            return
        usable = [a for a in agents if a.usable]
        for agent in agents:
            if not agent.alive:
                seen = (
                    agent.heartbeat_timestamp.strftime("%Y-%m-%d %H:%M:%S")
                    if agent.heartbeat_timestamp
                    else "never"
                )
                context.decline(
                    f"no alive {agent_type} on {context.host} "
                    f"(agent {agent.id} last reported at {seen})"
                )
            elif not agent.admin_state_up:
                context.decline(
                    f"{agent_type} on {context.host} is administratively down "
                    f"(agent {agent.id})"
                )
        for agent in usable:
            for segment in context.segments_to_bind:
                problem = self.segment_problem(agent, segment)
                if problem is None:
                    context.set_binding(
                        segment.id, self.vif_type, self.vif_details(agent, segment, context)
                    )
                    return
                context.decline(problem)

"""Routed (L3-only, calico-style) mechanism driver: a VM's port is a tap the host routes to.

``[ml2] mechanism_drivers = routed`` (``calico`` is accepted as an alias, for
operators coming from networking-calico). The port's connectivity is IP
routing, not a shared L2 segment: the host agent (``netplex agent
--mechanism routed``, :mod:`netplex.agent.routed`) installs a /32 (/128) host
route to each of the VM's addresses through its tap, answers ARP / NDP on the
tap (proxy ARP / proxy NDP) so the subnet's gateway IP reaches the host, and
distributes the route to the other routed hosts.

What it binds, like networking-calico: segments of type ``local`` and
``flat`` (any physical network; a flat network's physnet is only a label on
routed hosts, nothing is bridged to it), on a host whose live agent reports
``agent_type`` :data:`AGENT_TYPE_ROUTED`. Every other segment type (vlan,
vxlan, ...) is declined with a reason, and so is a host without such an
agent; the other drivers then bind or decline as before.

``binding:vif_type`` is ``tap`` (the compute side's generic tap plugin plugs
it unchanged); ``binding:vif_details``:

* ``port_filter: true`` - the host filters the port's traffic;
* ``mac_address`` - the MAC of the host side of the tap, the same on every
  port and host (networking-calico's ``00:61:fe:ed:ca:fe``), for a compute
  side that sets it; the VM only ever sees the host as its next hop;
* ``connectivity: "l3"`` - what other services (floating IPs, DHCP) ask.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from netplex.core.mech_api import VIF_TYPE_TAP, AgentInfo, PortContext
from netplex.core.segments_model import Segment
from netplex.drivers.mechanisms.agent_base import AgentMechanismDriverBase

__all__ = ["AGENT_TYPE_ROUTED", "HOST_SIDE_MAC", "ROUTED_NETWORK_TYPES", "RoutedMechanismDriver"]

#: ``agent_type`` of the routed host agent (:class:`netplex.agent.routed.RoutedKind` reports it).
AGENT_TYPE_ROUTED = "Routed L3 agent"

#: Network types a routed host serves (networking-calico's pair).
ROUTED_NETWORK_TYPES = frozenset({"local", "flat"})

#: Host side of every routed tap (networking-calico's value, so operators recognise it).
HOST_SIDE_MAC = "00:61:fe:ed:ca:fe"


class RoutedMechanismDriver(AgentMechanismDriverBase):
    """``[ml2] mechanism_drivers = routed`` (or ``calico``)."""

    connectivity = "l3"
    agent_type = AGENT_TYPE_ROUTED
    vif_type = VIF_TYPE_TAP

    def allowed_network_types(self, agent: AgentInfo) -> Collection[str]:
        return ROUTED_NETWORK_TYPES

    def mappings(self, agent: AgentInfo) -> Mapping[str, str]:
        # Nothing is bridged on a routed host: no physical network needs a mapping.
        return {}

    def segment_problem(self, agent: AgentInfo, segment: Segment) -> str | None:
        ntype = segment.network_type
        if ntype not in ROUTED_NETWORK_TYPES:
            return (f"segment type {ntype} is not routed "
                    f"({agent.agent_type} binds {' and '.join(sorted(ROUTED_NETWORK_TYPES))} networks)")
        return None

    def vif_details(
        self, agent: AgentInfo, segment: Segment, context: PortContext
    ) -> dict[str, Any]:
        return {
            "port_filter": True,
            "mac_address": HOST_SIDE_MAC,
            "connectivity": self.connectivity,
        }

"""``l2population``: accepted so that a Neutron ``ml2_conf.ini`` starts unchanged.

In Neutron, ``mechanism_drivers = openvswitch,l2population`` adds a driver that
tells every agent the (MAC, IP, tunnel endpoint) of the other ports of its
networks, so agents need no flooding or multicast to learn them. Netplex's host
agents always do this themselves from the change feed (``netplex/agent/l2pop.py``:
FDB and ARP entries for the other hosts of each network), so this driver does
nothing: it says so once at start-up and declines every binding, which the binding
diagnostics show as "does not bind ports".
"""

from __future__ import annotations

import logging

from netplex.core.mech_api import MechanismDriver, PortContext

__all__ = ["L2populationMechanismDriver", "NOTICE"]

LOG = logging.getLogger(__name__)

#: The start-up line (also what tests look for).
NOTICE = ("mechanism driver l2population: accepted, no effect because Netplex's host agents "
          "always populate forwarding entries from the change feed (no flooding, no multicast)")


class L2populationMechanismDriver(MechanismDriver):
    """``[ml2] mechanism_drivers = ...,l2population``: a no-op that says so at start-up."""

    def initialize(self) -> None:
        LOG.info(NOTICE)

    def bind_port(self, context: PortContext) -> None:
        context.decline("l2population does not bind ports (agents populate forwarding entries themselves)")

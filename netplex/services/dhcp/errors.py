"""Neutron's error bodies of the DHCP agent scheduler and extra DHCP options."""

from __future__ import annotations

from netplex.errors import BadRequest, Conflict, NotFound

__all__ = [
    "ExtraDhcpOptInvalid",
    "InvalidDHCPAgent",
    "NetworkHostedByDHCPAgent",
    "NetworkNotHostedByDhcpAgent",
]


class InvalidDHCPAgent(NotFound):
    """Neutron's: a subclass of AgentNotFound (404)."""


    message = "Agent {id} is not a valid DHCP Agent or has been disabled."


class NetworkHostedByDHCPAgent(Conflict):
    message = "The network {network_id} has been already hosted by the DHCP Agent {agent_id}."


class NetworkNotHostedByDhcpAgent(Conflict):
    message = "The network {network_id} is not hosted by the DHCP agent {agent_id}."


class ExtraDhcpOptInvalid(BadRequest):
    message = "Invalid input for extra_dhcp_opts. Reason: {reason}."

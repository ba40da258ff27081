"""Configuration options of the dhcp service (declared through the ``netplex.config_options`` entry point).

Its own module, importing nothing but :mod:`netplex.config`, because every process that
reads a configuration file (agents included) loads the declared options.

Neutron keeps its DHCP scheduling options in ``[DEFAULT]``; declaring them here makes
them honoured instead of "accepted, no effect" (a declared option wins over that table).
"""

from __future__ import annotations

from netplex.config import Opt, parse_bool, parse_positive_int

__all__ = ["CONFIG_OPTIONS", "DHCP_AGENT_TYPE"]

#: ``agent_type`` a DHCP agent reports in ``/v2.0/agents`` (Neutron's).
DHCP_AGENT_TYPE = "DHCP agent"

CONFIG_OPTIONS: dict[str, list[Opt]] = {
    "DEFAULT": [
        Opt("dhcp_agents_per_network", parse_positive_int, 1,
            "Number of DHCP agents scheduled to serve each network with DHCP subnets (2 or more: HA)."),
        Opt("network_auto_schedule", parse_bool, True,
            "Schedule networks with DHCP-enabled subnets to DHCP agents automatically."),
        Opt("allow_automatic_dhcp_failover", parse_bool, True,
            "Move a network off a DHCP agent that has been dead for agent_down_time to a live one."),
        Opt("dhcp_lease_duration", parse_positive_int, 86400, "DHCP lease time in seconds."),
    ],
    "dhcp": [
        Opt("enabled", parse_bool, True,
            "Serve DHCP scheduling and extra_dhcp_opts (Neutron's DHCP is core: on unless false)."),
        Opt("schedule_interval", parse_positive_int, 5,
            "Seconds between scheduling passes (new DHCP networks, dead agents' networks)."),
    ],
}

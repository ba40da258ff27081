"""Neutron's ``[securitygroup]`` options (declared through the ``netplex.config_options`` entry point).

Its own module, importing nothing but :mod:`netplex.config`, because every process that
reads a configuration file (agents included) loads the declared options.
"""

from __future__ import annotations

from netplex.config import Opt, parse_bool

__all__ = ["CONFIG_OPTIONS"]

#: Neutron's ``[securitygroup]`` section (``netplex.config_options`` entry point).
CONFIG_OPTIONS = {
    "securitygroup": [
        Opt("enable_security_group", parse_bool, True,
            "Serve security groups and port security (the API and its enforcement on every host)."),
        Opt("firewall_driver", str, "",
            "Accepted for Neutron files, no effect: each host backend enforces groups its own way "
            "(nftables on Linux-bridge and routed hosts, OpenFlow conntrack on Open vSwitch)."),
        Opt("enable_ipset", parse_bool, True,
            "Accepted for Neutron files, no effect: remote groups are always nftables sets."),
        Opt("permitted_ethertypes", str, "", "Accepted for Neutron files, no effect."),
    ],
}

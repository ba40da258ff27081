"""Neutron's ``[quotas]`` options (declared through the ``netplex.config_options`` entry point).

Its own module, importing nothing but :mod:`netplex.config`, because every process that
reads a configuration file (agents included) loads the declared options. Defaults are
Neutron's; ``-1`` means unlimited.
"""

from __future__ import annotations

from netplex.config import Opt, parse_bool

__all__ = ["CONFIG_OPTIONS", "RESOURCE_OPTIONS"]


def parse_limit(value: str) -> int:
    n = int(value)
    if n < -1:
        raise ValueError(f"expected -1 (unlimited) or an integer >= 0, got {n}")
    return n


#: Resource name -> (option, Neutron's default).
RESOURCE_OPTIONS: dict[str, tuple[str, int]] = {
    "network": ("quota_network", 100),
    "subnet": ("quota_subnet", 100),
    "port": ("quota_port", 500),
    "router": ("quota_router", 10),
    "floatingip": ("quota_floatingip", 50),
    "security_group": ("quota_security_group", 10),
    "security_group_rule": ("quota_security_group_rule", 100),
}

CONFIG_OPTIONS = {
    "quotas": [
        *(Opt(opt, parse_limit, default, f"Default limit of {res}s per project (-1: unlimited).")
          for res, (opt, default) in RESOURCE_OPTIONS.items()),
        Opt("default_quota", parse_limit, -1,
            "Default limit of resources without their own quota_<resource> option (-1: unlimited)."),
        Opt("quota_rbac_policy", parse_limit, 10, "Accepted for Neutron files.",
            no_effect="RBAC policies are not built"),
        Opt("quota_driver", str, "", "Accepted for Neutron files.",
            no_effect="Netplex counts usage in the database itself (one driver)"),
        Opt("track_quota_usage", parse_bool, True, "Accepted for Neutron files.",
            no_effect="usage is always counted from the resources' own rows"),
    ],
}

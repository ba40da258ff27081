"""BGP route distribution for routed hosts (``[routed] route_distribution = bgp``): the BIRD 2 config.

The agent never talks BGP itself. It installs its local endpoints' host
routes with protocol :data:`netplex.agent.routed_plan.ROUTE_PROTO` as in feed
mode, and a BIRD 2 daemon of its own (one per host, started by the agent,
config rendered here) does the rest:

* ``protocol kernel`` with ``learn``: imports exactly the kernel routes of
  that protocol (``krt_source``) - this host's endpoints - and exports into
  the kernel what BGP learned (those routes carry protocol ``bird``, so the
  agent's own observe never sees them, and never removes them);
* one ``protocol bgp`` per configured peer (``[routed] bgp_peers``): the
  other routed hosts (a full iBGP mesh on one underlay) or a route reflector /
  top-of-rack router. IPv4 peers carry the ``ipv4`` channel, IPv6 peers the
  ``ipv6`` one, each exporting only the learned endpoint routes, with this
  host as next hop (``next hop self``).

The config depends on the settings only, not on ports: a port that comes or
goes changes a kernel route, which BIRD's kernel protocol notices on its own.
So the file is written, and BIRD reloaded with ``birdc configure``, only when
it differs from what runs (agent start with changed settings), never per
change, and BIRD is never restarted by a change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BgpSettings", "render_bird_config"]


@dataclass(frozen=True)
class BgpSettings:
    router_id: str
    local_as: int
    peers: Sequence[str]
    proto: int
    #: Seconds; the default hold time (90 s) made withdrawals slow for a dead host.
    hold_time: int = 9
    #: Where BIRD logs (empty: syslog).
    log_file: str = ""


def render_bird_config(s: BgpSettings) -> str:
    """The whole ``bird.conf`` of one routed host."""
    ipaddress.IPv4Address(s.router_id)  # BIRD's router id is an IPv4 address
    lines = ["# Written by netplex agent --mechanism routed (route_distribution = bgp); do not edit.",
             f"router id {s.router_id};"]
    if s.log_file:
        lines.append(f'log "{s.log_file}" all;')
    lines += [
        "protocol device { scan time 10; }",
        "",
    ]
    for family in ("ipv4", "ipv6"):
        lines += [
            f"protocol kernel kernel_{family} {{",
            "  learn;",
            "  scan time 5;",
            f"  {family} {{",
            f"    import where krt_source = {int(s.proto)};",
            "    export where source = RTS_BGP;",
            "  };",
            "}",
            "",
        ]
    for i, peer in enumerate(s.peers):
        addr = ipaddress.ip_address(peer)
        family = "ipv4" if addr.version == 4 else "ipv6"
        lines += [
            f"protocol bgp peer{i} {{",
            f"  local as {int(s.local_as)};",
            f"  neighbor {addr} as {int(s.local_as)};",
            f"  hold time {int(s.hold_time)};",
            "  connect retry time 2;",
            "  error wait time 2, 20;",
            "  direct;",
            f"  {family} {{",
            "    import all;",
            "    export where source = RTS_INHERIT;",
            "    next hop self;",
            "  };",
            "}",
            "",
        ]
    return "\n".join(lines)

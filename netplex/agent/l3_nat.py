"""The NAT plan of one router: its desired state rendered as one ``nft -f`` transaction.

Pure (no I/O), so the L3 agent and the routed host's floating-IP code can both plan from
desired state and apply the result with :func:`netplex.linux.nftables.apply_script`.
The script deletes and recreates the router's own table inside a single transaction: the
kernel swaps the ruleset atomically and conntrack keeps established NAT sessions (their
translation lives in the conntrack entry, not the rule), so a resync or an agent restart
does not break existing flows.

Rules:
- floating IP (1:1): DNAT ``daddr fip -> fixed`` in prerouting, SNAT ``saddr fixed -> fip``
  in postrouting, placed before the router's SNAT so a VM with a floating IP leaves by it;
- SNAT for the router's internal subnets to the gateway address when ``enable_snat``;
  traffic between two internal subnets is never translated (east-west keeps real sources).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["FloatingIPRule", "RouterNat", "TABLE", "render"]

#: The table name in the router's namespace (or on a routed host, one per router: see ``table``).
TABLE = "netplex-l3"


@dataclass(frozen=True)
class FloatingIPRule:
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True)
class RouterNat:
    """What a router's NAT must do.

    :param gateway_ip: the router's address on the external network (None: no gateway).
    :param gateway_device: the router namespace's device on the external network.
    :param internal_cidrs: the subnets of the router's interfaces.
    """

    gateway_ip: str | None
    gateway_device: str | None
    internal_cidrs: Sequence[str] = ()
    enable_snat: bool = True
    floating_ips: Sequence[FloatingIPRule] = field(default_factory=tuple)
    table: str = TABLE


def _v4(text: str) -> str:
    return str(ipaddress.IPv4Address(text))


def _net(text: str) -> str:
    return str(ipaddress.IPv4Network(text, strict=False))


def render(nat: RouterNat) -> str:
    """The whole ``nft -f`` script for ``nat`` (idempotent: safe on a fresh namespace too)."""
    internal = sorted({_net(c) for c in nat.internal_cidrs})
    fips = sorted({(_v4(f.floating_ip), _v4(f.fixed_ip)) for f in nat.floating_ips})
    lines = [
        # 'add' before 'delete' so the delete never fails on a fresh namespace.
        f"add table ip {nat.table}",
        f"delete table ip {nat.table}",
        f"table ip {nat.table} {{",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
    ]
    for fip, fixed in fips:
        lines.append(f"    ip daddr {fip} dnat to {fixed}")
    lines += [
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
    ]
    for fip, fixed in fips:
        lines.append(f"    ip daddr {fip} dnat to {fixed}")
    lines += [
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    if internal:
        # East-west between the router's own subnets keeps its real source.
        nets = ", ".join(internal)
        lines.append(f"    ip saddr {{ {nets} }} ip daddr {{ {nets} }} accept")
    for fip, fixed in fips:
        lines.append(f"    ip saddr {fixed} snat to {fip}")
    if nat.enable_snat and nat.gateway_ip and nat.gateway_device and internal:
        nets = ", ".join(internal)
        lines.append(f'    oifname "{nat.gateway_device}" ip saddr {{ {nets} }} snat to {_v4(nat.gateway_ip)}')
    lines += ["  }", "}", ""]
    return "\n".join(lines)

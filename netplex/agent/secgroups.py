"""Security groups and port security of one host, as data: what the filter must enforce.

Built from the server's dicts (the host state and the feed keep them in
:class:`netplex.agent.cache.HostCache`) by :func:`security_from_api`; pure and
frozen. :mod:`netplex.agent.secgroups_nft` renders it as nftables tables and
plans the difference to what the kernel has; :mod:`netplex.agent.secgroups_backend`
adds that to a host backend's pass.

Semantics (Neutron's):

* a port with ``port_security_enabled`` false (or a server that does not say:
  the key is missing) gets no filter at all, everything passes; so do the
  network's own ports (``device_owner`` ``network:*``: DHCP, router
  interfaces), which Neutron's firewall drivers never filter either;
* a port with port security gets anti-spoofing (its MAC and fixed IPs plus the
  allowed address pairs; the IPv6 link-local address derived from each allowed
  MAC) and its groups' rules; what no rule allows is dropped. A port with port
  security and no groups therefore passes only ARP/ND/DHCP;
* a port is stateful (conntrack: replies of allowed traffic pass, invalid
  packets are dropped) unless every one of its groups says ``stateful: false``
  (Neutron refuses mixing the two on one port). A stateless port needs rules
  both ways, as in Neutron;
* ``remote_group_id`` matches the addresses (fixed IPs and allowed address
  pairs) of every member port of that group, on any host: a named set per
  group, so a membership change is a set update.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netplex.agent.names import tap_name

__all__ = [
    "GroupRules",
    "PortFilter",
    "RemoteGroup",
    "Rule",
    "SecurityDesired",
    "link_local",
    "protocol_number",
    "security_from_api",
]

LOG = logging.getLogger(__name__)

#: IANA protocol numbers of the names Neutron accepts.
PROTOCOLS: Mapping[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58,
    "igmp": 2, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
    "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113,
    "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

#: Protocols whose port_range_min/max are transport ports.
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})


def protocol_number(protocol: Any, ethertype: str) -> int | None:
    """Neutron's ``protocol`` as a number; None for "any". ValueError when unknown.

    ``icmp`` on an IPv6 rule means ICMPv6, as in Neutron."""
    if protocol is None or str(protocol).strip().lower() in ("", "any"):
        return None
    text = str(protocol).strip().lower()
    if text.isdigit():
        num = int(text)
        if not 0 <= num <= 255:
            raise ValueError(f"protocol number {num} out of range")
    elif text in PROTOCOLS:
        num = PROTOCOLS[text]
    else:
        raise ValueError(f"unknown protocol {protocol!r}")
    if num == 1 and ethertype == "IPv6":
        return 58
    return num


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled security group rule (already split by direction and family)."""

    direction: str  # "ingress" (to the port) | "egress" (from the port)
    ethertype: str  # "IPv4" | "IPv6"
    protocol: int | None = None
    #: Transport ports (tcp/udp/sctp/...) or, for ICMP, the type (min) and code (max).
    port_min: int | None = None
    port_max: int | None = None
    remote_prefix: str | None = None
    remote_group: str | None = None


@dataclass(frozen=True, slots=True)
class PortFilter:
    """A local port with port security: who it may claim to be and what may pass."""

    port_id: str
    device: str
    #: Allowed source MACs (the port's first, then the pairs'), lower case.
    macs: tuple[str, ...]
    #: Allowed source addresses as CIDRs (fixed IPs, pairs; v6 also the link-local ones).
    ips4: tuple[str, ...] = ()
    ips6: tuple[str, ...] = ()
    stateful: bool = True
    #: The port's security groups (their rules are :attr:`SecurityDesired.groups`).
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupRules:
    """One group's compiled rules (a group the server did not send has none)."""

    group_id: str
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoteGroup:
    """The member addresses of a group some local port's rules refer to."""

    group_id: str
    ips4: tuple[str, ...] = ()
    ips6: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SecurityDesired:
    """Everything the host's filter must contain; empty = no filter objects at all."""

    ports: tuple[PortFilter, ...] = ()
    #: Every group of a filtered port, by id order.
    groups: tuple[GroupRules, ...] = ()
    remote_groups: tuple[RemoteGroup, ...] = ()

    def port(self, port_id: str) -> PortFilter | None:
        for p in self.ports:
            if p.port_id == port_id:
                return p
        return None


def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address of ``mac`` (what a VM uses for ND and DHCPv6)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = [f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return str(ipaddress.IPv6Address("fe80::" + ":".join(groups)))


def _collapse(nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> tuple[str, ...]:
    """Non-overlapping CIDRs (an nftables interval set refuses overlapping elements)."""
    return tuple(str(n) for n in ipaddress.collapse_addresses(sorted(set(nets))))  # type: ignore[type-var,arg-type]


def _addresses(port: Mapping[str, Any]) -> tuple[list[ipaddress.IPv4Network], list[ipaddress.IPv6Network]]:
    """A port's fixed IPs and address-pair prefixes, split by family; bad entries skipped."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    texts = [str(ip.get("ip_address") or "") for ip in port.get("fixed_ips") or ()
             if isinstance(ip, Mapping)]
    texts += [str(pair.get("ip_address") or "") for pair in port.get("allowed_address_pairs") or ()
              if isinstance(pair, Mapping)]
    for text in texts:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        (v4 if net.version == 4 else v6).append(net)  # type: ignore[arg-type]
    return v4, v6


def _macs(port: Mapping[str, Any]) -> tuple[str, ...]:
    out = [str(port.get("mac_address") or "").lower()]
    for pair in port.get("allowed_address_pairs") or ():
        if isinstance(pair, Mapping) and pair.get("mac_address"):
            out.append(str(pair["mac_address"]).lower())
    return tuple(dict.fromkeys(m for m in out if m))


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def compile_rule(rule: Mapping[str, Any]) -> Rule:
    """A rule dict as :class:`Rule`; ValueError for what cannot be enforced."""
    direction = str(rule.get("direction") or "")
    ethertype = str(rule.get("ethertype") or "IPv4")
    if direction not in ("ingress", "egress") or ethertype not in ("IPv4", "IPv6"):
        raise ValueError(f"direction {direction!r} / ethertype {ethertype!r}")
    proto = protocol_number(rule.get("protocol"), ethertype)
    pmin, pmax = _int(rule.get("port_range_min")), _int(rule.get("port_range_max"))
    if proto not in PORT_PROTOCOLS and proto not in (1, 58):
        pmin = pmax = None  # Neutron ignores ports for other protocols
    elif proto in PORT_PROTOCOLS and pmin is None:
        pmax = None
    prefix = rule.get("normalized_cidr") or rule.get("remote_ip_prefix")
    if prefix:
        net = ipaddress.ip_network(str(prefix), strict=False)
        if net.version != (4 if ethertype == "IPv4" else 6):
            raise ValueError(f"remote_ip_prefix {prefix} is not {ethertype}")
        prefix = str(net)
    group = rule.get("remote_group_id")
    return Rule(direction=direction, ethertype=ethertype, protocol=proto, port_min=pmin,
                port_max=pmax, remote_prefix=prefix or None, remote_group=str(group) if group else None)


def security_from_api(local_ports: Iterable[Mapping[str, Any]], groups: Iterable[Mapping[str, Any]],
                      member_ports: Iterable[Mapping[str, Any]]) -> SecurityDesired:
    """This host's :class:`SecurityDesired`.

    :param local_ports: the ports bound here (port dicts, any order).
    :param groups: group dicts (``id``, ``stateful``, ``security_group_rules``).
    :param member_ports: ports of any host that may be members of a remote group
        (``id``, ``fixed_ips``, ``allowed_address_pairs``, ``security_groups``); local
        ports are members too and need not be repeated.
    """
    by_id = {str(g["id"]): g for g in groups if isinstance(g, Mapping) and g.get("id")}
    compiled: dict[str, tuple[Rule, ...]] = {}
    filters: list[PortFilter] = []
    locals_ = [p for p in local_ports if p.get("port_security_enabled") is True and p.get("id")
               and not str(p.get("device_owner") or "").startswith("network:")]
    for port in locals_:
        gids = list(dict.fromkeys(str(g) for g in port.get("security_groups") or ()))
        for gid in gids:
            if gid not in compiled:
                compiled[gid] = _group_rules(by_id.get(gid), gid)
        known = [by_id[g] for g in gids if g in by_id]
        stateful = not known or any(g.get("stateful", True) is not False for g in known)
        v4, v6 = _addresses(port)
        macs = _macs(port)
        v6 += [ipaddress.IPv6Network(link_local(m)) for m in macs]
        filters.append(PortFilter(port_id=str(port["id"]), device=tap_name(str(port["id"])),
                                  macs=macs, ips4=_collapse(v4), ips6=_collapse(v6),
                                  stateful=stateful, groups=tuple(gids)))
    wanted = sorted({r.remote_group for rules in compiled.values() for r in rules if r.remote_group})
    members: dict[str, tuple[list[Any], list[Any]]] = {g: ([], []) for g in wanted}
    seen: set[str] = set()
    for port in [*locals_, *member_ports]:
        pid = str(port.get("id") or "")
        if pid in seen:
            continue
        seen.add(pid)
        hit = [g for g in (str(x) for x in port.get("security_groups") or ()) if g in members]
        if not hit or port.get("port_security_enabled") is False:
            continue
        v4, v6 = _addresses(port)
        for g in hit:
            members[g][0].extend(v4)
            members[g][1].extend(v6)
    return SecurityDesired(
        ports=tuple(sorted(filters, key=lambda f: f.port_id)),
        groups=tuple(GroupRules(g, tuple(dict.fromkeys(compiled[g]))) for g in sorted(compiled)),
        remote_groups=tuple(RemoteGroup(g, _collapse(members[g][0]), _collapse(members[g][1]))
                            for g in wanted))


def _group_rules(group: Mapping[str, Any] | None, gid: str) -> tuple[Rule, ...]:
    if group is None:
        LOG.warning("security group %s is not known here: its rules are not applied", gid)
        return ()
    out: list[Rule] = []
    for rule in group.get("security_group_rules") or ():
        try:
            out.append(compile_rule(rule))
        except (ValueError, TypeError) as exc:
            LOG.warning("security group %s: rule %s not enforced: %s", gid, rule.get("id"), exc)
    return tuple(out)

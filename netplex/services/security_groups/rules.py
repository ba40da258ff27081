"""Security group rules as Neutron reads them: protocol names, port ranges, ICMP type/code, prefixes.

Pure functions. :func:`check_rule` turns a validated request body into a
:class:`RuleSpec` (what is stored) or raises Neutron's error for the first
problem; :attr:`RuleSpec.match_key` is the canonical form two duplicate rules
share (``tcp`` and ``6`` are the same protocol, ``10.0.0.5/24`` is
``10.0.0.0/24``, a missing prefix is "anywhere").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netplex.errors import InvalidInput
from netplex.services.security_groups import errors as e

__all__ = ["IP_PROTOCOLS", "PORT_PROTOCOLS", "RuleSpec", "check_rule", "protocol_number"]

#: Neutron's protocol names and their IANA numbers (``any`` is every protocol).
IP_PROTOCOLS: Mapping[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2,
    "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
    "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
    "udplite": 136, "vrrp": 112,
}
#: Protocols whose rules may carry port ranges (by number).
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})
ICMP_PROTOCOLS = frozenset({1, 58})
#: IPv6 protocol numbers that make no sense with an IPv4 rule.
_IPV6_ONLY = frozenset({58, 41, 43, 44, 59, 60})
ETHERTYPES = {"ipv4": "IPv4", "ipv6": "IPv6"}


def protocol_number(protocol: str | None) -> int | None:
    """The IANA number of a stored protocol (None: any)."""
    if protocol is None:
        return None
    return int(protocol) if protocol.isdigit() else IP_PROTOCOLS[protocol]


def _protocol(value: Any) -> str | None:
    """Neutron's converter: a name (any case) or 0..255 as int or text; ``any``/0/None mean any."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if isinstance(value, bool) or text == "":
        raise e.SecurityGroupRuleInvalidProtocol(protocol=value, values=sorted(IP_PROTOCOLS))
    if text in ("any", "0"):
        return None
    if text.isdigit():
        if int(text) > 255:
            raise e.SecurityGroupRuleInvalidProtocol(protocol=value, values=sorted(IP_PROTOCOLS))
        return str(int(text))
    if text not in IP_PROTOCOLS:
        raise e.SecurityGroupRuleInvalidProtocol(protocol=value, values=sorted(IP_PROTOCOLS))
    return text


def _port(value: Any, *, low: int, high: int, field: str, icmp: bool) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        n = int(value)
    except (TypeError, ValueError):
        raise e.SecurityGroupInvalidPortValue(port=value) from None
    if not low <= n <= high:
        if icmp:
            raise e.SecurityGroupInvalidIcmpValue(field=field, attr=value)
        raise e.SecurityGroupInvalidPortValue(port=value)
    return n


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule as stored: protocol and prefix as the caller wrote them, plus the prefix's network."""

    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None
    #: ``remote_ip_prefix`` as a network (``10.0.0.5/24`` -> ``10.0.0.0/24``): Neutron's normalized_cidr.
    normalized_cidr: str | None = None

    @property
    def match_key(self) -> str:
        any_prefix = "0.0.0.0/0" if self.ethertype == "IPv4" else "::/0"
        prefix = self.normalized_cidr or (None if self.remote_group_id else any_prefix)
        return "|".join(str(x) for x in (
            self.direction, self.ethertype, protocol_number(self.protocol), self.port_range_min,
            self.port_range_max, prefix, self.remote_group_id))


def check_rule(body: Mapping[str, Any]) -> RuleSpec:
    """Validate one rule body (keys as in Neutron's API) in Neutron's order of checks."""
    direction = body.get("direction")
    if direction not in ("ingress", "egress"):
        raise e.SecurityGroupRuleInvalidDirection(direction=direction)
    raw_eth = body.get("ethertype") or "IPv4"
    ethertype = ETHERTYPES.get(str(raw_eth).lower())
    if ethertype is None:
        raise e.SecurityGroupRuleInvalidEtherType(ethertype=raw_eth, values=["IPv4", "IPv6"])
    protocol = _protocol(body.get("protocol"))
    number = protocol_number(protocol)
    remote_group = body.get("remote_group_id")
    prefix = body.get("remote_ip_prefix")
    if body.get("remote_address_group_id") is not None:
        if remote_group is not None or prefix is not None:
            raise e.SecurityGroupMultipleRemoteResources()
        raise e.RemoteAddressGroupsNotBuilt()
    if remote_group is not None and prefix is not None:
        raise e.SecurityGroupRemoteGroupAndRemoteIpPrefix()
    icmp = number in ICMP_PROTOCOLS
    low = 0 if icmp else 1
    high = 255 if icmp else 65535
    pmin = _port(body.get("port_range_min"), low=low, high=high, field="type", icmp=icmp)
    pmax = _port(body.get("port_range_max"), low=low, high=high, field="code", icmp=icmp)
    if pmin is not None or pmax is not None:
        if icmp:
            if pmin is None:
                raise e.SecurityGroupMissingIcmpType(value=pmax)
        elif number in PORT_PROTOCOLS:
            if pmin is None or pmax is None:
                raise e.SecurityGroupInvalidPortValue(port=pmin if pmax is None else pmax)
            if pmin > pmax:
                raise e.SecurityGroupInvalidPortRange()
        else:
            raise e.SecurityGroupInvalidProtocolForPortRange(
                protocols="tcp, udp, sctp, dccp, udplite, icmp, icmpv6", protocol=protocol or "any")
    if ethertype == "IPv4" and number in _IPV6_ONLY:
        raise e.SecurityGroupEthertypeConflictWithProtocol(ethertype=ethertype, protocol=protocol)
    normalized = None
    if prefix is not None:
        try:
            net = ipaddress.ip_network(str(prefix), strict=False)
        except ValueError:
            raise InvalidInput(error_message=f"'{prefix}' is not a valid IP subnet") from None
        if (net.version == 4) != (ethertype == "IPv4"):
            raise e.SecurityGroupRuleParameterConflict(ethertype=ethertype, cidr=prefix)
        normalized = str(net)
    return RuleSpec(direction=direction, ethertype=ethertype, protocol=protocol, port_range_min=pmin,
                    port_range_max=pmax, remote_ip_prefix=None if prefix is None else str(prefix),
                    remote_group_id=remote_group, normalized_cidr=normalized)

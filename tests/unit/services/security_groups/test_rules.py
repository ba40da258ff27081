"""Rule validation as Neutron does it: each bad input gets Neutron's error type."""

from __future__ import annotations

from typing import Any

import pytest

from netplex.errors import InvalidInput
from netplex.services.security_groups import errors as e
from netplex.services.security_groups.rules import check_rule


def rule(**kw: Any) -> dict[str, Any]:
    return {"direction": "ingress", **kw}


@pytest.mark.parametrize("proto,stored", [
    ("tcp", "tcp"), ("TCP", "tcp"), (6, "6"), ("6", "6"), ("icmpv6", "icmpv6"), ("any", None),
    (0, None), (None, None), (255, "255"), ("ipv6-icmp", "ipv6-icmp"),
])
def test_protocols_by_name_or_number(proto: Any, stored: str | None) -> None:
    eth = "IPv6" if proto in ("icmpv6", "ipv6-icmp") else "IPv4"
    assert check_rule(rule(protocol=proto, ethertype=eth)).protocol == stored


@pytest.mark.parametrize("proto", ["tcpx", 256, -1, "", True])
def test_unknown_protocol(proto: Any) -> None:
    with pytest.raises(e.SecurityGroupRuleInvalidProtocol):
        check_rule(rule(protocol=proto))


def test_direction_and_ethertype() -> None:
    with pytest.raises(e.SecurityGroupRuleInvalidDirection):
        check_rule({"direction": "sideways"})
    with pytest.raises(e.SecurityGroupRuleInvalidEtherType):
        check_rule(rule(ethertype="IPv5"))
    assert check_rule(rule(ethertype="ipv6")).ethertype == "IPv6"
    assert check_rule(rule()).ethertype == "IPv4"


def test_port_ranges() -> None:
    r = check_rule(rule(protocol="tcp", port_range_min=22, port_range_max=22))
    assert (r.port_range_min, r.port_range_max) == (22, 22)
    with pytest.raises(e.SecurityGroupInvalidPortRange):
        check_rule(rule(protocol="udp", port_range_min=100, port_range_max=10))
    with pytest.raises(e.SecurityGroupInvalidPortValue):
        check_rule(rule(protocol="tcp", port_range_min=0, port_range_max=10))
    with pytest.raises(e.SecurityGroupInvalidPortValue):
        check_rule(rule(protocol="tcp", port_range_min=1, port_range_max=70000))
    with pytest.raises(e.SecurityGroupInvalidPortValue):
        check_rule(rule(protocol="tcp", port_range_max=80))
    with pytest.raises(e.SecurityGroupInvalidProtocolForPortRange):
        check_rule(rule(protocol="gre", port_range_min=1, port_range_max=2))
    with pytest.raises(e.SecurityGroupInvalidProtocolForPortRange):
        check_rule(rule(port_range_min=1, port_range_max=2))


def test_icmp_type_and_code() -> None:
    r = check_rule(rule(protocol="icmp", port_range_min=8, port_range_max=0))
    assert (r.port_range_min, r.port_range_max) == (8, 0)
    assert check_rule(rule(protocol="icmp", port_range_min=8)).port_range_max is None
    with pytest.raises(e.SecurityGroupMissingIcmpType):
        check_rule(rule(protocol="icmp", port_range_max=0))
    with pytest.raises(e.SecurityGroupInvalidIcmpValue):
        check_rule(rule(protocol="icmp", port_range_min=256))


def test_prefixes() -> None:
    r = check_rule(rule(remote_ip_prefix="10.0.0.5/24"))
    assert (r.remote_ip_prefix, r.normalized_cidr) == ("10.0.0.5/24", "10.0.0.0/24")
    with pytest.raises(e.SecurityGroupRuleParameterConflict):
        check_rule(rule(remote_ip_prefix="::/0"))
    with pytest.raises(e.SecurityGroupRuleParameterConflict):
        check_rule(rule(ethertype="IPv6", remote_ip_prefix="10.0.0.0/8"))
    with pytest.raises(InvalidInput):
        check_rule(rule(remote_ip_prefix="not-a-cidr"))
    with pytest.raises(e.SecurityGroupRemoteGroupAndRemoteIpPrefix):
        check_rule(rule(remote_ip_prefix="10.0.0.0/8", remote_group_id="g"))
    with pytest.raises(e.SecurityGroupEthertypeConflictWithProtocol):
        check_rule(rule(protocol="icmpv6"))
    with pytest.raises(e.RemoteAddressGroupsNotBuilt):
        check_rule(rule(remote_address_group_id="x"))


def test_duplicates_share_a_match_key() -> None:
    same = [rule(protocol="tcp", port_range_min=80, port_range_max=80),
            rule(protocol="6", port_range_min=80, port_range_max=80),
            rule(protocol=6, port_range_min="80", port_range_max=80, remote_ip_prefix="0.0.0.0/0")]
    assert len({check_rule(r).match_key for r in same}) == 1
    assert check_rule(rule(protocol="udp", port_range_min=80, port_range_max=80)).match_key != \
        check_rule(same[0]).match_key
    assert check_rule(rule(remote_ip_prefix="10.0.0.1/24")).match_key == \
        check_rule(rule(remote_ip_prefix="10.0.0.0/24")).match_key

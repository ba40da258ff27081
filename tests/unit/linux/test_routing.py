"""Routed hosts' iproute2 batch lines: what goes on a line, and what never may."""

from __future__ import annotations

import pytest

from netplex.linux.neigh import Neighbour, ProxyEntry, neigh_line, proxy_line
from netplex.linux.routing import Route, address_line, route_line, tuntap_line


def test_route_lines_carry_our_protocol_and_canonical_prefixes() -> None:
    assert route_line("replace", Route("10.0.0.5/32", dev="tap1"), 78) == (
        "route replace 10.0.0.5/32 dev tap1 scope link proto 78")
    assert route_line("del", Route("2001:0db8::6/128", via="2001:db8:ff::2"), 78) == (
        "route del 2001:db8::6/128 via 2001:db8:ff::2 proto 78")
    assert Route("2001:db8::6/128").version == 6


@pytest.mark.parametrize("bad", [
    lambda: route_line("replace", Route("10.0.0.5/32", dev="tap1 table 5"), 78),
    lambda: route_line("replace", Route("10.0.0.5/32", via="10.0.0.1; reboot"), 78),
    lambda: route_line("flush", Route("10.0.0.5/32"), 78),
    lambda: address_line("replace", "tap1", "not-an-ip"),
    lambda: neigh_line("replace", Neighbour("tap1", "10.0.0.5", "FA:16:3E:00:00:01 x")),
    lambda: proxy_line("add", ProxyEntry("a-very-long-device-name", "fd00::1")),
    lambda: tuntap_line("tap1\nlink del eth0", "x"),
])
def test_server_data_cannot_inject_batch_commands(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        bad()


def test_addresses_are_host_prefixes_and_ipv6_skips_dad() -> None:
    assert address_line("replace", "tap1", "10.0.0.1") == "addr replace 10.0.0.1/32 dev tap1"
    assert address_line("replace", "tap1", "fd00::1") == "addr replace fd00::1/128 dev tap1 nodad"
    assert address_line("del", "tap1", "fd00::1") == "addr del fd00::1/128 dev tap1"
    assert neigh_line("del", Neighbour("tap1", "10.0.0.5", "")) == "neigh del 10.0.0.5 dev tap1"


def test_table_routes_and_rules() -> None:
    from netplex.linux.routing import Rule, rule_line

    assert route_line("replace", Route("10.0.0.6/32", via="192.0.2.2", table=1310720001), 78) == (
        "route replace 10.0.0.6/32 via 192.0.2.2 table 1310720001 proto 78")
    assert rule_line("add", Rule(4, 1000, "tap1", 7)) == "rule add prio 1000 iif tap1 lookup 7"
    assert rule_line("del", Rule(6, 1001, "tap1", None)) == "rule del prio 1001 iif tap1 prohibit"
    assert rule_line("add", Rule(6, 1000, "tap1", 7, "fd00::5")) == (
        "rule add prio 1000 iif tap1 from fd00::5/128 lookup 7")

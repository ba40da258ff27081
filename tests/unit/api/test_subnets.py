from __future__ import annotations

import pytest

from tests.unit.api.conftest import Api


def test_defaults_v4(api: Api) -> None:
    net = api.net()
    sub = api.subnet(net["id"], "10.1.0.0/24")
    assert sub["gateway_ip"] == "10.1.0.1"
    assert sub["allocation_pools"] == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert sub["enable_dhcp"] is True and sub["ip_version"] == 4


def test_no_gateway_and_explicit_pools(api: Api) -> None:
    net = api.net()
    sub = api.subnet(net["id"], "10.2.0.0/24", gateway_ip=None)
    assert sub["gateway_ip"] is None
    assert sub["allocation_pools"] == [{"start": "10.2.0.1", "end": "10.2.0.254"}]
    sub2 = api.subnet(net["id"], "10.3.0.0/24", allocation_pools=[{"start": "10.3.0.10", "end": "10.3.0.20"}])
    assert sub2["allocation_pools"] == [{"start": "10.3.0.10", "end": "10.3.0.20"}]


def test_v6_slaac_and_stateful(api: Api) -> None:
    net = api.net()
    sub = api.subnet(net["id"], "2001:db8::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert sub["gateway_ip"] == "2001:db8::1"
    port = api.port(net["id"])
    mac = port["mac_address"]
    import netaddr

    expected = str(netaddr.EUI(mac).ipv6(netaddr.IPNetwork("2001:db8::/64").network))
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": expected}]
    # A SLAAC subnet added later gives existing ports an address too.
    sub2 = api.subnet(net["id"], "2001:db8:1::/64", ipv6_address_mode="slaac")
    got = api.ok("GET", f"/v2.0/ports/{port['id']}")["port"]
    assert {f["subnet_id"] for f in got["fixed_ips"]} == {sub["id"], sub2["id"]}


@pytest.mark.parametrize(
    "attrs,status",
    [
        ({"cidr": "10.0.0.0/33"}, 400),
        ({"cidr": "banana"}, 400),
        ({"cidr": "10.0.0.5/24"}, 400),  # host bits set
        ({"cidr": "10.0.0.0/24", "ip_version": 6}, 400),
        ({"cidr": "10.0.0.0/24", "ip_version": 5}, 400),
        ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.1.1", "end": "10.0.1.5"}]}, 400),
        ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.9", "end": "10.0.0.5"}]}, 400),
        (
            {
                "cidr": "10.0.0.0/24",
                "allocation_pools": [
                    {"start": "10.0.0.2", "end": "10.0.0.50"},
                    {"start": "10.0.0.40", "end": "10.0.0.60"},
                ],
            },
            400,
        ),
        ({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.50"}]}, 409),
        ({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.0"}, 400),
        ({"cidr": "10.0.0.0/24", "gateway_ip": "not-an-ip"}, 400),
        ({"cidr": "10.0.0.0/24", "dns_nameservers": ["1.1.1.1", "1.1.1.1"]}, 400),
        ({"cidr": "10.0.0.0/24", "host_routes": [{"destination": "x", "nexthop": "10.0.0.1"}]}, 400),
        ({"cidr": "10.0.0.0/24", "ipv6_ra_mode": "slaac"}, 400),
        ({"cidr": "10.0.0.0/24", "network_id": "not-a-uuid"}, 400),
        ({"cidr": "10.0.0.0/24", "network_id": "00000000-0000-0000-0000-000000000000"}, 404),
    ],
)
def test_bad_subnets_rejected_and_nothing_written(api: Api, attrs: dict, status: int) -> None:
    net = api.net()
    body = {"network_id": net["id"], "ip_version": 4, **attrs}
    api.err("POST", "/v2.0/subnets", {"subnet": body}, status=status)
    assert api.ok("GET", "/v2.0/subnets")["subnets"] == []


def test_overlap_and_gateway_outside_cidr_like_neutron(api: Api) -> None:
    net = api.net()
    api.subnet(net["id"], "10.0.0.0/24")
    api.err(
        "POST",
        "/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.128/25"}},
        status=400,
    )
    # Neutron accepts a gateway outside the subnet's CIDR; so do we.
    other = api.net()
    sub = api.subnet(other["id"], "10.5.0.0/24", gateway_ip="10.6.0.1")
    assert sub["gateway_ip"] == "10.6.0.1"
    # Overlap across different networks is fine (overlapping IPs are always on).
    api.subnet(other["id"], "10.0.0.0/24")


def test_update_and_subnet_in_use(api: Api) -> None:
    net = api.net()
    sub = api.subnet(net["id"], "10.0.0.0/24")
    upd = api.ok("PUT", f"/v2.0/subnets/{sub['id']}", {"subnet": {"name": "x", "dns_nameservers": ["8.8.8.8"]}})[
        "subnet"
    ]
    assert upd["dns_nameservers"] == ["8.8.8.8"] and upd["revision_number"] == 1
    api.err("PUT", f"/v2.0/subnets/{sub['id']}", {"subnet": {"cidr": "10.9.0.0/24"}}, status=400)
    port = api.port(net["id"])
    api.err("DELETE", f"/v2.0/subnets/{sub['id']}", status=409, type="SubnetInUse")
    api.ok("DELETE", f"/v2.0/ports/{port['id']}")
    api.ok("DELETE", f"/v2.0/subnets/{sub['id']}")

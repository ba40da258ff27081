from __future__ import annotations

from tests.unit.api.conftest import Api


def test_port_defaults(api: Api) -> None:
    net = api.net()
    sub = api.subnet(net["id"], "10.0.0.0/24")
    port = api.port(net["id"], name="p")
    assert port["status"] == "DOWN"
    assert port["mac_address"].startswith("fa:16:3e:")
    assert len(port["fixed_ips"]) == 1 and port["fixed_ips"][0]["subnet_id"] == sub["id"]
    assert port["binding:vif_type"] == "unbound" and port["binding:host_id"] == ""
    for key in ("device_id", "device_owner", "allowed_address_pairs", "admin_state_up", "revision_number"):
        assert key in port


def test_explicit_ip_and_mac_conflicts(api: Api) -> None:
    net = api.net()
    sub = api.subnet(net["id"], "10.0.0.0/24")
    p = api.port(
        net["id"], mac_address="FA:16:3E:00:00:01", fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.0.0.50"}]
    )
    assert p["mac_address"] == "fa:16:3e:00:00:01"
    api.err(
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": net["id"], "mac_address": "fa:16:3e:00:00:01"}},
        status=409,
        type="MacAddressInUse",
    )
    api.err(
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}},
        status=409,
        type="IpAddressAlreadyAllocated",
    )
    api.err(
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": net["id"], "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.1.0.5"}]}},
        status=400,
        type="InvalidIpForSubnet",
    )
    api.err("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "mac_address": "01:00:5e:00:00:01"}}, status=400)
    api.err("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "mac_address": "zz"}}, status=400)
    api.err(
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": net["id"], "fixed_ips": [{"subnet_id": "00000000-0000-0000-0000-000000000000"}]}},
        status=400,
    )
    # Nothing half-written: still exactly one port and one allocation.
    assert len(api.ok("GET", "/v2.0/ports")["ports"]) == 1


def test_update_fixed_ips_and_filters(api: Api) -> None:
    net = api.net()
    sub = api.subnet(net["id"], "10.0.0.0/24")
    p = api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.5"}])
    p2 = api.ok(
        "PUT", f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": [{"subnet_id": sub["id"]}, {"ip_address": "10.0.0.6"}]}}
    )["port"]
    assert sorted(f["ip_address"] for f in p2["fixed_ips"]) == ["10.0.0.5", "10.0.0.6"]
    api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.7"}])
    got = api.ok("GET", "/v2.0/ports?fixed_ips=ip_address%3D10.0.0.6")["ports"]
    assert [x["id"] for x in got] == [p["id"]]
    got = api.ok("GET", f"/v2.0/ports?fixed_ips=subnet_id%3D{sub['id']}")["ports"]
    assert len(got) == 2
    p3 = api.ok("PUT", f"/v2.0/ports/{p['id']}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.6"}]}})["port"]
    assert [f["ip_address"] for f in p3["fixed_ips"]] == ["10.0.0.6"]
    # 10.0.0.5 is free again.
    api.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.5"}])


def test_exhaustion_is_clean_409(api: Api) -> None:
    net = api.net()
    api.subnet(net["id"], "10.0.0.0/29")  # .2 - .6 usable (gateway .1)
    ips = {api.port(net["id"])["fixed_ips"][0]["ip_address"] for _ in range(5)}
    assert ips == {f"10.0.0.{i}" for i in range(2, 7)}
    api.err("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}, status=409, type="IpAddressGenerationFailure")
    assert len(api.ok("GET", "/v2.0/ports")["ports"]) == 5


def test_a_full_ipv6_subnet_does_not_block_the_networks_ipv4_subnet(api: Api) -> None:
    net = api.net()
    v4 = api.subnet(net["id"], "10.0.0.0/24")
    v6 = api.subnet(net["id"], "2001:db8::1/128")
    first = api.port(net["id"])
    assert {f["subnet_id"] for f in first["fixed_ips"]} == {v4["id"], v6["id"]}  # the /128's one address
    second = api.port(net["id"])  # the /128 is full: the port still gets its IPv4 address
    assert [f["subnet_id"] for f in second["fixed_ips"]] == [v4["id"]]
    # Asking for the full subnet by id is still a clean 409.
    api.err("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "fixed_ips": [{"subnet_id": v6["id"]}]}},
            status=409, type="IpAddressGenerationFailure")


def test_allowed_address_pairs(api: Api) -> None:
    net = api.net()
    api.subnet(net["id"])
    p = api.port(
        net["id"],
        allowed_address_pairs=[
            {"ip_address": "10.0.0.0/24"},
            {"ip_address": "10.0.0.99", "mac_address": "fa:16:3e:11:22:33"},
        ],
    )
    assert p["allowed_address_pairs"][0] == {"ip_address": "10.0.0.0/24", "mac_address": p["mac_address"]}
    api.err(
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": net["id"], "allowed_address_pairs": [{"mac_address": "fa:16:3e:11:22:33"}]}},
        status=400,
    )

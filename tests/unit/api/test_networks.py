from __future__ import annotations

from tests.unit.api.conftest import Api


def test_network_crud_shape(api: Api) -> None:
    net = api.net(name="blue", description="d")
    for key in (
        "id",
        "name",
        "description",
        "project_id",
        "tenant_id",
        "admin_state_up",
        "status",
        "shared",
        "router:external",
        "mtu",
        "subnets",
        "revision_number",
        "created_at",
        "updated_at",
        "tags",
        "availability_zone_hints",
    ):
        assert key in net, key
    assert net["status"] == "ACTIVE" and net["subnets"] == [] and net["revision_number"] == 0
    assert net["created_at"].endswith("Z")
    got = api.ok("GET", f"/v2.0/networks/{net['id']}")["network"]
    assert got["name"] == "blue"
    upd = api.ok("PUT", f"/v2.0/networks/{net['id']}", {"network": {"name": "red"}})["network"]
    assert upd["name"] == "red" and upd["revision_number"] == 1
    api.ok("DELETE", f"/v2.0/networks/{net['id']}")
    api.err("GET", f"/v2.0/networks/{net['id']}", status=404, type="NetworkNotFound")


def test_subnets_listed_on_network_and_delete_cascades(api: Api) -> None:
    net = api.net()
    sub = api.subnet(net["id"])
    dhcp = api.port(net["id"], device_owner="network:dhcp")
    assert api.ok("GET", f"/v2.0/networks/{net['id']}")["network"]["subnets"] == [sub["id"]]
    api.ok("DELETE", f"/v2.0/networks/{net['id']}")
    api.err("GET", f"/v2.0/subnets/{sub['id']}", status=404, type="SubnetNotFound")
    api.err("GET", f"/v2.0/ports/{dhcp['id']}", status=404, type="PortNotFound")


def test_network_in_use(api: Api) -> None:
    net = api.net()
    api.subnet(net["id"])
    port = api.port(net["id"], device_owner="compute:nova")
    api.err("DELETE", f"/v2.0/networks/{net['id']}", status=409, type="NetworkInUse")
    api.ok("DELETE", f"/v2.0/ports/{port['id']}")
    api.ok("DELETE", f"/v2.0/networks/{net['id']}")


def test_tags_subresource_and_filters(api: Api) -> None:
    a, b = api.net(name="a"), api.net(name="b")
    api.ok("PUT", f"/v2.0/networks/{a['id']}/tags", {"tags": ["red", "blue"]})
    api.ok("PUT", f"/v2.0/networks/{b['id']}/tags/red", status=201)
    assert api.ok("GET", f"/v2.0/networks/{a['id']}/tags")["tags"] == ["blue", "red"]
    api.ok("GET", f"/v2.0/networks/{a['id']}/tags/blue", status=204)
    api.err("GET", f"/v2.0/networks/{b['id']}/tags/blue", status=404, type="TagNotFound")
    names = lambda q: sorted(n["name"] for n in api.ok("GET", f"/v2.0/networks?{q}")["networks"])  # noqa: E731
    assert names("tags=red") == ["a", "b"]
    assert names("tags=red,blue") == ["a"]
    assert names("not-tags=blue") == ["b"]
    assert names("tags-any=blue,green") == ["a"]
    net = api.ok("GET", f"/v2.0/networks/{a['id']}")["network"]
    assert net["tags"] == ["blue", "red"] and net["revision_number"] == 1
    api.ok("DELETE", f"/v2.0/networks/{a['id']}/tags/blue")
    api.ok("DELETE", f"/v2.0/networks/{a['id']}/tags")
    assert api.ok("GET", f"/v2.0/networks/{a['id']}/tags")["tags"] == []


def test_if_match_revision(api: Api) -> None:
    net = api.net()
    path = f"/v2.0/networks/{net['id']}"
    api.ok("PUT", path, {"network": {"name": "x"}}, headers={"If-Match": "revision_number=0"})
    api.err(
        "PUT",
        path,
        {"network": {"name": "y"}},
        status=412,
        type="RevisionNumberConstraintFailed",
        headers={"If-Match": "revision_number=0"},
    )
    api.err("DELETE", path, status=412, headers={"If-Match": "revision_number=0"})
    api.ok("DELETE", path, headers={"If-Match": "revision_number=1"})


def test_bulk_create_is_all_or_nothing(api: Api) -> None:
    body = {"networks": [{"name": "ok1"}, {"name": "ok2"}]}
    created = api.ok("POST", "/v2.0/networks", body)["networks"]
    assert [n["name"] for n in created] == ["ok1", "ok2"]
    bad = {"networks": [{"name": "x"}, {"name": "y", "admin_state_up": "maybe"}]}
    api.err("POST", "/v2.0/networks", bad, status=400)
    net = created[0]
    api.subnet(net["id"])
    ports = {"ports": [{"network_id": net["id"]}, {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.9.9.9"}]}]}
    api.err("POST", "/v2.0/ports", ports, status=400, type="InvalidIpForNetwork")
    assert api.ok("GET", "/v2.0/ports")["ports"] == []


def test_mtu_writable_within_limit(api: Api) -> None:
    net = api.net()
    assert net["mtu"] == 1450  # VXLAN over IPv4 on a 1500 physical network
    api.ok("PUT", f"/v2.0/networks/{net['id']}", {"network": {"mtu": 1400}})
    api.err("PUT", f"/v2.0/networks/{net['id']}", {"network": {"mtu": 9000}}, status=400)

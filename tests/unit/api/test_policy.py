"""noauth policy: projects see their own resources plus shared networks."""

from __future__ import annotations

from tests.unit.api.conftest import Api


def test_project_isolation_and_shared(api: Api) -> None:
    mine = api.net(name="mine", project="p1")
    assert mine["project_id"] == "p1"
    assert "provider:network_type" not in mine  # admin-only attribute hidden
    theirs = api.net(name="theirs", project="p2")
    shared = api.net(name="shared", shared=True)
    names = sorted(n["name"] for n in api.ok("GET", "/v2.0/networks", project="p1")["networks"])
    assert names == ["mine", "shared"]
    api.err("GET", f"/v2.0/networks/{theirs['id']}", status=404, project="p1")
    api.err("PUT", f"/v2.0/networks/{shared['id']}", {"network": {"name": "x"}}, status=403, project="p1")
    api.err("POST", "/v2.0/networks", {"network": {"shared": True}}, status=403, project="p1")
    api.err("POST", "/v2.0/networks", {"network": {"provider:network_type": "vxlan"}}, status=403, project="p1")
    api.err("POST", "/v2.0/networks", {"network": {"project_id": "p2"}}, status=400, project="p1")
    # Admin sees everything including provider attributes.
    admin_view = api.ok("GET", f"/v2.0/networks/{mine['id']}")["network"]
    assert admin_view["provider:network_type"] == "vxlan"


def test_ports_on_shared_network(api: Api) -> None:
    shared = api.net(name="shared", shared=True)
    api.subnet(shared["id"])
    p = api.port(shared["id"], project="p1")
    assert "binding:vif_type" not in p
    api.err(
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": shared["id"], "fixed_ips": [{"ip_address": "10.0.0.9"}]}},
        status=403,
        project="p1",
    )
    api.err(
        "POST", "/v2.0/ports", {"port": {"network_id": shared["id"], "binding:host_id": "h"}}, status=403, project="p1"
    )
    assert [x["id"] for x in api.ok("GET", "/v2.0/ports", project="p2")["ports"]] == []
    assert [x["id"] for x in api.ok("GET", "/v2.0/ports", project="p1")["ports"]] == [p["id"]]
    admin_port = api.ok("GET", f"/v2.0/ports/{p['id']}")["port"]
    assert admin_port["binding:vif_type"] == "unbound"

"""Neutron API conventions: envelopes, fields, filters, sorting, pagination, versions."""

from __future__ import annotations

from tests.unit.api.conftest import Api


def test_versions_and_extensions(api: Api) -> None:
    v = api.ok("GET", "/")["versions"][0]
    assert v["id"] == "v2.0" and v["status"] == "CURRENT"
    res = {r["collection"] for r in api.ok("GET", "/v2.0")["resources"]}
    assert {"networks", "subnets", "ports"} <= res
    aliases = {e["alias"] for e in api.ok("GET", "/v2.0/extensions")["extensions"]}
    assert {"pagination", "sorting", "standard-attr-tag", "revision-if-match"} <= aliases
    assert "router" not in aliases and "dhcp_agent_scheduler" not in aliases  # not built: not claimed
    assert {"security-group", "port-security"} <= aliases  # the security_group plugin, on by default
    assert "security_groups" in res
    api.ok("GET", "/v2.0/extensions/pagination")
    api.err("GET", "/v2.0/extensions/nope", status=404)


def test_fields_filters_or_and_unknown_filter(api: Api) -> None:
    for name in ("a", "b", "c"):
        api.net(name=name, admin_state_up=name != "c")
    got = api.ok("GET", "/v2.0/networks?name=a&name=c&fields=name&fields=id")["networks"]
    assert sorted(n["name"] for n in got) == ["a", "c"]
    assert all(set(n) == {"name", "id"} for n in got)
    got = api.ok("GET", "/v2.0/networks?admin_state_up=False")["networks"]
    assert [n["name"] for n in got] == ["c"]
    api.err("GET", "/v2.0/networks?bogus=1", status=400)


def test_sorting_and_pagination_links(api: Api) -> None:
    for name in "edcba":
        api.net(name=name)
    page = api.ok("GET", "/v2.0/networks?sort_key=name&sort_dir=asc&limit=2")
    assert [n["name"] for n in page["networks"]] == ["a", "b"]
    nxt = [link for link in page["networks_links"] if link["rel"] == "next"][0]["href"]
    page2 = api.ok("GET", nxt.split("testserver", 1)[1])
    assert [n["name"] for n in page2["networks"]] == ["c", "d"]
    prev = [link for link in page2["networks_links"] if link["rel"] == "previous"][0]["href"]
    back = api.ok("GET", prev.split("testserver", 1)[1])
    assert [n["name"] for n in back["networks"]] == ["a", "b"]
    desc = api.ok("GET", "/v2.0/networks?sort_key=name&sort_dir=desc")["networks"]
    assert [n["name"] for n in desc] == list("edcba")
    api.err("GET", "/v2.0/networks?sort_key=bogus", status=400)
    api.err("GET", "/v2.0/networks?limit=x", status=400)
    api.err("GET", "/v2.0/networks?marker=00000000-0000-0000-0000-000000000000&limit=1", status=404)


def test_errors_are_neutron_shaped(api: Api) -> None:
    r = api.client.post("/v2.0/networks", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["NeutronError"]["type"] == "HTTPBadRequest"
    api.err("POST", "/v2.0/networks", {"network": {"name": "x", "bogus": 1}}, status=400)
    api.err("POST", "/v2.0/networks", {"netwrk": {}}, status=400)
    api.err("POST", "/v2.0/networks", {"network": {"status": "DOWN"}}, status=400)
    api.err("POST", "/v2.0/networks", {"network": {"name": 5}}, status=400)
    api.err("PUT", "/v2.0/networks/nope", {"network": {"name": "x"}}, status=404, type="NetworkNotFound")
    api.err("GET", "/v2.0/nothing", status=404)
    api.err("DELETE", "/v2.0/ports/nope", status=404, type="PortNotFound")
    net = api.net()
    api.err("PUT", f"/v2.0/networks/{net['id']}", {"network": {"id": "x"}}, status=400)

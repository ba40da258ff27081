"""Security groups and port security over HTTP: the security_group service plugin, wired in."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netplex.config import ConfigError
from tests.unit.api.conftest import BASE_CONF, Api


def _sg(api: Api, name: str = "web", **kw: object) -> dict:
    return api.ok("POST", "/v2.0/security-groups", {"security_group": {"name": name}}, **kw)["security_group"]


def _rule(api: Api, sg: str, status: int = 201, **attrs: object) -> dict:
    project = attrs.pop("project", None)
    body = {"security_group_rule": {"security_group_id": sg, "direction": "ingress", **attrs}}
    kw = {"project": project} if project else {}
    return api.ok("POST", "/v2.0/security-group-rules", body, status=status, **kw)["security_group_rule"]


def test_ports_get_the_default_group_and_show_it(api: Api) -> None:
    net = api.net(project="alice")
    api.subnet(net["id"], project="alice")
    port = api.port(net["id"], project="alice")
    groups = api.ok("GET", "/v2.0/security-groups", project="alice")["security_groups"]
    (default,) = [g for g in groups if g["name"] == "default"]
    assert port["security_groups"] == [default["id"]] and port["port_security_enabled"] is True
    shown = api.ok("GET", f"/v2.0/ports/{port['id']}", project="alice")["port"]
    assert shown["security_groups"] == [default["id"]]
    listed = api.ok("GET", "/v2.0/ports", params={"network_id": net["id"]})["ports"]
    assert listed[0]["security_groups"] == [default["id"]]
    dhcp = api.port(net["id"], device_owner="network:dhcp")
    assert dhcp["security_groups"] == []  # the network's own ports get none
    api.err("DELETE", f"/v2.0/security-groups/{default['id']}", status=409, type="SecurityGroupInUse")
    api.err("DELETE", f"/v2.0/security-groups/{default['id']}", project="alice", status=409,
            type="SecurityGroupCannotRemoveDefault")


def test_rules_are_checked_as_neutron_does(api: Api) -> None:
    sg = _sg(api, project="alice")
    assert {(r["direction"], r["ethertype"]) for r in sg["security_group_rules"]} == {
        ("egress", "IPv4"), ("egress", "IPv6")}
    r = _rule(api, sg["id"], project="alice", protocol="tcp", port_range_min=22, port_range_max=22)
    assert r["protocol"] == "tcp" and r["ethertype"] == "IPv4"
    body = {"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress", "protocol": "6",
                                    "port_range_min": 22, "port_range_max": 22}}
    api.err("POST", "/v2.0/security-group-rules", body, project="alice", status=409, type="SecurityGroupRuleExists")
    for bad, kind in (({"protocol": "nope"}, "SecurityGroupRuleInvalidProtocol"),
                      ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}, "SecurityGroupRuleParameterConflict"),
                      ({"protocol": "udp", "port_range_min": 9, "port_range_max": 1}, "SecurityGroupInvalidPortRange"),
                      ({"direction": "up"}, "SecurityGroupRuleInvalidDirection")):
        rule = {"security_group_id": sg["id"], "direction": "ingress", **bad}
        api.err("POST", "/v2.0/security-group-rules", {"security_group_rule": rule}, project="alice",
                status=400, type=kind)
    bob = _sg(api, "b", project="bob")
    rule = {"security_group_id": sg["id"], "direction": "ingress", "remote_group_id": bob["id"]}
    api.err("POST", "/v2.0/security-group-rules", {"security_group_rule": rule}, project="alice",
            status=404, type="SecurityGroupNotFound")
    api.err("GET", f"/v2.0/security-groups/{sg['id']}", project="bob", status=404, type="SecurityGroupNotFound")
    tcp = api.ok("GET", "/v2.0/security-group-rules", params={"protocol": "tcp"}, project="alice")
    assert [x["id"] for x in tcp["security_group_rules"]] == [r["id"]]
    api.ok("DELETE", f"/v2.0/security-group-rules/{r['id']}", project="alice")


def test_port_security_rules(api: Api) -> None:
    net = api.net(project="alice")
    api.subnet(net["id"], project="alice")
    sg = _sg(api, project="alice")
    p = api.port(net["id"], project="alice", security_groups=[sg["id"]])
    assert p["security_groups"] == [sg["id"]]
    api.err("PUT", f"/v2.0/ports/{p['id']}", {"port": {"port_security_enabled": False}}, project="alice",
            status=409, type="PortSecurityPortHasSecurityGroup")
    off = api.ok("PUT", f"/v2.0/ports/{p['id']}", {"port": {"port_security_enabled": False, "security_groups": []}},
                 project="alice")["port"]
    assert off["port_security_enabled"] is False and off["security_groups"] == []
    assert off["revision_number"] > p["revision_number"]
    api.err("PUT", f"/v2.0/ports/{p['id']}", {"port": {"security_groups": [sg["id"]]}}, project="alice",
            status=400, type="PortSecurityAndIPRequiredForSecurityGroups")
    api.err("PUT", f"/v2.0/ports/{p['id']}", {"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.99"}]}},
            project="alice", status=409, type="AddressPairAndPortSecurityRequired")
    api.err("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "port_security_enabled": False,
                                             "security_groups": [sg["id"]]}},
            project="alice", status=400, type="PortSecurityAndIPRequiredForSecurityGroups")
    bob_sg = _sg(api, "b", project="bob")
    api.err("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "security_groups": [bob_sg["id"]]}},
            project="alice", status=404, type="SecurityGroupNotFound")
    # Nothing half-written: the refused create left no port behind.
    assert len(api.ok("GET", "/v2.0/ports", params={"network_id": net["id"]})["ports"]) == 1
    open_net = api.net(project="alice", port_security_enabled=False)
    assert open_net["port_security_enabled"] is False
    q = api.port(open_net["id"], project="alice")
    assert q["port_security_enabled"] is False and q["security_groups"] == []
    api.ok("DELETE", f"/v2.0/ports/{p['id']}", project="alice")
    api.ok("DELETE", f"/v2.0/security-groups/{sg['id']}", project="alice")


def test_the_feed_carries_groups_and_port_membership(api: Api) -> None:
    net = api.net()
    sg = _sg(api)
    p = api.port(net["id"], security_groups=[sg["id"]])
    changes = api.ok("GET", "/v2.0/changes", params={"after": 0})["changes"]
    kinds = {(c["resource"], c["action"]) for c in changes}
    assert ("security_group", "create") in kinds
    port_changes = [c for c in changes if c["resource"] == "port" and c["id"] == p["id"]]
    assert port_changes[-1]["body"]["security_groups"] == [sg["id"]]


def test_service_plugins_option(db_url: str, make_api: Callable[..., Api]) -> None:
    api = make_api(db_url, BASE_CONF + "\n[DEFAULT]\nservice_plugins = router,tag\n")
    api.ok("GET", "/v2.0/security-groups")
    with pytest.raises(ConfigError, match="no service plugin named 'bogus'"):
        make_api(db_url, BASE_CONF + "\n[DEFAULT]\nservice_plugins = bogus\n")
    off = make_api(db_url, BASE_CONF + "\n[securitygroup]\nenable_security_group = false\n")
    off.err("GET", "/v2.0/security-groups", status=404)
    net = off.net()
    port = off.port(net["id"])
    assert "security_groups" not in port and "port_security_enabled" not in net


def test_host_state_carries_the_groups_a_host_enforces(api: Api) -> None:
    net = api.net()
    api.subnet(net["id"])
    web, db_sg = _sg(api, "web"), _sg(api, "db")
    _rule(api, db_sg["id"], protocol="tcp", port_range_min=5432, port_range_max=5432, remote_group_id=web["id"])
    member = api.port(net["id"], security_groups=[web["id"]], **{"binding:host_id": "h2"})
    local = api.port(net["id"], security_groups=[db_sg["id"]], **{"binding:host_id": "h1"})
    state = api.ok("GET", "/v2.0/netplex/host-state", params={"host": "h1"})
    assert {g["id"] for g in state["security_groups"]} == {db_sg["id"], web["id"]}  # used + remote
    (m,) = state["remote_group_ports"]
    assert m["id"] == member["id"] and m["security_groups"] == [web["id"]]
    assert m["fixed_ips"] == member["fixed_ips"]
    assert local["id"] not in {p["id"] for p in state["remote_group_ports"]}
    empty = api.ok("GET", "/v2.0/netplex/host-state", params={"host": "h9"})
    assert empty["security_groups"] == [] and empty["remote_group_ports"] == []

"""The seed's heterogeneous case over the API, agents, bindings, device status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.api.conftest import BASE_CONF, Api

CONF = BASE_CONF.replace("mechanism_drivers =", "mechanism_drivers = openvswitch,linuxbridge")

LB = {"agent_type": "Linux bridge agent", "binary": "netplex-linuxbridge-agent", "topic": "N/A",
      "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": "192.0.2.1", "interface_mappings": {}}}
OVS = {"agent_type": "Open vSwitch agent", "binary": "netplex-openvswitch-agent", "topic": "N/A",
       "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": "192.0.2.2", "bridge_mappings": {},
                          "integration_bridge": "br-int", "datapath_type": "netdev"}}


@pytest.fixture
def bapi(db_url: str, make_api: Callable[..., Api]) -> Api:
    return make_api(db_url, CONF)


def report(api: Api, host: str, template: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"agent": {**template, "host": host, "start_flag": True, **extra}}
    return api.ok("POST", "/v2.0/netplex/agent-report", body, status=200)["agent"]


def test_heterogeneous_hosts_and_retry_on_new_agent(bapi: Api) -> None:
    report(bapi, "host-a", LB)
    report(bapi, "host-b", OVS)
    net = bapi.net(name="hetero")
    bapi.subnet(net["id"])
    pa = bapi.port(net["id"], **{"binding:host_id": "host-a"})
    pb = bapi.port(net["id"], **{"binding:host_id": "host-b"})
    pc = bapi.port(net["id"], **{"binding:host_id": "host-c"})
    assert pa["binding:vif_type"] == "bridge"
    assert pa["binding:vif_details"]["bridge_name"] == "brq" + net["id"][:11]
    assert pb["binding:vif_type"] == "ovs" and pb["binding:vif_details"]["bridge_name"] == "br-int"
    assert pc["binding:vif_type"] == "binding_failed"
    reasons = " | ".join(pc["binding:diagnostics"])
    assert "openvswitch:" in reasons and "linuxbridge:" in reasons and "host-c" in reasons
    # Non-admins never see why (nor any binding:* attribute).
    own = bapi.net(project="p1")
    mine = bapi.port(own["id"], project="p1")
    bapi.ok("PUT", f"/v2.0/ports/{mine['id']}", {"port": {"binding:host_id": "host-c"}})
    seen = bapi.ok("GET", f"/v2.0/ports/{mine['id']}", project="p1")["port"]
    # Like Neutron, only binding:vnic_type is the owner's to see and set.
    assert [k for k in seen if k.startswith("binding:")] == ["binding:vnic_type"]
    explained = bapi.ok("GET", f"/v2.0/netplex/ports/{pc['id']}/explain-binding")["explanation"]
    assert explained
    # An agent appears on host-c: the failed port binds with no client action.
    report(bapi, "host-c", OVS)
    assert bapi.ok("GET", f"/v2.0/ports/{pc['id']}")["port"]["binding:vif_type"] == "ovs"
    # Clearing the host unbinds.
    got = bapi.ok("PUT", f"/v2.0/ports/{pa['id']}", {"port": {"binding:host_id": ""}})["port"]
    assert got["binding:vif_type"] == "unbound"


def test_agents_api_and_admin_state(bapi: Api) -> None:
    a = report(bapi, "host-a", LB)
    agents = bapi.ok("GET", "/v2.0/agents")["agents"]
    assert [x["host"] for x in agents] == ["host-a"] and agents[0]["alive"] is True
    assert bapi.ok("GET", "/v2.0/agents?host=host-a&agent_type=Linux%20bridge%20agent")["agents"]
    bapi.ok("PUT", f"/v2.0/agents/{a['id']}", {"agent": {"admin_state_up": False, "description": "maint"}})
    net = bapi.net()
    p = bapi.port(net["id"], **{"binding:host_id": "host-a"})
    assert p["binding:vif_type"] == "binding_failed"
    bapi.ok("PUT", f"/v2.0/agents/{a['id']}", {"agent": {"admin_state_up": True}})
    assert bapi.ok("GET", f"/v2.0/ports/{p['id']}")["port"]["binding:vif_type"] == "bridge"
    bapi.err("POST", "/v2.0/agents", {"agent": {"host": "x"}}, status=400)
    bapi.err("GET", "/v2.0/agents", status=403, project="p1")
    bapi.ok("DELETE", f"/v2.0/agents/{a['id']}")
    bapi.err("GET", f"/v2.0/agents/{a['id']}", status=404, type="AgentNotFound")


def test_device_status_and_host_state(bapi: Api) -> None:
    report(bapi, "host-a", LB)
    report(bapi, "host-b", OVS)
    net = bapi.net()
    bapi.subnet(net["id"])
    pa = bapi.port(net["id"], **{"binding:host_id": "host-a"})
    pb = bapi.port(net["id"], **{"binding:host_id": "host-b"})
    bapi.port(net["id"])  # unbound: not in anyone's state
    state = bapi.ok("GET", "/v2.0/netplex/host-state?host=host-a")
    assert {p["id"] for p in state["ports"]} == {pa["id"], pb["id"]}
    assert [n["id"] for n in state["networks"]] == [net["id"]]
    assert state["networks"][0]["provider:network_type"] == "vxlan"
    assert {a["host"] for a in state["agents"]} == {"host-a", "host-b"}
    # Only the port bound to the reporting host changes.
    got = bapi.ok("POST", "/v2.0/netplex/device-status", {"host": "host-a", "up": [pa["id"], pb["id"]]}, status=200)
    assert got["updated"] == [pa["id"]]
    assert bapi.ok("GET", f"/v2.0/ports/{pa['id']}")["port"]["status"] == "ACTIVE"
    assert bapi.ok("GET", f"/v2.0/ports/{pb['id']}")["port"]["status"] == "DOWN"


def test_multiple_bindings_for_live_migration(bapi: Api) -> None:
    report(bapi, "host-a", LB)
    report(bapi, "host-b", OVS)
    net = bapi.net()
    p = bapi.port(net["id"], **{"binding:host_id": "host-a"})
    b = bapi.ok("POST", f"/v2.0/ports/{p['id']}/bindings", {"binding": {"host": "host-b"}})["binding"]
    assert b["status"] == "INACTIVE" and b["vif_type"] == "ovs"
    assert len(bapi.ok("GET", f"/v2.0/ports/{p['id']}/bindings")["bindings"]) == 2
    bapi.ok("PUT", f"/v2.0/ports/{p['id']}/bindings/host-b/activate", status=200)
    port = bapi.ok("GET", f"/v2.0/ports/{p['id']}")["port"]
    assert port["binding:host_id"] == "host-b" and port["binding:vif_type"] == "ovs"
    bapi.ok("DELETE", f"/v2.0/ports/{p['id']}/bindings/host-a")
    assert [x["host"] for x in bapi.ok("GET", f"/v2.0/ports/{p['id']}/bindings")["bindings"]] == ["host-b"]


def test_change_feed_over_http(bapi: Api) -> None:
    first = bapi.ok("GET", "/v2.0/changes?after=0&timeout=0")
    start = first["revision"]
    net = bapi.net(name="fed")
    page = bapi.ok("GET", f"/v2.0/changes?after={start}&timeout=5")
    assert [(c["resource"], c["action"], c["id"]) for c in page["changes"]][:1] == [("network", "create", net["id"])]
    revs = [c["revision"] for c in page["changes"]]
    assert revs == sorted(revs) and revs[0] == start + 1
    again = bapi.ok("GET", f"/v2.0/changes?after={page['revision']}&timeout=0")
    assert again["changes"] == []
    bapi.ok("PUT", f"/v2.0/networks/{net['id']}", {"network": {"name": "x"}})
    only_ports = bapi.ok("GET", f"/v2.0/changes?after={page['revision']}&timeout=0&resource=port")
    assert only_ports["changes"] == [] and only_ports["revision"] > page["revision"]
    from netplex.events.feed import Feed

    Feed(bapi.core.db).compact(retain=0)
    bapi.err("GET", f"/v2.0/changes?after={start}&timeout=0", status=410, type="FeedCompacted")
    bapi.err("GET", "/v2.0/changes", status=403, project="p1")

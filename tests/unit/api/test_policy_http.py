"""The policy applied over HTTP: 403s in Neutron's form before anything is written, hidden attributes.

Each denial below is checked with the service's write methods watched: the
API refuses before the core is asked, which is what lets the core drop its
own copies of these checks (see docs/policy.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netplex import config as config_mod
from netplex.api.policy import PolicyError, load_policy
from tests.unit.api.conftest import BASE_CONF, Api

WRITES = frozenset(
    {"create_bulk", "create_bulk_async", "update", "delete", "add", "replace", "remove", "remove_all"}
)
SERVICES = ("networks", "subnets", "ports", "segments_api", "agents_api", "tags")


class _Watched:
    """A service whose write methods record that they were called."""

    def __init__(self, inner: Any, calls: list[str], name: str) -> None:
        self._inner = inner
        self._calls = calls
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if attr not in WRITES or not callable(value):
            return value

        def spy(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(f"{self._name}.{attr}")
            return value(*args, **kwargs)

        return spy


class _WatchedCore:
    """The app's core as the routes see it, with its services watched."""

    def __init__(self, core: Any, calls: list[str]) -> None:
        self._core = core
        self._services = {name: _Watched(getattr(core, name), calls, name) for name in SERVICES}

    def __getattr__(self, attr: str) -> Any:
        return self._services.get(attr) or getattr(self._core, attr)


@pytest.fixture
def writes(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    state = api.client.app.state  # type: ignore[attr-defined]
    monkeypatch.setattr(state, "core", _WatchedCore(api.core, calls))
    yield calls


def denied(api: Api, writes: list[str], method: str, path: str, body: Any, rule: str, **kw: Any) -> None:
    before = list(writes)
    e = api.err(method, path, body, status=403, type="PolicyNotAuthorized", **kw)
    assert e == {"type": "PolicyNotAuthorized", "message": f"({rule}) is disallowed by policy", "detail": ""}
    assert writes == before, f"the service was called despite the 403: {writes[len(before):]}"


def count(api: Api, plural: str) -> int:
    return len(api.ok("GET", f"/v2.0/{plural}")[plural])


# -- request bodies --------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "rule"),
    [
        ({"provider:network_type": "vxlan"}, "create_network:provider:network_type"),
        ({"provider:physical_network": "physnet1"}, "create_network:provider:physical_network"),
        ({"provider:segmentation_id": 5}, "create_network:provider:segmentation_id"),
        ({"segments": [{"provider:network_type": "vxlan"}]}, "create_network:segments"),
        ({"shared": True}, "create_network:shared"),
        ({"router:external": True}, "create_network:router:external"),
    ],
)
def test_tenant_cannot_set_admin_network_attributes(
    api: Api, writes: list[str], attrs: dict[str, Any], rule: str
) -> None:
    denied(api, writes, "POST", "/v2.0/networks", {"network": {"name": "x", **attrs}}, rule, project="p1")
    assert count(api, "networks") == 0
    # Defaults are not "set": shared=false needs no admin (Neutron's rule).
    api.net(shared=False, project="p1")


def test_tenant_network_update_and_delete(api: Api, writes: list[str]) -> None:
    mine = api.net(project="p1")
    shared = api.net(shared=True)
    denied(api, writes, "PUT", f"/v2.0/networks/{mine['id']}", {"network": {"shared": True}},
           "update_network:shared", project="p1")
    denied(api, writes, "PUT", f"/v2.0/networks/{mine['id']}", {"network": {"router:external": False}},
           "update_network:router:external", project="p1")
    denied(api, writes, "PUT", f"/v2.0/networks/{shared['id']}", {"network": {"name": "y"}},
           "update_network", project="p1")
    denied(api, writes, "DELETE", f"/v2.0/networks/{shared['id']}", None, "delete_network", project="p1")
    # Not visible at all: 404 as before, not 403.
    api.err("PUT", f"/v2.0/networks/{mine['id']}", {"network": {"name": "z"}}, status=404, project="p2")
    api.ok("PUT", f"/v2.0/networks/{mine['id']}", {"network": {"name": "z"}}, project="p1")


def test_tenant_cannot_set_binding_attributes(api: Api, writes: list[str]) -> None:
    net = api.net(project="p1")
    api.subnet(net["id"], project="p1")
    for attr, value in (("binding:host_id", "h1"), ("binding:profile", {"a": 1})):
        denied(api, writes, "POST", "/v2.0/ports", {"port": {"network_id": net["id"], attr: value}},
               f"create_port:{attr}", project="p1")
    assert count(api, "ports") == 0
    port = api.port(net["id"], project="p1", **{"binding:vnic_type": "normal"})
    for attr, value in (("binding:host_id", "h1"), ("binding:profile", {})):
        denied(api, writes, "PUT", f"/v2.0/ports/{port['id']}", {"port": {attr: value}},
               f"update_port:{attr}", project="p1")
    # The owner may change the vnic type (Neutron: admin_or_owner).
    api.ok("PUT", f"/v2.0/ports/{port['id']}", {"port": {"binding:vnic_type": "direct"}}, project="p1")


def test_ports_on_someone_elses_shared_network(api: Api, writes: list[str]) -> None:
    net = api.net(shared=True, project_id="owner")
    sub = api.subnet(net["id"], project="owner")
    nid = net["id"]
    denied(api, writes, "POST", "/v2.0/ports", {"port": {"network_id": nid, "mac_address": "fa:16:3e:00:00:01"}},
           "create_port:mac_address", project="p1")
    denied(api, writes, "POST", "/v2.0/ports", {"port": {"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.9"}]}},
           "create_port:fixed_ips:ip_address", project="p1")
    denied(api, writes, "POST", "/v2.0/ports",
           {"port": {"network_id": nid, "device_owner": "network:dhcp"}}, "create_port:device_owner", project="p1")
    denied(api, writes, "POST", "/v2.0/ports", {"port": {"network_id": nid, "allowed_address_pairs": [
           {"ip_address": "10.0.0.50"}]}}, "create_port:allowed_address_pairs", project="p1")
    # A subnet of a shared network is fine (rule:shared), and the network owner may do all of it.
    mine = api.port(nid, project="p1", fixed_ips=[{"subnet_id": sub["id"]}])
    api.port(nid, project="owner", mac_address="fa:16:3e:00:00:02", fixed_ips=[{"ip_address": "10.0.0.9"}])
    denied(api, writes, "PUT", f"/v2.0/ports/{mine['id']}", {"port": {"fixed_ips": [{"ip_address": "10.0.0.10"}]}},
           "update_port:fixed_ips", project="p1")
    denied(api, writes, "PUT", f"/v2.0/ports/{mine['id']}", {"port": {"mac_address": "fa:16:3e:00:00:03"}},
           "update_port:mac_address", project="p1")
    # Someone else's port: the network owner may delete it (admin_owner_or_network_owner), others not.
    denied(api, writes, "PUT", f"/v2.0/ports/{mine['id']}", {"port": {"name": "x"}}, "update_port", project="owner")
    # delete_port's default equals what get_port lets one see: for others it is a 404, still before any write.
    theirs = api.port(nid, project_id="p2")
    before = list(writes)
    api.err("DELETE", f"/v2.0/ports/{theirs['id']}", status=404, type="PortNotFound", project="p3")
    assert writes == before
    api.ok("DELETE", f"/v2.0/ports/{mine['id']}", project="owner")


def test_subnets_need_the_network_owner(api: Api, writes: list[str]) -> None:
    shared = api.net(shared=True, project_id="owner")
    denied(api, writes, "POST", "/v2.0/subnets",
           {"subnet": {"network_id": shared["id"], "cidr": "10.1.0.0/24", "ip_version": 4}}, "create_subnet",
           project="p1")
    sub = api.subnet(shared["id"], project="owner")
    denied(api, writes, "PUT", f"/v2.0/subnets/{sub['id']}", {"subnet": {"name": "x"}}, "update_subnet",
           project="p1")
    denied(api, writes, "DELETE", f"/v2.0/subnets/{sub['id']}", None, "delete_subnet", project="p1")
    # An unknown network is still a 404 (the rule's lookup asks as the caller).
    api.err("POST", "/v2.0/subnets", {"subnet": {"network_id": "5" * 8 + "-5555-5555-5555-" + "5" * 12,
            "cidr": "10.2.0.0/24", "ip_version": 4}}, status=404, type="NetworkNotFound", project="p1")


def test_bulk_create_is_checked_whole_before_writing(api: Api, writes: list[str]) -> None:
    body = {"networks": [{"name": "a"}, {"name": "b", "shared": True}]}
    denied(api, writes, "POST", "/v2.0/networks", body, "create_network:shared", project="p1")
    assert count(api, "networks") == 0


def test_tags_need_the_owner(api: Api, writes: list[str]) -> None:
    shared = api.net(shared=True)
    nid = shared["id"]
    denied(api, writes, "PUT", f"/v2.0/networks/{nid}/tags", {"tags": ["a"]}, "update_networks_tags", project="p1")
    denied(api, writes, "PUT", f"/v2.0/networks/{nid}/tags/a", None, "create_networks_tags", project="p1")
    denied(api, writes, "DELETE", f"/v2.0/networks/{nid}/tags/a", None, "delete_networks_tags", project="p1")
    denied(api, writes, "DELETE", f"/v2.0/networks/{nid}/tags", None, "delete_networks_tags", project="p1")
    api.ok("PUT", f"/v2.0/networks/{nid}/tags/a", status=201)
    assert api.ok("GET", f"/v2.0/networks/{nid}/tags", project="p1") == {"tags": ["a"]}


def test_segments_and_agents_are_admin_only(api: Api, writes: list[str]) -> None:
    net = api.net()
    seg = api.ok("GET", "/v2.0/segments")["segments"][0]
    denied(api, writes, "GET", "/v2.0/segments", None, "get_segment", project="p1")
    denied(api, writes, "GET", f"/v2.0/segments/{seg['id']}", None, "get_segment", project="p1")
    denied(api, writes, "POST", "/v2.0/segments",
           {"segment": {"network_id": net["id"], "network_type": "vxlan"}}, "create_segment", project="p1")
    denied(api, writes, "PUT", f"/v2.0/segments/{seg['id']}", {"segment": {"name": "x"}}, "update_segment",
           project="p1")
    denied(api, writes, "DELETE", f"/v2.0/segments/{seg['id']}", None, "delete_segment", project="p1")
    denied(api, writes, "GET", "/v2.0/agents", None, "get_agent", project="p1")
    denied(api, writes, "PUT", "/v2.0/agents/x", {"agent": {"admin_state_up": False}}, "update_agent", project="p1")
    denied(api, writes, "DELETE", "/v2.0/agents/x", None, "delete_agent", project="p1")
    for method, path, rule in (
        ("POST", "/v2.0/netplex/agent-report", "report_agent_state"),
        ("GET", "/v2.0/netplex/host-state?host=h", "get_host_state"),
        ("POST", "/v2.0/netplex/device-status", "update_device_status"),
        ("GET", "/v2.0/ports/x/bindings", "get_port_binding"),
        ("POST", "/v2.0/ports/x/bindings", "create_port_binding"),
        ("DELETE", "/v2.0/ports/x/bindings/h", "delete_port_binding"),
        ("PUT", "/v2.0/ports/x/bindings/h/activate", "activate"),
        ("GET", "/v2.0/changes", "get_changes"),
    ):
        denied(api, writes, method, path, {}, rule, project="p1")


# -- responses ----------------------------------------------------------------------


def test_tenant_views_lack_admin_attributes(api: Api) -> None:
    net = api.net(project="p1")
    api.subnet(net["id"], project="p1")
    port = api.port(net["id"], project="p1")
    api.ok("PUT", f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "h1", "binding:profile": {"k": "v"}}})
    binding_keys = {"binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details",
                    "binding:diagnostics"}
    admin_view = api.ok("GET", f"/v2.0/ports/{port['id']}")["port"]
    assert binding_keys <= set(admin_view)
    shown = api.ok("GET", f"/v2.0/ports/{port['id']}", project="p1")["port"]
    listed = api.ok("GET", "/v2.0/ports", project="p1")["ports"][0]
    updated = api.ok("PUT", f"/v2.0/ports/{port['id']}", {"port": {"name": "n"}}, project="p1")["port"]
    for seen in (shown, listed, updated):
        assert not binding_keys & set(seen), seen
        assert seen["binding:vnic_type"] == "normal"
    # Asking for a hidden field gives nothing; filtering on it is refused.
    fields = api.ok("GET", f"/v2.0/ports/{port['id']}", project="p1", params={"fields": "binding:vif_details"})
    assert fields == {"port": {}}
    api.err("GET", "/v2.0/ports", status=400, project="p1", params={"binding:host_id": "h1"})
    assert len(api.ok("GET", "/v2.0/ports", params={"binding:host_id": "h1"})["ports"]) == 1
    tenant_net = api.ok("GET", f"/v2.0/networks/{net['id']}", project="p1")["network"]
    assert not {k for k in tenant_net if k.startswith("provider:")} | ({"segments"} & set(tenant_net))
    assert "provider:network_type" in api.ok("GET", f"/v2.0/networks/{net['id']}")["network"]
    assert "segment_id" not in api.ok("GET", "/v2.0/subnets", project="p1")["subnets"][0]


# -- an operator's policy file ------------------------------------------------------------


@pytest.fixture
def with_policy(db_url: str, make_api: Callable[..., Api], tmp_path: Path) -> Callable[[str], Api]:
    def make(yaml_text: str) -> Api:
        path = tmp_path / "policy.yaml"
        path.write_text(yaml_text)
        return make_api(db_url, BASE_CONF + f"\n[oslo_policy]\npolicy_file = {path}\n")

    return make


def test_operator_makes_create_network_admin_only(with_policy: Callable[[str], Api]) -> None:
    api = with_policy('"create_network": "rule:admin_only"\n')
    e = api.err("POST", "/v2.0/networks", {"network": {"name": "x"}}, status=403, project="p1")
    assert e["message"] == "(create_network) is disallowed by policy"
    assert count(api, "networks") == 0
    api.net()


def test_operator_shows_provider_attributes_and_hides_rows(with_policy: Callable[[str], Api]) -> None:
    api = with_policy(
        "get_network:provider:network_type: ''\n"
        "get_port: rule:admin_only or (rule:owner and field:port:name=visible)\n"
        "create_port:name: rule:admin_or_network_owner\n"
    )
    net = api.net(project_id="p1", shared=True)
    seen = api.ok("GET", f"/v2.0/networks/{net['id']}", project="p1")["network"]
    assert seen["provider:network_type"] == "vxlan"
    assert "provider:segmentation_id" not in seen
    shown = api.port(net["id"], project="p1", name="visible")
    hidden = api.port(net["id"], project="p1", name="other")
    assert [p["id"] for p in api.ok("GET", "/v2.0/ports", project="p1")["ports"]] == [shown["id"]]
    api.err("GET", f"/v2.0/ports/{hidden['id']}", status=404, type="PortNotFound", project="p1")
    assert len(api.ok("GET", "/v2.0/ports")["ports"]) == 2
    # A rule reading the port's network: p2 is not the owner of p1's shared network.
    api.err("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "name": "n"}}, status=403, project="p2")
    api.port(net["id"], project="p2")


def test_policy_file_is_found_next_to_the_config_file(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "neutron.conf").write_text("[oslo_policy]\npolicy_file = ops-policy.json\n")
    (etc / "ops-policy.json").write_text('{"create_network": "role:admin"}')
    policy = load_policy(config_mod.load([etc / "neutron.conf"]))
    assert policy.check_strings["create_network"] == "role:admin"
    assert policy.overridden == frozenset({"create_network"})
    # The default name may be absent; a name the operator chose must exist.
    (etc / "plain.conf").write_text("[DEFAULT]\n")
    assert load_policy(config_mod.load([etc / "plain.conf"])).overridden == frozenset()
    (etc / "missing.conf").write_text("[oslo_policy]\npolicy_file = nowhere.yaml\n")
    with pytest.raises(PolicyError, match="policy_file = nowhere.yaml: no such file"):
        load_policy(config_mod.load([etc / "missing.conf"]))
    (etc / "bad.yaml").write_text('"create_port": "role:admin and"\n')
    (etc / "bad.conf").write_text("[oslo_policy]\npolicy_file = bad.yaml\n")
    with pytest.raises(PolicyError, match=r"bad.yaml: policy rule 'create_port': cannot parse"):
        load_policy(config_mod.load([etc / "bad.conf"]))

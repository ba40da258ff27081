"""desired_from_api: Neutron-shaped dicts -> one host's desired state."""

from __future__ import annotations

from typing import Any

import pytest

from netplex.agent.model import (
    DESIRED_PORT_KEYS,
    HostDesired,
    NetworkSpec,
    PortSpec,
    RemoteEndpoint,
    bridge_name,
    desired_from_api,
    tap_name,
    tunnel_ips_from_agents,
    vxlan_name,
)

NET_VX = "11111111-1111-1111-1111-111111111111"
NET_FLAT = "22222222-2222-2222-2222-222222222222"
NET_OTHER = "33333333-3333-3333-3333-333333333333"


def net(id_: str, type_: str, seg: int | None = None, physnet: str | None = None) -> dict[str, Any]:
    return {"id": id_, "mtu": 1450 if type_ == "vxlan" else 1500,
            "provider:network_type": type_, "provider:physical_network": physnet,
            "provider:segmentation_id": seg}


def port(id_: str, net_id: str, host: str, mac: str, ip: str | None = None,
         vif_type: str = "bridge", **kw: Any) -> dict[str, Any]:
    return {"id": id_, "network_id": net_id, "binding:host_id": host, "mac_address": mac,
            "binding:vif_type": vif_type,
            "fixed_ips": [{"subnet_id": "s", "ip_address": ip}] if ip else [], **kw}


AGENTS = [
    {"host": "h1", "configurations": {"tunneling_ip": "10.99.0.1"}},
    {"host": "h2", "configurations": {"tunneling_ip": "10.99.0.2"}},
    {"host": "h3", "configurations": {"tunneling_ip": "10.99.0.3"}},
    {"host": "nolocal", "configurations": {}},
]


def test_names_follow_neutron() -> None:
    assert tap_name("0123456789abcdef") == "tap0123456789a"
    assert bridge_name(NET_VX) == "brq11111111-11"
    assert vxlan_name(16777215) == "vxlan-16777215"
    assert len(vxlan_name(16777215)) <= 15


def test_tunnel_ips_from_agents() -> None:
    assert tunnel_ips_from_agents(AGENTS) == {
        "h1": "10.99.0.1", "h2": "10.99.0.2", "h3": "10.99.0.3"}


def test_desired_for_one_host() -> None:
    ports = [
        port("p1aaaaaaaaaaaaa", NET_VX, "h1", "FA:16:3E:00:00:01", "192.168.1.1"),
        port("p2aaaaaaaaaaaaa", NET_VX, "h2", "fa:16:3e:00:00:02", "192.168.1.2"),
        port("p3aaaaaaaaaaaaa", NET_VX, "h3", "fa:16:3e:00:00:03", "192.168.1.3"),
        port("p4aaaaaaaaaaaaa", NET_VX, "h3", "fa:16:3e:00:00:04", "192.168.1.4"),
        # unbound and failed ports are nowhere
        port("p5aaaaaaaaaaaaa", NET_VX, "h2", "fa:16:3e:00:00:05", vif_type="binding_failed"),
        port("p6aaaaaaaaaaaaa", NET_VX, "", "fa:16:3e:00:00:06", vif_type="unbound"),
        # flat networks get no L2pop
        port("p7aaaaaaaaaaaaa", NET_FLAT, "h1", "fa:16:3e:00:00:07", admin_state_up=False),
        port("p8aaaaaaaaaaaaa", NET_FLAT, "h2", "fa:16:3e:00:00:08"),
        # a network without local ports is not instantiated here
        port("p9aaaaaaaaaaaaa", NET_OTHER, "h2", "fa:16:3e:00:00:09"),
    ]
    nets = [net(NET_VX, "vxlan", 1001), net(NET_FLAT, "flat", physnet="physnet1"),
            net(NET_OTHER, "vxlan", 1002)]
    d = desired_from_api("h1", nets, ports, tunnel_ips_from_agents(AGENTS))
    assert [n.network_id for n in d.networks] == [NET_VX, NET_FLAT]
    assert d.network(NET_VX) == NetworkSpec(NET_VX, "vxlan", None, 1001, 1450)
    assert [p.port_id for p in d.ports] == ["p1aaaaaaaaaaaaa", "p7aaaaaaaaaaaaa"]
    assert d.ports[0].mac == "fa:16:3e:00:00:01"  # normalised
    assert d.ports[0].device == "tapp1aaaaaaaaa"
    assert d.ports[1].admin_state_up is False
    assert d.remotes == (
        RemoteEndpoint(NET_VX, "10.99.0.2", frozenset({("fa:16:3e:00:00:02", "192.168.1.2")})),
        RemoteEndpoint(NET_VX, "10.99.0.3", frozenset({("fa:16:3e:00:00:03", "192.168.1.3"),
                                                      ("fa:16:3e:00:00:04", "192.168.1.4")})),
    )


class Recording(dict[str, Any]):
    """A port body that remembers which attributes were read."""

    read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        Recording.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        Recording.read.add(key)
        return super().get(key, default)


def test_desired_state_reads_only_the_port_keys_the_cache_watches() -> None:
    # The cache recomputes the desired state only when one of DESIRED_PORT_KEYS changes.
    ports = [Recording(port(f"p{h}aaaaaaaaaaaaa", NET_VX, h, "fa:16:3e:00:00:01", "192.168.1.1",
                            admin_state_up=True, status="ACTIVE", description="x"))
             for h in ("h1", "h2", "")]
    Recording.read = set()
    desired_from_api("h1", [net(NET_VX, "vxlan", 1001)], ports, tunnel_ips_from_agents(AGENTS))
    assert Recording.read <= DESIRED_PORT_KEYS
    assert {"binding:host_id", "admin_state_up", "fixed_ips"} <= Recording.read


def test_segments_list_and_unknown_tunnel_host() -> None:
    nets = [{"id": NET_VX, "mtu": 1450, "segments": [
        {"provider:network_type": "vxlan", "provider:segmentation_id": 7,
         "provider:physical_network": None}]}]
    ports = [port("p1aaaaaaaaaaaaa", NET_VX, "h1", "fa:16:3e:00:00:01"),
             port("p2aaaaaaaaaaaaa", NET_VX, "nolocal", "fa:16:3e:00:00:02")]
    d = desired_from_api("h1", nets, ports, tunnel_ips_from_agents(AGENTS))
    assert d.network(NET_VX).segmentation_id == 7
    assert d.remotes == ()  # a host with no tunnel endpoint cannot be reached


def test_host_desired_validates() -> None:
    with pytest.raises(ValueError, match="unknown network"):
        HostDesired("h", ports=(PortSpec("p", "nope", "fa:16:3e:00:00:01"),))
    with pytest.raises(ValueError, match="segmentation_id"):
        NetworkSpec("n", "vxlan")

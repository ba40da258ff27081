"""Agent settings: Neutron option names in, what the server and the backends need out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netplex import config
from netplex.agent import backends
from netplex.agent.backends import settings_from_config
from netplex.agent.linuxbridge import LinuxBridgeBackend, LinuxBridgeConfig
from netplex.agent.monitor import DeviceNews, LinkMonitor, OvsdbMonitor, interface_news
from netplex.agent.openvswitch import OvsBackend, OvsConfig
from netplex.agent.settings import AgentSettings, SettingsError

INI = """
[DEFAULT]
host = compute-7
agent_auth_token = tok
[agent]
report_interval = 4
resync_interval = 120
server_url = http://10.0.0.1:9696
[vxlan]
local_ip = 10.99.0.7
[linux_bridge]
physical_interface_mappings = physnet1:eth1
[ovs]
bridge_mappings = physnet1:br-phys1
ovsdb_connection = unix:/run/ovs/db.sock
"""


def test_linuxbridge_settings_from_neutron_options() -> None:
    s = settings_from_config(config.load(text=INI), "linuxbridge")
    assert (s.host, s.server_url, s.agent_token) == ("compute-7", "http://10.0.0.1:9696", "tok")
    assert (s.report_interval, s.resync_interval) == (4.0, 120.0)
    body = backends.report_body(s, start_flag=True)
    assert body["agent_type"] == "Linux bridge agent"
    assert body["binary"] == "netplex-linuxbridge-agent"
    assert body["configurations"]["tunneling_ip"] == "10.99.0.7"
    assert body["configurations"]["tunnel_types"] == ["vxlan"]
    assert body["configurations"]["interface_mappings"] == {"physnet1": "eth1"}
    assert body["start_flag"] is True and body["topic"] == "N/A"
    assert isinstance(backends.build_backend(s), LinuxBridgeBackend)


def test_openvswitch_settings_and_cli_overrides() -> None:
    s = settings_from_config(config.load(text=INI), "openvswitch", host="h9",
                                  local_ip="10.99.0.9", netns=None)
    assert s.host == "h9" and s.ovs_db == "unix:/run/ovs/db.sock"
    assert s.rundir == Path("/run/ovs")  # default: where the db socket is
    conf = backends.configurations(s)
    assert conf["bridge_mappings"] == {"physnet1": "br-phys1"}
    assert (conf["integration_bridge"], conf["datapath_type"]) == ("br-int", "netdev")
    assert backends.backend_kind(s.mechanism).agent_type == "Open vSwitch agent"
    backend = backends.build_backend(s)
    assert isinstance(backend, OvsBackend) and backend.config.local_ip == "10.99.0.9"


def test_no_local_ip_means_no_tunnels() -> None:
    s = settings_from_config(config.load(text="[DEFAULT]\nhost = h\n"), "linuxbridge")
    assert s.tunnel_types == () and backends.configurations(s)["tunneling_ip"] is None


@pytest.mark.parametrize("kw,needle", [
    ({"host": ""}, "--host"),
    ({"netns": "npt-does-not-exist"}, "ip netns add"),
    ({"mechanism": "openvswitch", "ovs_db": "unix:/nonexistent/db.sock"}, "--ovs-db"),
    ({"mechanism": "openvswitch", "ovs_db": "/no/scheme"}, "--ovs-db"),
    ({"tunnel_types": ("vxlan",), "local_ip": ""}, "--local-ip"),
])
def test_validation_errors_say_what_to_do(kw: dict[str, object], needle: str) -> None:
    base = AgentSettings(host="h", mechanism="linuxbridge")
    s = base.with_overrides(**{k: v for k, v in kw.items() if k != "tunnel_types"})
    if "tunnel_types" in kw:
        from dataclasses import replace

        s = replace(s, tunnel_types=kw["tunnel_types"])  # type: ignore[arg-type]
    with pytest.raises(SettingsError) as exc:
        backends.validate(s)
    assert needle in exc.value.hint


def test_link_monitor_reports_new_and_deleted_taps_once_by_name() -> None:
    events: list[DeviceNews] = []
    mon = LinkMonitor("ns", events.append)
    lines = [
        "12: tapabc@if3: <BROADCAST,MULTICAST> mtu 1500 state DOWN",
        "12: tapabc@if3: <BROADCAST,MULTICAST,UP> mtu 1500 master brq1 state UP",  # our own change
        "13: vmabc@tapabc: <BROADCAST> mtu 1500",  # not a tap
        "Deleted 12: tapabc@if3: <BROADCAST,MULTICAST,UP> mtu 1500",
    ]
    got = [mon.interesting(line) for line in lines]
    assert got == [DeviceNews("tapabc appeared", "tapabc"), None, None,
                   DeviceNews("tapabc deleted", "tapabc")]
    assert mon.argv[:3] == ["ip", "-n", "ns"]


def _iface(name: str, iface_id: str | None = None, ofport: Any = None) -> dict[str, Any]:
    ids = [["iface-id", iface_id]] if iface_id else []
    return {"name": name, "external_ids": ["map", ids], "ofport": ofport or ["set", []]}


def test_interface_news_names_vm_ports_only() -> None:
    vm, vx = _iface("tapabc", "abc"), _iface("vxlan-1001")
    updates = {"Interface": {"u1": {"new": vm}, "u2": {"new": vx}},
               "Port": {"p1": {"new": {"name": "tapabc"}}}}
    assert interface_news(updates, False, 1) == [DeviceNews("OVS interface tapabc added", "tapabc")]
    # ovs-vswitchd numbers it (monitor v1: "old" holds only the changed columns)
    numbered = {"Interface": {"u1": {"new": _iface("tapabc", "abc", 7), "old": {"ofport": ["set", []]}}}}
    assert interface_news(numbered, False, 1) == [DeviceNews("OVS interface tapabc changed", "tapabc")]
    gone = {"Interface": {"u1": {"old": vm}, "u2": {"old": vx}}}
    assert interface_news(gone, False, 1) == [DeviceNews("OVS interface tapabc removed", "tapabc")]
    # the iface-id taken away: still news (the port is no longer ours to wire)
    unkeyed = {"Interface": {"u1": {"new": _iface("tapabc"), "old": {"external_ids": vm["external_ids"]}}}}
    assert interface_news(unkeyed, False, 1)[0].device == "tapabc"


def test_interface_news_after_a_reconnect_says_anything_may_have_changed() -> None:
    initial = {"Interface": {"u1": {"new": _iface("tapabc", "abc", 7)}}}
    assert interface_news(initial, True, 1) == []  # the first contents: nobody read before
    assert interface_news(initial, True, 2) == [DeviceNews("OVSDB connection re-established")]


def test_backends_make_their_own_monitors(tmp_path: Path) -> None:
    lb = LinuxBridgeBackend(LinuxBridgeConfig(), netns="ns1")
    mon = lb.device_monitor(lambda _: None)
    assert isinstance(mon, LinkMonitor) and mon.argv[:3] == ["ip", "-n", "ns1"]
    ovs = OvsBackend(OvsConfig(), f"unix:{tmp_path / 'db.sock'}", tmp_path, timeout=0.2)
    try:
        mon = ovs.device_monitor(lambda _: None)
        assert isinstance(mon, OvsdbMonitor) and mon.client is ovs.db  # one connection
        mon.start()
        assert mon.alive()  # (re)connecting counts: it reports once it is in sync
        mon.stop()
        assert not mon.alive()
    finally:
        ovs.close()

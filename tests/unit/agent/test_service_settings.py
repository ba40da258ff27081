"""Agent settings: Neutron option names in, what the server and the backends need out."""

from __future__ import annotations

from pathlib import Path

import pytest

from netplex import config
from netplex.agent.linuxbridge import LinuxBridgeBackend
from netplex.agent.monitor import DeviceNews, LinkMonitor, OvsdbMonitor
from netplex.agent.openvswitch import OvsBackend
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
    s = AgentSettings.from_config(config.load(text=INI), "linuxbridge")
    assert (s.host, s.server_url, s.agent_token) == ("compute-7", "http://10.0.0.1:9696", "tok")
    assert (s.report_interval, s.resync_interval) == (4.0, 120.0)
    body = s.report_body(start_flag=True)
    assert body["agent_type"] == "Linux bridge agent"
    assert body["binary"] == "netplex-linuxbridge-agent"
    assert body["configurations"]["tunneling_ip"] == "10.99.0.7"
    assert body["configurations"]["tunnel_types"] == ["vxlan"]
    assert body["configurations"]["interface_mappings"] == {"physnet1": "eth1"}
    assert body["start_flag"] is True and body["topic"] == "N/A"
    assert isinstance(s.backend(), LinuxBridgeBackend)


def test_openvswitch_settings_and_cli_overrides() -> None:
    s = AgentSettings.from_config(config.load(text=INI), "openvswitch", host="h9",
                                  local_ip="10.99.0.9", netns=None)
    assert s.host == "h9" and s.ovs_db == "unix:/run/ovs/db.sock"
    assert s.rundir == Path("/run/ovs")  # default: where the db socket is
    conf = s.configurations()
    assert conf["bridge_mappings"] == {"physnet1": "br-phys1"}
    assert (conf["integration_bridge"], conf["datapath_type"]) == ("br-int", "netdev")
    assert s.agent_type == "Open vSwitch agent"
    backend = s.backend()
    assert isinstance(backend, OvsBackend) and backend.config.local_ip == "10.99.0.9"


def test_no_local_ip_means_no_tunnels() -> None:
    s = AgentSettings.from_config(config.load(text="[DEFAULT]\nhost = h\n"), "linuxbridge")
    assert s.tunnel_types == () and s.configurations()["tunneling_ip"] is None


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
        s.validate()
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


def test_ovsdb_monitor_ignores_the_initial_dump_and_non_vm_rows() -> None:
    mon = OvsdbMonitor("unix:/x/db.sock", lambda _: None)
    initial = '{"data":[["u","initial","br-int",["map",[]],65534]],"headings":[]}'
    vxlan = '{"data":[["u","insert","vxlan-1001",["map",[]],["set",[]]]],"headings":[]}'
    vm = '{"data":[["u","insert","tapabc",["map",[["iface-id","abc"]]],["set",[]]]],"headings":[]}'
    assert mon.interesting(initial) is None
    assert mon.interesting(vxlan) is None
    assert mon.interesting(vm) == DeviceNews("OVS interface changed")  # which one: not said

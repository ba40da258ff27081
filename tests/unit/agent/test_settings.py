"""Agent settings: Neutron option names in, what the server and the backends need out
(and the backends' own configuration, read as ``netplex agent`` reads it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netplex import config
from netplex.agent import backends
from netplex.agent.backends import settings_from_config
from netplex.agent.linuxbridge import LinuxBridgeBackend, LinuxBridgeConfig
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


BACKEND_INI = """
[linux_bridge]
physical_interface_mappings = physnet1:eth1
[vxlan]
local_ip = 10.99.0.1
udp_dstport = 4790
[ovs]
bridge_mappings = physnet1:br-phys1,physnet2:br-phys2
integration_bridge = br-int
"""


def _backend_config(mechanism: str) -> LinuxBridgeConfig | OvsConfig:
    settings = settings_from_config(config.load(text=BACKEND_INI), mechanism, host="h")
    backend = backends.build_backend(settings)
    try:
        assert isinstance(backend, LinuxBridgeBackend | OvsBackend)
        return backend.config
    finally:
        backend.close()


def test_linuxbridge_config_from_ini() -> None:
    cfg = _backend_config("linuxbridge")
    assert cfg.local_ip == "10.99.0.1" and cfg.udp_port == 4790
    assert dict(cfg.physical_interface_mappings) == {"physnet1": "eth1"}


def test_ovs_config_from_ini_falls_back_to_vxlan_local_ip() -> None:
    cfg = _backend_config("openvswitch")
    assert cfg.local_ip == "10.99.0.1" and cfg.datapath_type == "netdev"
    assert dict(cfg.bridge_mappings) == {"physnet1": "br-phys1", "physnet2": "br-phys2"}

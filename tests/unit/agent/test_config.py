"""Backend options come from Neutron-named ini options."""

from __future__ import annotations

from netplex import config
from netplex.agent.linuxbridge import LinuxBridgeConfig
from netplex.agent.openvswitch import OvsConfig

INI = """
[linux_bridge]
physical_interface_mappings = physnet1:eth1
[vxlan]
local_ip = 10.99.0.1
udp_dstport = 4790
[ovs]
bridge_mappings = physnet1:br-phys1,physnet2:br-phys2
integration_bridge = br-int
"""


def test_linuxbridge_config_from_ini() -> None:
    cfg = LinuxBridgeConfig.from_config(config.load(text=INI))
    assert cfg.local_ip == "10.99.0.1" and cfg.udp_port == 4790
    assert dict(cfg.physical_interface_mappings) == {"physnet1": "eth1"}


def test_ovs_config_from_ini_falls_back_to_vxlan_local_ip() -> None:
    cfg = OvsConfig.from_config(config.load(text=INI))
    assert cfg.local_ip == "10.99.0.1" and cfg.datapath_type == "netdev"
    assert dict(cfg.bridge_mappings) == {"physnet1": "br-phys1", "physnet2": "br-phys2"}

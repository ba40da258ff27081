"""Behavioural checks of a plugged / unplugged VIF, for any Executor.

The unit tests run them against :class:`netplex.vif.testing.FakeExecutor`, the
functional tests against :class:`netplex.vif.LinuxExecutor` in a real
namespace with a real Open vSwitch: one contract, two implementations.
"""

from __future__ import annotations

from netplex.vif import VIF, Executor, InstanceInfo
from netplex.vif.plugins.bridge import bridge_name
from netplex.vif.plugins.ovs import DEAD_VLAN, hybrid_names, integration_bridge


def port_device_names(vif: VIF) -> list[str]:
    """Every device name plugging this port can create."""
    return [vif.devname, vif.vm_devname, *hybrid_names(vif)]


def assert_vm_end(ex: Executor, vif: VIF) -> None:
    vm = ex.link(vif.vm_devname)
    assert vm is not None, f"{vif.vm_devname} missing"
    assert vm.kind == "veth"
    assert vm.address == vif.mac_address
    if vif.mtu:
        assert vm.mtu == vif.mtu


def assert_host_end(ex: Executor, vif: VIF, master: str | None) -> None:
    tap = ex.link(vif.devname)
    assert tap is not None, f"{vif.devname} missing"
    assert tap.kind == "veth"
    assert tap.up
    assert tap.master == master
    if vif.mtu:
        assert tap.mtu == vif.mtu


def assert_ovs_port(ex: Executor, vif: VIF, instance: InstanceInfo, name: str) -> None:
    iface = ex.ovs_interface(name)
    assert iface is not None, f"OVS interface {name} missing"
    assert iface.bridge == integration_bridge(vif)
    assert iface.external_ids["iface-id"] == vif.id
    assert iface.external_ids["attached-mac"] == vif.mac_address
    assert iface.external_ids["iface-status"] == "active"
    assert iface.external_ids["vm-uuid"] == instance.uuid


def assert_plugged(ex: Executor, vif: VIF, instance: InstanceInfo) -> None:
    """The host looks the way ``vif_type`` promises (namespace VM)."""
    if vif.vif_type == "bridge":
        br = ex.link(bridge_name(vif))
        assert br is not None and br.kind == "bridge" and br.up
        assert_host_end(ex, vif, bridge_name(vif))
        assert_vm_end(ex, vif)
    elif vif.vif_type == "ovs" and vif.flag("ovs_hybrid_plug"):
        qbr, qvb, qvo = hybrid_names(vif)
        bridge = ex.link(qbr)
        assert bridge is not None and bridge.kind == "bridge" and bridge.up
        b = ex.link(qvb)
        o = ex.link(qvo)
        assert b is not None and b.kind == "veth" and b.up and b.master == qbr
        assert o is not None and o.kind == "veth" and o.up and o.master is None
        assert_host_end(ex, vif, qbr)
        assert_vm_end(ex, vif)
        assert_ovs_port(ex, vif, instance, qvo)
        assert ex.ovs_interface(vif.devname) is None
    elif vif.vif_type == "ovs":
        assert_host_end(ex, vif, None)
        assert_vm_end(ex, vif)
        assert_ovs_port(ex, vif, instance, vif.devname)
    elif vif.vif_type == "tap":
        assert_host_end(ex, vif, None)
        assert_vm_end(ex, vif)
    else:
        raise AssertionError(f"no contract for {vif.vif_type}")


def assert_new_ovs_port_isolated(ex: Executor, name: str) -> None:
    iface = ex.ovs_interface(name)
    assert iface is not None and iface.tag == DEAD_VLAN


def assert_nothing_left(ex: Executor, vif: VIF, *, ovs: bool = True) -> None:
    """No device and (with ``ovs``: the host runs OVS) no OVS port of this port remain."""
    for name in port_device_names(vif):
        assert ex.link(name) is None, f"{name} left behind"
    if ovs:
        for name in (vif.devname, hybrid_names(vif)[2]):
            assert ex.ovs_interface(name) is None, f"OVS port {name} left behind"

"""Plug/unplug plans of every built-in vif_type, read as data and applied to a fake host."""

from __future__ import annotations

from typing import Any

import pytest

from netplex.vif import (
    VIF,
    InstanceInfo,
    InstanceNotSupported,
    InvalidVifDetails,
    PluginRegistry,
    plug,
    unplug,
    vif_from_port,
)
from netplex.vif.ops import (
    DeleteLink,
    EnsureBridge,
    EnsureTap,
    EnsureVeth,
    OvsAddPort,
    OvsDelPort,
    SetLink,
    describe,
)
from netplex.vif.plugins import BridgePlugin, OvsPlugin, TapPlugin, VhostUserPlugin
from netplex.vif.testing import FakeExecutor
from tests.unit.vif import contract
from tests.unit.vif.factories import MAC, NET_ID, PORT_ID, VM_UUID, network, port, subnets

TAP = "tap" + PORT_ID[:11]
VM = "vm" + PORT_ID[:11]
QBR, QVB, QVO = ("qbr" + PORT_ID[:11], "qvb" + PORT_ID[:11], "qvo" + PORT_ID[:11])
BRQ = "brq" + NET_ID[:11]

NS_VM = InstanceInfo(uuid=VM_UUID, name="vm1", netns="vm1")
HV_VM = InstanceInfo(uuid=VM_UUID, name="vm1")
OVS_IDS = (
    ("iface-id", PORT_ID),
    ("iface-status", "active"),
    ("attached-mac", MAC),
    ("vm-uuid", VM_UUID),
)


def make_vif(vif_type: str, details: dict[str, Any] | None = None, mtu: int | None = 1450) -> VIF:
    return vif_from_port(port(vif_type, details), network=network(mtu), subnets=subnets())


def veth(master: str | None = None, mtu: int | None = 1450) -> list[Any]:
    return [EnsureVeth(TAP, VM, mtu=mtu, peer_address=MAC), SetLink(TAP, mtu=mtu, master=master)]


# --- plans as data -------------------------------------------------------------------


def test_bridge_plan_namespace_vm() -> None:
    vif = make_vif("bridge")
    p = BridgePlugin()
    assert p.plan_plug(vif, NS_VM) == [EnsureBridge(BRQ), *veth(master=BRQ)]
    assert p.plan_unplug(vif, NS_VM) == [DeleteLink(TAP)]
    assert p.vm_device(vif, NS_VM) == VM


def test_bridge_plan_uses_bridge_name_from_details() -> None:
    vif = make_vif("bridge", {"bridge_name": "br-phys"})
    assert BridgePlugin().plan_plug(vif, NS_VM) == [EnsureBridge("br-phys"),
                                                    *veth(master="br-phys")]


def test_bridge_plan_without_creating_the_bridge() -> None:
    vif = make_vif("bridge")
    assert BridgePlugin(create_bridge=False).plan_plug(vif, NS_VM) == veth(master=BRQ)


def test_bridge_plan_hypervisor_vm_only_ensures_the_bridge() -> None:
    vif = make_vif("bridge")
    assert BridgePlugin().plan_plug(vif, HV_VM) == [EnsureBridge(BRQ)]
    assert BridgePlugin().plan_unplug(vif, HV_VM) == []
    assert BridgePlugin().vm_device(vif, HV_VM) is None


def test_ovs_plan_namespace_vm() -> None:
    vif = make_vif("ovs", {"bridge_name": "br-int", "ovs_hybrid_plug": False})
    p = OvsPlugin()
    assert p.plan_plug(vif, NS_VM) == [
        *veth(),
        OvsAddPort("br-int", TAP, OVS_IDS, initial_tag=4095, initial_protected=True),
    ]
    assert p.plan_unplug(vif, NS_VM) == [OvsDelPort(TAP), DeleteLink(TAP)]


def test_ovs_plan_defaults_to_br_int_and_passes_the_ovsdb_socket() -> None:
    vif = make_vif("ovs", {"ovsdb_connection": "unix:/run/h1/db.sock"})
    plan = OvsPlugin().plan_plug(vif, NS_VM)
    assert plan[-1] == OvsAddPort("br-int", TAP, OVS_IDS, 4095, "unix:/run/h1/db.sock", initial_protected=True)
    assert OvsPlugin().plan_unplug(vif, NS_VM)[0] == OvsDelPort(TAP, "unix:/run/h1/db.sock")


def test_ovs_plan_without_isolation() -> None:
    vif = make_vif("ovs")
    add = OvsPlugin(isolate_new_ports=False).plan_plug(vif, NS_VM)[-1]
    assert isinstance(add, OvsAddPort) and add.initial_tag is None


def test_ovs_hybrid_plan_namespace_vm() -> None:
    vif = make_vif("ovs", {"bridge_name": "br-int", "ovs_hybrid_plug": True})
    p = OvsPlugin()
    assert p.plan_plug(vif, NS_VM) == [
        EnsureBridge(QBR),
        EnsureVeth(QVB, QVO, mtu=1450),
        SetLink(QVB, mtu=1450, master=QBR),
        SetLink(QVO, mtu=1450),
        OvsAddPort("br-int", QVO, OVS_IDS, initial_tag=4095, initial_protected=True),
        *veth(master=QBR),
    ]
    assert p.plan_unplug(vif, NS_VM) == [
        OvsDelPort(QVO), DeleteLink(QVB), DeleteLink(TAP), DeleteLink(QBR),
    ]


def test_ovs_hybrid_plan_hypervisor_vm_has_no_tap() -> None:
    vif = make_vif("ovs", {"ovs_hybrid_plug": True})
    plan = OvsPlugin().plan_plug(vif, HV_VM)
    assert [type(op) for op in plan] == [EnsureBridge, EnsureVeth, SetLink, SetLink, OvsAddPort]
    assert OvsPlugin().plan_unplug(vif, HV_VM) == [OvsDelPort(QVO), DeleteLink(QVB),
                                                   DeleteLink(QBR)]


def test_ovs_plan_hypervisor_vm_is_left_to_libvirt() -> None:
    vif = make_vif("ovs")
    assert OvsPlugin().plan_plug(vif, HV_VM) == []
    assert OvsPlugin().plan_unplug(vif, HV_VM) == []


def test_tap_plans() -> None:
    vif = make_vif("tap")
    p = TapPlugin()
    assert p.plan_plug(vif, NS_VM) == veth()
    assert p.plan_unplug(vif, NS_VM) == [DeleteLink(TAP)]
    assert p.plan_plug(vif, HV_VM) == [EnsureTap(TAP, mtu=1450), SetLink(TAP, mtu=1450)]
    assert p.plan_unplug(vif, HV_VM) == [DeleteLink(TAP)]


def test_mtu_unknown_leaves_kernel_default() -> None:
    vif = make_vif("tap", mtu=None)
    assert TapPlugin().plan_plug(vif, NS_VM) == veth(mtu=None)


def test_vhostuser_is_config_only() -> None:
    vif = make_vif("vhostuser", {"vhostuser_socket": "/run/vhu/x.sock", "vhostuser_mode": "client"})
    p = VhostUserPlugin()
    assert p.plan_plug(vif, HV_VM) == []
    assert p.plan_unplug(vif, HV_VM) == []
    assert p.vm_device(vif, HV_VM) is None


def test_vhostuser_refuses_namespace_vms() -> None:
    vif = make_vif("vhostuser", {"vhostuser_socket": "/run/vhu/x.sock"})
    with pytest.raises(InstanceNotSupported) as info:
        VhostUserPlugin().plan_plug(vif, NS_VM)
    assert PORT_ID in str(info.value) and "vm1" in str(info.value)


@pytest.mark.parametrize(
    "details",
    [{}, {"vhostuser_socket": ""}, {"vhostuser_socket": "/x.sock", "vhostuser_mode": "both"}],
)
def test_vhostuser_validates_details(details: dict[str, Any]) -> None:
    with pytest.raises(InvalidVifDetails) as info:
        VhostUserPlugin().plan_plug(make_vif("vhostuser", details), HV_VM)
    assert PORT_ID in str(info.value)


def test_plans_describe_themselves() -> None:
    lines = describe(OvsPlugin().plan_plug(make_vif("ovs"), NS_VM))
    assert lines[0] == f"ensure veth {TAP} <-> {VM}"
    assert lines[-1].startswith(f"ovs add-port br-int {TAP} tag=4095 protected if new (iface-id={PORT_ID}")


# --- behaviour on a fake host ----------------------------------------------------------

CASES = [
    ("bridge", {}),
    ("bridge", {"bridge_name": "br-phys"}),
    ("ovs", {"bridge_name": "br-int"}),
    ("ovs", {"bridge_name": "br-int", "ovs_hybrid_plug": True}),
    ("tap", {}),
]


def fake_host() -> FakeExecutor:
    return FakeExecutor("host1", namespaces=["vm1"], ovs_bridges=["br-int"])


@pytest.mark.parametrize(("vif_type", "details"), CASES)
def test_plug_is_idempotent_and_unplug_leaves_nothing(vif_type: str, details: dict) -> None:
    ex = fake_host()
    vif = make_vif(vif_type, details)
    reg = PluginRegistry.default(entry_points=False)

    plug(vif, NS_VM, executor=ex, registry=reg)
    contract.assert_plugged(ex, vif, NS_VM)
    before = ex.links()
    plug(vif, NS_VM, executor=ex, registry=reg)  # again: same host
    assert ex.links() == before
    contract.assert_plugged(ex, vif, NS_VM)

    unplug(vif, NS_VM, executor=ex, registry=reg)
    contract.assert_nothing_left(ex, vif)
    unplug(vif, NS_VM, executor=ex, registry=reg)  # already gone: not an error
    contract.assert_nothing_left(ex, vif)


@pytest.mark.parametrize(("vif_type", "details"), CASES)
def test_unplug_on_an_empty_host_is_fine(vif_type: str, details: dict) -> None:
    ex = fake_host()
    unplug(make_vif(vif_type, details), NS_VM, executor=ex,
           registry=PluginRegistry.default(entry_points=False))
    assert ex.links() == {}


def test_unplug_keeps_the_shared_linux_bridge() -> None:
    ex = fake_host()
    vif = make_vif("bridge")
    plug(vif, NS_VM, executor=ex)
    unplug(vif, NS_VM, executor=ex)
    assert set(ex.links()) == {BRQ}


def test_plug_after_partial_failure_converges() -> None:
    failing = {"on": True}

    def fail(op: object) -> Exception | None:
        if failing["on"] and isinstance(op, OvsAddPort):
            return RuntimeError("ovsdb went away")
        return None

    ex = FakeExecutor("host1", namespaces=["vm1"], ovs_bridges=["br-int"], fail=fail)
    vif = make_vif("ovs")
    with pytest.raises(RuntimeError):
        plug(vif, NS_VM, executor=ex)
    assert ex.link(TAP) is not None and ex.ovs_interface(TAP) is None
    failing["on"] = False
    plug(vif, NS_VM, executor=ex)
    contract.assert_plugged(ex, vif, NS_VM)


def test_new_ovs_port_is_isolated_but_a_replug_keeps_the_agents_tag() -> None:
    ex = fake_host()
    vif = make_vif("ovs")
    plug(vif, NS_VM, executor=ex)
    contract.assert_new_ovs_port_isolated(ex, TAP)
    ex.ovs_tags[TAP] = 3  # the agent wired it
    plug(vif, NS_VM, executor=ex)
    iface = ex.ovs_interface(TAP)
    assert iface is not None and iface.tag == 3


def test_ovs_without_integration_bridge_fails_clearly() -> None:
    ex = FakeExecutor("host1", namespaces=["vm1"])
    with pytest.raises(Exception, match="no bridge named br-int"):
        plug(make_vif("ovs"), NS_VM, executor=ex)


def test_name_clash_with_a_foreign_device_is_refused() -> None:
    ex = fake_host()
    ex.add_link(TAP, "dummy")
    with pytest.raises(Exception, match="exists but is a dummy"):
        plug(make_vif("tap"), NS_VM, executor=ex)


def test_hypervisor_tap_is_a_tun_device() -> None:
    ex = fake_host()
    vif = make_vif("tap")
    plug(vif, HV_VM, executor=ex)
    tap = ex.link(TAP)
    assert tap is not None and tap.kind == "tun" and tap.up and tap.mtu == 1450
    unplug(vif, HV_VM, executor=ex)
    assert ex.links() == {}

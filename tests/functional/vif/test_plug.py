"""Real plugging: veths into a real Linux bridge and a real (private, netdev) OVS in a namespace.

The behavioural checks are the same ones the unit tests run against the fake
host (``tests/unit/vif/contract.py``), here against netlink and OVSDB.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from netplex.linux.ovs import OvsInstance
from netplex.vif import (
    InstanceInfo,
    LinuxExecutor,
    NamespaceNotFound,
    PluginRegistry,
    attach,
    detach,
    plug,
    unplug,
    vif_from_port,
)
from netplex.vif.executor import IFNAMSIZ
from tests.unit.vif import contract
from tests.unit.vif.factories import (
    NET_ID,
    PORT_ID,
    VM_UUID,
    FakeNeutron,
    binds_as,
    network,
    port,
    subnets,
)

pytestmark = pytest.mark.functional

REGISTRY = PluginRegistry.default(entry_points=False)
TAP = "tap" + PORT_ID[:11]


def make_vif(vif_type: str, details: dict[str, Any] | None = None, **kw: Any) -> Any:
    return vif_from_port(port(vif_type, details, **kw), network=network(1450), subnets=subnets())


def ns_links(ns: str) -> set[str]:
    out = subprocess.run(["ip", "netns", "exec", ns, "ip", "-o", "link", "show"],
                         capture_output=True, text=True, check=True)
    return {line.split(": ")[1].split("@")[0] for line in out.stdout.splitlines()}


def ping(ns: str, address: str) -> bool:
    flag = "-6" if ":" in address else "-4"
    r = subprocess.run(["ip", "netns", "exec", ns, "ping", flag, "-c", "1", "-W", "3", address],
                       capture_output=True, text=True)
    return r.returncode == 0


def test_linux_bridge_plug_unplug(vif_netns: Callable[[str], str]) -> None:
    host = vif_netns("h")
    ex = LinuxExecutor(host)
    vif = make_vif("bridge")
    instance = InstanceInfo(VM_UUID, "vm", netns="unused")
    before = ns_links(host)

    plug(vif, instance, executor=ex, registry=REGISTRY)
    plug(vif, instance, executor=ex, registry=REGISTRY)  # idempotent
    contract.assert_plugged(ex, vif, instance)
    brq = "brq" + NET_ID[:11]
    assert {TAP, vif.vm_devname, brq} <= ns_links(host)

    unplug(vif, instance, executor=ex, registry=REGISTRY)
    unplug(vif, instance, executor=ex, registry=REGISTRY)  # already gone
    contract.assert_nothing_left(ex, vif, ovs=False)
    # Only the (agent-owned) bridge remains.
    assert ns_links(host) - before == {brq}


@pytest.mark.parametrize("hybrid", [False, True], ids=["direct", "hybrid"])
def test_ovs_plug_unplug(vif_netns: Callable[[str], str],
                         vif_ovs: Callable[[str], OvsInstance], hybrid: bool) -> None:
    host = vif_netns("h")
    ovs = vif_ovs(host)
    ex = LinuxExecutor(host, ovs_db=ovs.db_socket)
    vif = make_vif("ovs", {"bridge_name": "br-int", "ovs_hybrid_plug": hybrid})
    instance = InstanceInfo(VM_UUID, "vm", netns="unused")
    before = ns_links(host)

    plug(vif, instance, executor=ex, registry=REGISTRY)
    plug(vif, instance, executor=ex, registry=REGISTRY)
    contract.assert_plugged(ex, vif, instance)
    ovs_port = "qvo" + PORT_ID[:11] if hybrid else TAP
    contract.assert_new_ovs_port_isolated(ex, ovs_port)
    # Cross-check with ovs-vsctl itself.
    raw = ovs.vsctl("get", "Interface", ovs_port, "external_ids")
    for key, value in (("iface-id", PORT_ID), ("vm-uuid", VM_UUID), ("iface-status", "active")):
        assert f"{key}={value}" in raw.replace('"', "")
    assert ovs.vsctl("list-ports", "br-int").split() == [ovs_port]
    # ovs-vswitchd opened the device (no error on the Interface).
    assert ovs.vsctl("get", "Interface", ovs_port, "error").strip() in ("[]", '""')

    unplug(vif, instance, executor=ex, registry=REGISTRY)
    unplug(vif, instance, executor=ex, registry=REGISTRY)
    contract.assert_nothing_left(ex, vif)
    assert ovs.vsctl("list-ports", "br-int").split() == []
    assert ns_links(host) == before


def test_ovsdb_socket_from_vif_details(vif_netns: Callable[[str], str],
                                       vif_ovs: Callable[[str], OvsInstance]) -> None:
    host = vif_netns("h")
    ovs = vif_ovs(host)
    ex = LinuxExecutor(host)  # no socket of its own
    vif = make_vif("ovs", {"ovsdb_connection": ovs.db_socket})
    instance = InstanceInfo(VM_UUID, "vm", netns="unused")
    plug(vif, instance, executor=ex, registry=REGISTRY)
    assert ovs.vsctl("list-ports", "br-int").split() == [TAP]
    unplug(vif, instance, executor=ex, registry=REGISTRY)
    assert ovs.vsctl("list-ports", "br-int").split() == []


def test_tap_plug_unplug(vif_netns: Callable[[str], str]) -> None:
    host = vif_netns("h")
    ex = LinuxExecutor(host)
    before = ns_links(host)
    vif = make_vif("tap")
    ns_vm = InstanceInfo(VM_UUID, "vm", netns="unused")
    plug(vif, ns_vm, executor=ex, registry=REGISTRY)
    contract.assert_plugged(ex, vif, ns_vm)
    unplug(vif, ns_vm, executor=ex, registry=REGISTRY)
    # Hypervisor VM: a persistent tap device instead of a veth.
    hv_vm = InstanceInfo(VM_UUID, "vm")
    plug(vif, hv_vm, executor=ex, registry=REGISTRY)
    plug(vif, hv_vm, executor=ex, registry=REGISTRY)
    tap = ex.link(TAP)
    assert tap is not None and tap.kind == "tun" and tap.up and tap.mtu == 1450
    unplug(vif, hv_vm, executor=ex, registry=REGISTRY)
    assert ns_links(host) == before


def test_missing_namespace_is_reported_not_created(vif_prefix: str,
                                                   vif_netns: Callable[[str], str]) -> None:
    missing = f"{vif_prefix}-missing"
    with pytest.raises(NamespaceNotFound):
        plug(make_vif("tap"), InstanceInfo(VM_UUID, netns="x"),
             executor=LinuxExecutor(missing), registry=REGISTRY)
    with pytest.raises(NamespaceNotFound):
        LinuxExecutor(missing).link("lo")
    assert not subprocess.run(["ip", "netns", "list"], capture_output=True,
                              text=True).stdout.count(missing)


def test_names_fit_the_kernel_limit() -> None:
    vif = make_vif("ovs")
    for name in contract.port_device_names(vif):
        assert len(name) <= IFNAMSIZ


# --- the attach flow with a scripted server and the real host --------------------------------


def second_port() -> dict[str, Any]:
    p = port("unbound", host="")
    p.update(id="9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", mac_address="fa:16:3e:65:43:21",
             fixed_ips=[{"subnet_id": p["fixed_ips"][0]["subnet_id"],
                         "ip_address": "10.0.0.6"}])
    return p


def test_attach_two_vms_on_a_linux_bridge_and_ping(vif_netns: Callable[[str], str]) -> None:
    host, vm1, vm2 = vif_netns("h"), vif_netns("vm1"), vif_netns("vm2")
    ex = LinuxExecutor(host)
    s1 = FakeNeutron(port("unbound", host=""), binder=binds_as("bridge"),
                     agent=lambda p: "ACTIVE")
    s2 = FakeNeutron(second_port(), binder=binds_as("bridge"), agent=lambda p: "ACTIVE")
    r1 = attach(s1, PORT_ID, "h", vm1, executor=ex, registry=REGISTRY, timeout=5)
    r2 = attach(s2, s2.port["id"], "h", vm2, executor=ex, registry=REGISTRY,  # type: ignore[index]
                timeout=5)
    attach(s1, PORT_ID, "h", vm1, executor=ex, registry=REGISTRY, timeout=5)  # idempotent

    eth0 = ex.link("eth0", netns=vm1)
    assert eth0 is not None and eth0.up and eth0.address == r1.vif.mac_address
    assert eth0.mtu == 1450 and eth0.addresses == ("10.0.0.5/24",)
    assert ex.default_gateways(netns=vm1) == ("10.0.0.1",)
    assert ping(vm1, "10.0.0.6") and ping(vm2, "10.0.0.5")

    detach(s1, PORT_ID, "h", executor=ex, registry=REGISTRY, timeout=1, netns=vm1)
    detach(s2, r2.vif.id, "h", executor=ex, registry=REGISTRY, timeout=1, netns=vm2)
    assert ns_links(vm1) == {"lo"} and ns_links(vm2) == {"lo"}
    assert ns_links(host) == {"lo", "brq" + NET_ID[:11]}
    assert s1.port is not None and s1.port["binding:host_id"] == ""


def test_attach_two_vms_on_ovs_and_ping(vif_netns: Callable[[str], str],
                                        vif_ovs: Callable[[str], OvsInstance]) -> None:
    host, vm1, vm2 = vif_netns("h"), vif_netns("vm1"), vif_netns("vm2")
    ovs = vif_ovs(host)
    ex = LinuxExecutor(host, ovs_db=ovs.db_socket)
    details = {"bridge_name": "br-int", "ovs_hybrid_plug": False, "datapath_type": "netdev"}

    def agent(p: dict[str, Any]) -> str:
        # Stands in for the OVS agent: give every tap with an iface-id one local VLAN
        # (and lift the protection the VIF library plugs new ports with).
        iface = ex.ovs_interface("tap" + p["id"][:11])
        if iface is None or iface.external_ids.get("iface-id") != p["id"]:
            return "DOWN"
        ovs.vsctl("set", "Port", iface.name, "tag=7", "protected=false")
        return "ACTIVE"

    s1 = FakeNeutron(port("unbound", host=""), binder=binds_as("ovs", details), agent=agent)
    s2 = FakeNeutron(second_port(), binder=binds_as("ovs", details), agent=agent)
    attach(s1, PORT_ID, "h", vm1, executor=ex, registry=REGISTRY, timeout=10)
    r2 = attach(s2, s2.port["id"], "h", vm2, executor=ex,  # type: ignore[index]
                registry=REGISTRY, timeout=10)
    assert ping(vm1, "10.0.0.6") and ping(vm2, "10.0.0.5")

    detach(s1, PORT_ID, "h", executor=ex, registry=REGISTRY, timeout=1, netns=vm1)
    detach(s2, r2.vif.id, "h", executor=ex, registry=REGISTRY, timeout=1, netns=vm2)
    assert ovs.vsctl("list-ports", "br-int").split() == []
    assert ns_links(vm1) == {"lo"} and ns_links(vm2) == {"lo"}
    assert not any(n.startswith(("tap", "vm", "qbr", "qvb", "qvo")) for n in ns_links(host))

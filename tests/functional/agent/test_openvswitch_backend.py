"""The Open vSwitch backend's OVSDB connection against real ovsdb-server / ovs-vswitchd.

What a unit test cannot show: the monitored replica follows changes others
make, a transaction returns only once ovs-vswitchd has applied it, an
event pass plans what a full observe would, and the backend survives an
ovsdb-server restart without ever planning from an empty replica.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from netplex.agent.monitor import DeviceNews
from netplex.agent.openvswitch import OvsBackend, OvsConfig
from netplex.agent.ops import AddFlows, AddOvsPort, DelFlows, EnsureOvsBridge, EnsureTag
from netplex.agent.reconcile import reconcile
from netplex.linux import netns
from netplex.linux.ovs import OvsInstance
from netplex.linux.ovsdb import OvsdbError

from .test_dataplane import assert_idle
from .topology import PHYS_BRIDGE, PHYSNET, Lab

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]


@pytest.fixture
def lab(make_netns: Callable[[str], str],
        make_ovs: Callable[[str, str | None], OvsInstance]) -> Iterator[Lab]:
    yield Lab(make_netns, make_ovs)


def _backend(inst: OvsInstance, timeout: float = 10.0) -> OvsBackend:
    return OvsBackend(OvsConfig(), inst.db_socket, inst.workdir, inst.netns, timeout=timeout)


def _add_internal(inst: OvsInstance, name: str, iface_id: str) -> None:
    inst.vsctl("add-port", "br-int", name, "--", "set", "Interface", name, "type=internal",
               f"external_ids:iface-id={iface_id}")


def test_replica_follows_ports_others_add_and_remove(
        make_netns: Callable[[str], str], make_ovs: Callable[[str, str | None], OvsInstance]) -> None:
    inst = make_ovs("r", make_netns("r"))
    backend = _backend(inst)
    try:
        assert not backend.apply([EnsureOvsBridge("br-int", "netdev", "secure")]).errors
        _add_internal(inst, "tapext1", "port-1")  # the compute side, another OVSDB client
        got = backend.observe().ports["tapext1"]
        assert (got.bridge, got.iface_id) == ("br-int", "port-1")
        assert got.ofport is not None and got.ofport > 0  # ovs-vsctl waited for vswitchd
        inst.vsctl("del-port", "br-int", "tapext1")
        assert "tapext1" not in backend.observe().ports
    finally:
        backend.close()


def test_device_monitor_names_vm_ports_from_the_same_connection(
        make_netns: Callable[[str], str], make_ovs: Callable[[str, str | None], OvsInstance]) -> None:
    inst = make_ovs("m", make_netns("m"))
    backend = _backend(inst)
    # Each piece of news, with the interfaces the replica held when it was told.
    news: list[tuple[DeviceNews, set[str]]] = []

    def notify(n: DeviceNews) -> None:
        names = {r["name"] for r in backend.db.replica(0).rows("Interface").values()}
        news.append((n, names))

    def told(what: str) -> set[str]:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            for n, names in news:
                if n == DeviceNews(f"OVS interface tapmon1 {what}", "tapmon1"):
                    return names
            time.sleep(0.01)
        raise AssertionError(f"no news of tapmon1 {what}: {news}")

    mon = backend.device_monitor(notify)
    try:
        mon.start()
        assert not backend.apply([EnsureOvsBridge("br-int", "netdev", "secure"),
                                  AddOvsPort("br-int", "vxlan-9", 9, "net-a")]).errors
        _add_internal(inst, "tapmon1", "port-1")
        assert "tapmon1" in told("added")  # the pass it causes will see the port
        inst.vsctl("del-port", "br-int", "tapmon1")
        assert "tapmon1" not in told("removed")
        # Bridges, the VXLAN port, the initial contents: no news.
        assert {n.device for n, _ in news} == {"tapmon1"}
        assert mon.alive()
    finally:
        mon.stop()
        backend.close()
    assert not mon.alive()


def test_a_transaction_returns_once_vswitchd_applied_it(
        make_netns: Callable[[str], str], make_ovs: Callable[[str, str | None], OvsInstance]) -> None:
    ns = make_netns("w")
    inst = make_ovs("w", ns)
    netns.run(ns, ["ip", "link", "add", "vxlan-77", "type", "veth", "peer", "name", "peer77"])
    backend = _backend(inst)
    try:
        res = backend.apply([EnsureOvsBridge("br-int", "netdev", "secure"),
                             AddOvsPort("br-int", "vxlan-77", 7, "net-a")])
        assert not res.errors, res.errors
        # No waiting here: ovs-vswitchd has opened the device and numbered it.
        ofport = int(inst.vsctl("get", "Interface", "vxlan-77", "ofport"))
        assert ofport > 0
        port = backend.observe().ports["vxlan-77"]
        assert (port.tag, port.net_id, port.ofport) == (7, "net-a", ofport)
        assert inst.vsctl("get", "Bridge", "br-int", "fail_mode").strip() == "secure"
    finally:
        backend.close()


def test_refused_operations_are_told_apart(
        make_netns: Callable[[str], str], make_ovs: Callable[[str, str | None], OvsInstance]) -> None:
    inst = make_ovs("e", make_netns("e"))
    inst.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev",
               "--", "add-br", "br-other", "--", "set", "Bridge", "br-other", "datapath_type=netdev")
    for i in range(3):
        _add_internal(inst, f"tapok{i}", f"p{i}")
    inst.vsctl("add-port", "br-other", "elsewhere", "--", "set", "Interface", "elsewhere",
               "type=internal")
    backend = _backend(inst)
    try:
        bad = [EnsureTag("tapmissing", 5, "n"), AddOvsPort("br-int", "elsewhere", 5, "n"),
               AddOvsPort("br-nope", "tapx", 5, "n")]
        ops = [EnsureTag("tapok0", 5, "n"), *bad, EnsureTag("tapok1", 5, "n"),
               EnsureTag("tapok2", 6, None)]
        res = backend.apply(ops)
        assert [op for op, _ in res.errors] == bad and res.applied == 3
        assert [inst.vsctl("get", "Port", f"tapok{i}", "tag").strip() for i in range(3)] == \
            ["5", "5", "6"]
        assert "netplex-net-id" not in inst.vsctl("get", "Port", "tapok2", "other_config")
    finally:
        backend.close()


def test_event_passes_plan_what_a_full_observe_would(lab: Lab) -> None:
    h1 = lab.add_host("h1", "ovs")
    h2 = lab.add_host("h2", "lb")
    net = lab.cloud.add_network("vxlan", 5001)
    flat = lab.cloud.add_network("flat", physical_network="physnet1")
    vm1 = lab.add_vm("vm1", h1, net, "192.168.50.1")
    vm2 = lab.add_vm("vm2", h1, net, "192.168.50.2")
    lab.add_vm("vm3", h2, net, "192.168.50.3")
    backend = h1.backend()
    assert isinstance(backend, OvsBackend)
    try:
        res = reconcile(backend, lab.cloud.desired("h1"))
        assert res.full and not res.apply.errors
        # Meanwhile: a VM on a new VXLAN network (new tag, device, FDB), one on
        # the flat network (flows on both bridges), a remote VM, one unplugged.
        other = lab.cloud.add_network("vxlan", 5002)
        vm4 = lab.add_vm("vm4", h1, other, "192.168.51.4")
        vm5 = lab.add_vm("vm5", h1, flat, "172.16.5.5")
        vm6 = lab.add_vm("vm6", h2, net, "192.168.50.6")
        lab.add_vm("vm7", h2, other, "192.168.51.7")
        lab.remove_vm(vm2)
        for _ in range(2):  # the second starts from a baseline the first one built
            desired = lab.cloud.desired("h1")
            assert res.baseline is not None
            since = backend.observe_since(res.baseline, desired, ())
            full = backend.observe()
            assert since.flows == full.flows and since.linux.fdb == full.linux.fdb
            assert backend.plan(desired, since) == backend.plan(desired, full)
            res = reconcile(backend, desired, res.baseline)
            assert not res.full and not res.apply.errors
        assert not res.plan.ops
        lab.converge([h2])
        assert res.up == {vm1.port_id, vm4.port_id, vm5.port_id}
        assert lab.ping(vm1, vm6.ip) and lab.ping(vm4, lab.vms["vm7"].ip)
        assert_idle(lab)
    finally:
        backend.close()


def test_ovsdb_server_restart_fails_passes_then_reconnects(lab: Lab) -> None:
    h1 = lab.add_host("h1", "ovs")
    assert h1.ovs is not None
    inst = h1.ovs
    net = lab.cloud.add_network("vxlan", 6001)
    vm1 = lab.add_vm("vm1", h1, net, "192.168.60.1")
    backend = OvsBackend(OvsConfig(local_ip=h1.ip, bridge_mappings={PHYSNET: PHYS_BRIDGE}),
                         inst.db_socket, inst.workdir, inst.netns, timeout=1.0)
    try:
        first = reconcile(backend, lab.cloud.desired("h1"))
        assert first.up == {vm1.port_id} and not first.apply.errors
        connections = backend.db.connections
        pid = int((inst.workdir / "ovsdb-server.pid").read_text())
        os.kill(pid, signal.SIGTERM)  # our own instance's server
        _wait(lambda: not backend.db.connected)
        # Nothing to plan from: the pass fails (the agent retries it), and
        # never sees an empty host that it would "fix" by tearing down.
        with pytest.raises(OvsdbError):
            reconcile(backend, lab.cloud.desired("h1"))
        inst.start()  # a new ovsdb-server on the same database
        _wait(lambda: backend.db.connected)
        assert backend.db.connections == connections + 1
        vm2 = lab.add_vm("vm2", h1, net, "192.168.60.2")  # a change after the restart
        again = reconcile(backend, lab.cloud.desired("h1"))
        assert not again.apply.errors
        assert again.up == {vm1.port_id, vm2.port_id}
        assert lab.ping(vm1, vm2.ip)
        assert_idle(lab)
    finally:
        backend.close()


def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_dead_ports_reach_nobody_and_binding_wires_them(lab: Lab) -> None:
    """Ports the server does not bind here get tag 4095 and ``protected``: VLAN 4095
    alone would switch between them. Once bound they are wired by OVSDB alone."""
    h1 = lab.add_host("h1", "ovs")
    assert h1.ovs is not None
    net = lab.cloud.add_network("vxlan", 7001)
    vm1 = lab.add_vm("vm1", h1, net, "192.168.70.1")
    vm2 = lab.add_vm("vm2", h1, net, "192.168.70.2")
    ports = {vm.port_id: lab.cloud.ports.pop(vm.port_id) for vm in (vm1, vm2)}
    # As a compute side that does not isolate new ports would leave them.
    h1.ovs.vsctl("set", "Port", vm1.tap, "protected=false", "--", "set", "Port", vm2.tap, "protected=false")
    lab.converge([h1])
    for vm in (vm1, vm2):
        assert h1.ovs.vsctl("get", "Port", vm.tap, "tag").strip() == "4095"
        assert h1.ovs.vsctl("get", "Port", vm.tap, "protected").strip() == "true"
    assert lab.unreachable(vm1, vm2.ip)
    lab.cloud.ports.update(ports)
    res = lab.converge([h1])["h1"]
    assert res.up == set(ports)
    assert not any(isinstance(op, AddFlows | DelFlows) for op in res.plan.ops)
    assert lab.ping(vm1, vm2.ip)
    assert_idle(lab)

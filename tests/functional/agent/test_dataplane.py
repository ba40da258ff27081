"""Real data planes in namespaces: Linux bridge and Open vSwitch (netdev), VXLAN + L2pop, flat.

Each test builds its own lab (see :mod:`.topology`) and tears it down, OVS
daemons included, whatever happens.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from netplex.agent.model import FLOOD_MAC, bridge_name
from netplex.agent.ops import AddVxlan, AttachPort, EnsureBridge, EnsureTag, Op, SetLinkUp
from netplex.agent.reconcile import reconcile
from netplex.linux import netns
from netplex.linux.ovs import OvsInstance

from .topology import ContinuousPing, Lab

pytestmark = [pytest.mark.functional, pytest.mark.timeout(120)]


@pytest.fixture
def lab(make_netns: Callable[[str], str],
        make_ovs: Callable[[str, str | None], OvsInstance]) -> Iterator[Lab]:
    yield Lab(make_netns, make_ovs)


def assert_idle(lab: Lab) -> None:
    """A further pass with fresh backends (= restarted agents) changes nothing."""
    again = lab.converge()
    busy = {h: r.plan.describe() for h, r in again.items() if r.plan.ops}
    assert not busy, busy


@pytest.mark.parametrize("kinds", [("lb", "lb"), ("ovs", "ovs"), ("lb", "ovs")],
                         ids=["lb-lb", "ovs-ovs", "lb-ovs"])
def test_vxlan_ping_across_hosts(lab: Lab, kinds: tuple[str, str]) -> None:
    h1 = lab.add_host("h1", kinds[0])
    h2 = lab.add_host("h2", kinds[1])
    net = lab.cloud.add_network("vxlan", 1001)
    vm1 = lab.add_vm("vm1", h1, net, "192.168.10.1")
    vm2 = lab.add_vm("vm2", h2, net, "192.168.10.2")
    vm3 = lab.add_vm("vm3", h2, net, "192.168.10.3")  # a local neighbour too
    res = lab.converge()
    assert res["h1"].up == {vm1.port_id}
    assert res["h2"].up == {vm2.port_id, vm3.port_id}
    assert lab.ping(vm1, vm2.ip) and lab.ping(vm2, vm1.ip)
    assert lab.ping(vm3, vm1.ip) and lab.ping(vm3, vm2.ip)
    assert lab.tcp_transfer(vm1, vm2) == 200_000
    assert lab.tcp_transfer(vm2, vm1) == 200_000
    # L2 population: flood entry to the one other host plus one entry per remote MAC.
    assert lab.fdb(h1, "vxlan-1001") == {(FLOOD_MAC, h2.ip), (vm2.mac, h2.ip), (vm3.mac, h2.ip)}
    assert lab.fdb(h2, "vxlan-1001") == {(FLOOD_MAC, h1.ip), (vm1.mac, h1.ip)}
    assert_idle(lab)


def test_flat_provider_network_across_lb_and_ovs_hosts(lab: Lab) -> None:
    h1 = lab.add_host("h1", "lb")
    h2 = lab.add_host("h2", "ovs")
    h3 = lab.add_host("h3", "ovs")
    flat = lab.cloud.add_network("flat", physical_network="physnet1")
    vm1 = lab.add_vm("vm1", h1, flat, "172.16.0.1")
    vm2 = lab.add_vm("vm2", h2, flat, "172.16.0.2")
    vm3 = lab.add_vm("vm3", h3, flat, "172.16.0.3")
    lab.converge()
    assert lab.ping(vm1, vm2.ip) and lab.ping(vm1, vm3.ip) and lab.ping(vm2, vm3.ip)
    assert lab.tcp_transfer(vm1, vm2) == 200_000
    assert lab.tcp_transfer(vm3, vm2) == 200_000
    assert_idle(lab)


def test_vlan_provider_network_between_ovs_hosts_and_unsupported_on_lb(lab: Lab) -> None:
    h1 = lab.add_host("h1", "ovs")
    h2 = lab.add_host("h2", "ovs")
    h3 = lab.add_host("h3", "lb")
    vlan = lab.cloud.add_network("vlan", 100, physical_network="physnet1")
    vm1 = lab.add_vm("vm1", h1, vlan, "172.17.0.1")
    vm2 = lab.add_vm("vm2", h2, vlan, "172.17.0.2")
    vm3 = lab.add_vm("vm3", h3, vlan, "172.17.0.3")
    res = lab.converge()
    assert lab.ping(vm1, vm2.ip)
    # On the wire between the hosts the frames carry the provider VLAN id (not
    # the local tag): capture on the underlay's physnet port towards h2.
    cap = subprocess.Popen(
        netns.exec_in(lab.underlay, ["timeout", "5", "tcpdump", "-l", "-c", "1", "-nn", "-e",
                                     "-i", "p-h2", "vlan 100 and icmp"]),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(0.5)  # let tcpdump attach
        assert lab.ping(vm1, vm2.ip)
        out, _ = cap.communicate(timeout=10)
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
    assert "vlan 100" in out, out
    st = res["h3"].ports[vm3.port_id]
    assert not st.up and "802.1q" in st.reason
    assert "802.1q" in res["h3"].plan.problems[vlan]


def test_isolation_with_overlapping_ips(lab: Lab) -> None:
    h1 = lab.add_host("h1", "lb")
    h2 = lab.add_host("h2", "ovs")
    net_a = lab.cloud.add_network("vxlan", 2001)
    net_b = lab.cloud.add_network("vxlan", 2002)
    a1 = lab.add_vm("a1", h1, net_a, "192.168.50.1")
    a2 = lab.add_vm("a2", h2, net_a, "192.168.50.2")
    b1 = lab.add_vm("b1", h2, net_b, "192.168.50.1")  # same IP as a1
    b3 = lab.add_vm("b3", h1, net_b, "192.168.50.3")
    lab.converge()
    assert lab.ping(a1, a2.ip) and lab.neigh_mac(a1, a2.ip) == a2.mac
    assert lab.ping(b3, b1.ip) and lab.neigh_mac(b3, b1.ip) == b1.mac  # not a1's
    assert lab.ping(a2, a1.ip) and lab.neigh_mac(a2, a1.ip) == a1.mac  # not b1's
    assert lab.unreachable(a1, b3.ip)
    assert lab.unreachable(b3, a2.ip)
    assert lab.unreachable(a2, b3.ip)


def test_convergence_when_ports_come_and_go(lab: Lab) -> None:
    h1 = lab.add_host("h1", "lb")
    h2 = lab.add_host("h2", "ovs")
    h3 = lab.add_host("h3", "lb")
    net = lab.cloud.add_network("vxlan", 3001)
    vm1 = lab.add_vm("vm1", h1, net, "192.168.30.1")
    vm2 = lab.add_vm("vm2", h2, net, "192.168.30.2")
    vm3 = lab.add_vm("vm3", h3, net, "192.168.30.3")
    lab.converge()
    assert lab.ping(vm1, vm3.ip) and lab.ping(vm2, vm3.ip)
    assert (vm3.mac, h3.ip) in lab.fdb(h1, "vxlan-3001")

    # The last port on h3 goes: h3 drops bridge + VXLAN, the others their entries for h3.
    lab.remove_vm(vm3)
    lab.converge()
    for h in (h1, h2):
        assert not {e for e in lab.fdb(h, "vxlan-3001") if e[1] == h3.ip}
    assert not {bridge_name(net), "vxlan-3001"} & lab.links(h3)
    assert lab.ping(vm1, vm2.ip)

    # The last port on the OVS host goes: its tag, VXLAN port and device go too.
    lab.remove_vm(vm2)
    lab.converge()
    assert h2.ovs is not None
    assert "vxlan-3001" not in h2.ovs.vsctl("list-ports", "br-int").split()
    assert "vxlan-3001" not in lab.links(h2)
    assert "mod_vlan_vid" not in h2.ovs.ofctl("dump-flows", "br-int")
    assert lab.fdb(h1, "vxlan-3001") == set()

    # A new port on a host that had none: reachable after one pass, no restart.
    vm4 = lab.add_vm("vm4", h3, net, "192.168.30.4")
    lab.converge()
    assert lab.ping(vm1, vm4.ip) and lab.ping(vm4, vm1.ip)
    assert_idle(lab)


def test_restart_keeps_traffic_and_converges_missed_changes(lab: Lab) -> None:
    h1 = lab.add_host("h1", "lb")
    h2 = lab.add_host("h2", "ovs")
    net = lab.cloud.add_network("vxlan", 4001)
    other = lab.cloud.add_network("local")
    vm1 = lab.add_vm("vm1", h1, net, "192.168.40.1")
    vm2 = lab.add_vm("vm2", h2, net, "192.168.40.2")
    lab.add_vm("vmx", h2, other, "10.10.10.1")  # makes tag 2 exist on h2 as well
    lab.converge()
    assert lab.ping(vm1, vm2.ip)
    assert h2.ovs is not None
    tags_before = {vm.tap: h2.ovs.vsctl("get", "Port", vm.tap, "tag").strip()
                   for vm in lab.vms.values() if vm.host is h2}

    ping = ContinuousPing(vm1, vm2.ip, interval=0.05)
    started = time.monotonic()
    try:
        time.sleep(1.0)
        # "Agents restart": fresh backends with nothing but what they observe.
        res = lab.converge()
        assert all(not r.plan.ops for r in res.values()), {
            h: r.plan.describe() for h, r in res.items()}
        # A change made "while the agent was down" converges on the next pass...
        vm3 = lab.add_vm("vm3", h1, net, "192.168.40.3")
        res = lab.converge()
        assert res["h1"].up == {vm1.port_id, vm3.port_id}
        assert lab.ping(vm3, vm2.ip)
        time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
    finally:
        sent, received = ping.stop()
    assert sent >= 40 and sent - received <= 1, (sent, received)
    # Local tags were read back from OVSDB, not re-allocated.
    assert tags_before == {tap: h2.ovs.vsctl("get", "Port", tap, "tag").strip()
                           for tap in tags_before}
    assert_idle(lab)


def test_event_passes_from_a_baseline_plan_what_a_full_observe_would(lab: Lab) -> None:
    h1 = lab.add_host("h1", "lb")
    h2 = lab.add_host("h2", "lb")
    net = lab.cloud.add_network("vxlan", 5001)
    vm1 = lab.add_vm("vm1", h1, net, "192.168.50.1")
    vm2 = lab.add_vm("vm2", h1, net, "192.168.50.2")
    lab.add_vm("vm3", h2, net, "192.168.50.3")
    backend = h1.backend()
    res = reconcile(backend, lab.cloud.desired("h1"))
    assert res.full and not res.apply.errors
    # While "the agent runs": a VM on a new network here (bridge and VXLAN device
    # created by the next pass), a remote VM (FDB), and a local VM unplugged
    # (the device monitor names its tap).
    other = lab.cloud.add_network("vxlan", 5002)
    vm4 = lab.add_vm("vm4", h1, other, "192.168.51.4")
    vm5 = lab.add_vm("vm5", h2, net, "192.168.50.5")
    lab.add_vm("vm6", h2, other, "192.168.51.6")
    lab.remove_vm(vm2)
    for _ in range(2):  # the second pass starts from a baseline with devices the first made
        desired = lab.cloud.desired("h1")
        since = backend.observe_since(res.baseline, desired, {vm2.tap})
        assert backend.plan(desired, since) == backend.plan(desired, backend.observe())
        res = reconcile(backend, desired, res.baseline, {vm2.tap})
        assert not res.full and not res.apply.errors
    assert not res.plan.ops
    lab.converge([h2])
    assert res.up == {vm1.port_id, vm4.port_id}
    assert lab.ping(vm1, vm5.ip) and lab.ping(vm4, lab.vms["vm6"].ip)
    assert_idle(lab)


def test_a_failing_operation_is_told_apart_and_the_others_still_happen(lab: Lab) -> None:
    lb = lab.add_host("h1", "lb")
    ov = lab.add_host("h2", "ovs")
    assert ov.ovs is not None
    ov.ovs.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev")
    for i in range(3):
        ov.ovs.vsctl("add-port", "br-int", f"tapok{i}", "--",
                     "set", "Interface", f"tapok{i}", "type=internal")
    bad_kernel = AttachPort("eth1", "brqmissing")
    bad_ovsdb = EnsureTag("tapmissing", 7, "net")
    res = lb.backend().apply([EnsureBridge("brqa"), bad_kernel, AttachPort("eth1", "brqa"),
                              AddVxlan("vxlan-9", 9, lb.ip, 4789, 1450), SetLinkUp("vxlan-9")])
    assert [op for op, _ in res.errors] == [bad_kernel] and res.applied == 4
    links = lb.backend().observe().links
    assert links["eth1"].master == "brqa" and links["vxlan-9"].up
    ops: list[Op] = [EnsureTag(f"tapok{i}", 5, "net") for i in range(2)]
    ops += [bad_ovsdb, EnsureTag("tapok2", 5, "net")]
    res = ov.backend().apply(ops)
    assert [op for op, _ in res.errors] == [bad_ovsdb] and res.applied == 3
    assert {ov.ovs.vsctl("get", "Port", f"tapok{i}", "tag").strip() for i in range(3)} == {"5"}

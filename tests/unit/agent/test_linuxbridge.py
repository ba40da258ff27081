"""Linux bridge planning against an in-memory kernel: behaviour and convergence."""

from __future__ import annotations

from netplex.agent.linuxbridge import BRIDGE_MAX_PORTS, LinuxBridgeConfig, port_status_linuxbridge
from netplex.agent.model import (
    FLOOD_MAC,
    FdbEntry,
    HostDesired,
    NetworkSpec,
    PortSpec,
    RemoteEndpoint,
    bridge_name,
)
from netplex.agent.ops import AttachPort, DeleteBridge, DeleteLink, DelFdb, DetachPort

from .fakes import FLAT, NA, NB, NF, NV, VLAN, VXA, VXB, FakeLinuxBridgeHost

CFG = LinuxBridgeConfig(local_ip="10.99.0.1", physical_interface_mappings={"physnet1": "eth1"})
P1 = PortSpec("p1000000000000", NA, "fa:16:3e:00:00:01", ("10.0.0.1",))
P2 = PortSpec("p2000000000000", NA, "fa:16:3e:00:00:02", ("10.0.0.2",))
PB = PortSpec("pb000000000000", NB, "fa:16:3e:00:00:0b", ("10.0.0.1",))
R2 = RemoteEndpoint(NA, "10.99.0.2", frozenset({("fa:16:3e:00:02:01", "10.0.0.21")}))
R3 = RemoteEndpoint(NA, "10.99.0.3", frozenset({("fa:16:3e:00:03:01", "10.0.0.31"),
                                                ("fa:16:3e:00:03:02", "10.0.0.32")}))


def host_with_taps(*ports: PortSpec) -> FakeLinuxBridgeHost:
    h = FakeLinuxBridgeHost(CFG)
    h.kernel.add_link("eth1")
    for p in ports:
        h.kernel.add_link(p.device, up=False)
    return h


def desired(*ports: PortSpec, remotes: tuple[RemoteEndpoint, ...] = (),
            nets: tuple[NetworkSpec, ...] = (VXA, VXB, FLAT, VLAN)) -> HostDesired:
    return HostDesired("h1", networks=nets, ports=ports, remotes=remotes)


def test_vxlan_network_built_and_converges() -> None:
    h = host_with_taps(P1, P2)
    d = desired(P1, P2, remotes=(R2, R3))
    plan = h.converge(d)
    assert plan.problems == {}
    br = bridge_name(NA)
    assert h.connected(P1.device, P2.device)
    assert h.connected(P1.device, "vxlan-1001")
    assert h.kernel.links["vxlan-1001"].mtu == 1450
    assert h.kernel.fdb["vxlan-1001"] == {
        FdbEntry(FLOOD_MAC, "10.99.0.2"), FdbEntry("fa:16:3e:00:02:01", "10.99.0.2"),
        FdbEntry(FLOOD_MAC, "10.99.0.3"), FdbEntry("fa:16:3e:00:03:01", "10.99.0.3"),
        FdbEntry("fa:16:3e:00:03:02", "10.99.0.3")}
    assert h.kernel.bridge_of("eth1") is None
    assert br in h.kernel.links
    # Idempotence: a second pass on a correct host does nothing.
    assert h.plan(d).ops == ()
    st = port_status_linuxbridge(d, h.kernel.observe(), CFG)
    assert all(s.up for s in st.values())


def test_ports_not_plugged_yet_are_down_and_cost_nothing() -> None:
    h = host_with_taps()
    d = desired(P1)
    h.converge(d)
    st = port_status_linuxbridge(d, h.kernel.observe(), CFG)
    assert not st[P1.port_id].up and "not present" in st[P1.port_id].reason
    h.kernel.add_link(P1.device, up=False)  # compute side plugs later
    plan = h.converge(d)
    assert [type(op).__name__ for op in plan.ops] == ["AttachPort", "SetLinkUp"]
    assert port_status_linuxbridge(d, h.kernel.observe(), CFG)[P1.port_id].up


def test_remote_port_leaves_only_its_fdb_entries_go() -> None:
    h = host_with_taps(P1)
    h.converge(desired(P1, remotes=(R2, R3)))
    fewer = RemoteEndpoint(NA, "10.99.0.3", frozenset({("fa:16:3e:00:03:01", "10.0.0.31")}))
    plan = h.converge(desired(P1, remotes=(R2, fewer)))
    assert plan.ops == (DelFdb("vxlan-1001", "fa:16:3e:00:03:02", "10.99.0.3"),)
    plan = h.converge(desired(P1, remotes=(R2,)))
    assert set(plan.ops) == {DelFdb("vxlan-1001", FLOOD_MAC, "10.99.0.3"),
                             DelFdb("vxlan-1001", "fa:16:3e:00:03:01", "10.99.0.3")}


def test_last_port_leaving_removes_bridge_and_vxlan_but_not_the_tap() -> None:
    h = host_with_taps(P1, P2)
    h.converge(desired(P1, P2, remotes=(R2,)))
    plan = h.converge(desired(P2, remotes=(R2,)))
    assert plan.ops == (DetachPort(P1.device),)
    plan = h.converge(desired())
    assert set(plan.ops) == {DeleteLink("vxlan-1001"), DeleteBridge(bridge_name(NA))}
    assert P1.device in h.kernel.links and h.kernel.bridge_of(P2.device) is None
    assert h.plan(desired()).ops == ()


def test_networks_are_isolated_and_a_moved_tap_is_not_detached() -> None:
    moved = PortSpec(PB.port_id, NA, PB.mac)
    h = host_with_taps(P1, PB)
    h.converge(desired(P1, PB))
    assert not h.connected(P1.device, PB.device)
    assert h.connected(PB.device, "vxlan-1002")
    plan = h.converge(desired(P1, moved))
    assert AttachPort(PB.device, bridge_name(NA)) in plan.ops
    assert not any(isinstance(op, DetachPort) for op in plan.ops)
    assert h.connected(P1.device, PB.device)


def test_flat_enslaves_mapped_interface() -> None:
    pf = PortSpec("pf000000000000", NF, "fa:16:3e:00:0f:01")
    h = host_with_taps(pf)
    h.converge(desired(pf))
    assert h.connected(pf.device, "eth1")
    assert h.plan(desired(pf)).ops == ()
    h.converge(desired())
    assert h.kernel.bridge_of("eth1") is None and "eth1" in h.kernel.links


def test_flat_on_mapped_bridge_never_deletes_it() -> None:
    cfg = LinuxBridgeConfig(bridge_mappings={"physnet1": "br-ex"})
    pf = PortSpec("pf000000000000", NF, "fa:16:3e:00:0f:01")
    h = FakeLinuxBridgeHost(cfg)
    h.kernel.add_link("br-ex", kind="bridge")
    h.kernel.add_link("uplink")
    h.kernel.apply(AttachPort("uplink", "br-ex"))
    h.kernel.add_link(pf.device)
    h.converge(desired(pf))
    assert h.connected(pf.device, "uplink")
    h.converge(desired())
    assert "br-ex" in h.kernel.links and h.kernel.bridge_of("uplink") == "br-ex"
    assert h.kernel.bridge_of(pf.device) is None


def test_vlan_is_reported_unsupported_not_half_built() -> None:
    pv = PortSpec("pv000000000000", NV, "fa:16:3e:00:0e:01")
    h = host_with_taps(pv)
    plan = h.converge(desired(pv))
    assert plan.ops == () and "802.1q" in plan.problems[NV]
    st = port_status_linuxbridge(desired(pv), h.kernel.observe(), CFG)
    assert not st[pv.port_id].up and "802.1q" in st[pv.port_id].reason


def test_missing_flat_interface_is_a_problem_and_existing_bridge_is_kept() -> None:
    pf = PortSpec("pf000000000000", NF, "fa:16:3e:00:0f:01")
    h = host_with_taps(pf)
    h.converge(desired(pf))
    h.kernel.delete("eth1")
    plan = h.converge(desired(pf))
    assert plan.ops == () and "eth1" in plan.problems[NF]
    assert h.kernel.bridge_of(pf.device) == bridge_name(NF)


def test_admin_down_port_is_released_and_down() -> None:
    h = host_with_taps(P1, P2)
    h.converge(desired(P1, P2))
    down = PortSpec(P2.port_id, NA, P2.mac, admin_state_up=False)
    h.converge(desired(P1, down))
    assert not h.connected(P1.device, P2.device)
    assert not h.kernel.links[P2.device].up
    st = port_status_linuxbridge(desired(P1, down), h.kernel.observe(), CFG)
    assert st[P1.port_id].up and not st[P2.port_id].up
    h.converge(desired(P1, P2))
    assert h.connected(P1.device, P2.device)


def test_no_local_ip_means_no_vxlan() -> None:
    h = FakeLinuxBridgeHost(LinuxBridgeConfig())
    h.kernel.add_link(P1.device)
    plan = h.converge(desired(P1))
    assert plan.ops == () and NA in plan.problems


def test_restart_reads_back_state_and_changes_nothing() -> None:
    """A new planner (fresh agent) over the same kernel: zero operations."""
    h = host_with_taps(P1, P2, PB)
    d = desired(P1, P2, PB, remotes=(R2, R3))
    h.converge(d)
    fresh = FakeLinuxBridgeHost(CFG)
    fresh.kernel = h.kernel
    assert fresh.plan(d).ops == ()


def test_full_bridge_reports_the_rest_down_instead_of_failing_every_pass() -> None:
    """A kernel bridge takes 1,023 ports: with the VXLAN device that leaves 1,022
    taps. Those that do not fit get no operation and a DOWN reason, also when the
    status is judged as converged; they go on once others leave."""
    ports = [PortSpec(f"{i:011d}-q", NA, f"fa:16:3e:00:{i >> 8:02x}:{i & 255:02x}", ())
             for i in range(BRIDGE_MAX_PORTS + 1)]
    h = host_with_taps(*ports)
    d = desired(*ports, nets=(VXA,))
    before = h.kernel.observe()
    plan = h.converge(d)
    devices = {p.device for p in ports}
    attached = {op.dev for op in plan.ops if isinstance(op, AttachPort) and op.dev in devices}
    assert len(attached) == BRIDGE_MAX_PORTS - 1
    left_out = [p for p in ports if p.device not in attached]
    assert [p.port_id for p in left_out] == [ports[-2].port_id, ports[-1].port_id]
    for st in (port_status_linuxbridge(d, before, CFG, converged=True),
               port_status_linuxbridge(d, h.kernel.observe(), CFG)):
        assert sum(s.up for s in st.values()) == BRIDGE_MAX_PORTS - 1
        assert not st[ports[-1].port_id].up and "is full" in st[ports[-1].port_id].reason
    # Converged: the next pass plans nothing (no doomed attach retried).
    assert h.plan(d).ops == ()
    # One port leaves: the first waiting one takes its place.
    d2 = desired(*ports[1:], nets=(VXA,))
    h.converge(d2)
    st = port_status_linuxbridge(d2, h.kernel.observe(), CFG)
    assert st[ports[-2].port_id].up and not st[ports[-1].port_id].up

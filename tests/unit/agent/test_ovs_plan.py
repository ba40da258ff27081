"""Open vSwitch planning against an in-memory OVS + kernel: tags, flows, convergence."""

from __future__ import annotations

from netplex.agent.model import (
    FLOOD_MAC,
    FdbEntry,
    HostDesired,
    NetworkSpec,
    PortSpec,
    RemoteEndpoint,
)
from netplex.agent.ops import (
    DeleteLink,
    DelFlows,
    DelOvsPort,
    EnsureOvsBridge,
    EnsureTag,
    Flow,
)
from netplex.agent.ovs_plan import (
    DEAD_VLAN,
    OvsConfig,
    allocate_tags,
    port_status_openvswitch,
)

from .fakes import FLAT, NA, NB, NF, NV, VLAN, VXA, VXB, FakeOvsHost

CFG = OvsConfig(local_ip="10.99.0.1", bridge_mappings={"physnet1": "br-phys1"})
P1 = PortSpec("p1000000000000", NA, "fa:16:3e:00:00:01")
P2 = PortSpec("p2000000000000", NA, "fa:16:3e:00:00:02")
PB = PortSpec("pb000000000000", NB, "fa:16:3e:00:00:0b")
PF = PortSpec("pf000000000000", NF, "fa:16:3e:00:00:0f")
PV = PortSpec("pv000000000000", NV, "fa:16:3e:00:00:0e")
R2 = RemoteEndpoint(NA, "10.99.0.2", frozenset({("fa:16:3e:00:02:01", "10.0.0.21")}))


def desired(*ports: PortSpec, remotes: tuple[RemoteEndpoint, ...] = ()) -> HostDesired:
    return HostDesired("h1", networks=(VXA, VXB, FLAT, VLAN), ports=ports, remotes=remotes)


def host(*ports: PortSpec, phys: bool = True) -> FakeOvsHost:
    h = FakeOvsHost(CFG)
    if phys:
        h.add_bridge("br-phys1", datapath_type="netdev")
    for p in ports:
        h.plug("br-int", p.device, iface_id=p.port_id)
    return h


def test_fresh_host_builds_secure_netdev_br_int_and_converges() -> None:
    h = host(P1, P2, PB)
    d = desired(P1, P2, PB, remotes=(R2,))
    plan = h.converge(d)
    assert EnsureOvsBridge("br-int", "netdev", "secure") in plan.ops
    assert h.same_vlan(P1.device, P2.device)
    assert h.same_vlan(P1.device, "vxlan-1001")
    assert not h.same_vlan(P1.device, PB.device)
    assert h.ports[P1.device].net_id == NA
    assert h.kernel.fdb["vxlan-1001"] == {FdbEntry(FLOOD_MAC, "10.99.0.2"),
                                          FdbEntry("fa:16:3e:00:02:01", "10.99.0.2")}
    assert "priority=0 actions=NORMAL" in h.flow_specs("br-int")
    assert "priority=2,in_port=int-br-phys1 actions=drop" in h.flow_specs("br-int")
    assert "priority=2,in_port=phy-br-phys1 actions=drop" in h.flow_specs("br-phys1")
    assert h.plan(d).ops == ()
    assert all(s.up for s in port_status_openvswitch(d, h.observe(), CFG).values())


def test_tags_survive_restart_and_are_not_renumbered() -> None:
    """Tags are read back from OVSDB: a fresh planner keeps 7 and 5, changes nothing."""
    h = host(P1, PB)
    h.apply([EnsureOvsBridge("br-int", "netdev", "secure")])
    d = desired(P1, PB)
    h.converge(d)
    # Simulate history: somebody had given these networks other tags.
    retag = [EnsureTag(P1.device, 7, NA), EnsureTag("vxlan-1001", 7, NA),
             EnsureTag(PB.device, 5, NB), EnsureTag("vxlan-1002", 5, NB)]
    h.apply(retag)
    assert h.plan(d).ops == ()
    # A new network gets the lowest free tag, not one of the kept ones.
    h.plug("br-int", P2.device, iface_id=P2.port_id)
    pf = PF
    h.plug("br-int", pf.device, iface_id=pf.port_id)
    h.converge(desired(P1, P2, PB, pf))
    assert h.ports[P2.device].tag == 7
    assert h.ports[pf.device].tag == 1


def test_unknown_port_is_dead_until_bound_here() -> None:
    """Dead: tag 4095 and protected (dead ports cannot reach each other), no flow;
    binding it is one OVSDB change and no OpenFlow change."""
    h = host(P1, P2)
    h.converge(desired(P1))
    dead = h.ports[P2.device]
    assert dead.tag == DEAD_VLAN and dead.protected and dead.net_id is None
    assert not any("in_port=" in f and "drop" in f and "int-" not in f for f in h.flow_specs("br-int"))
    plan = h.converge(desired(P1, P2))
    assert plan.ops == (EnsureTag(P2.device, h.ports[P1.device].tag or 0, NA),)
    assert h.same_vlan(P1.device, P2.device) and not h.ports[P2.device].protected


def test_drop_flows_of_dead_ports_from_older_agents_are_removed() -> None:
    """Agents before the protected flag dropped a dead port's traffic by flow."""
    h = host(P1, P2)
    h.converge(desired(P1))
    old = Flow("br-int", 10, f"in_port={h.ports[P2.device].ofport}", "drop")
    h.flows["br-int"][old.cookie] = old
    plan = h.converge(desired(P1))
    assert DelFlows("br-int", (old.cookie,)) in plan.ops
    assert old.cookie not in h.flows["br-int"]


def test_admin_down_port_is_dead_and_reported_down() -> None:
    h = host(P1, P2)
    down = PortSpec(P2.port_id, NA, P2.mac, admin_state_up=False)
    d = desired(P1, down)
    h.converge(d)
    assert h.ports[P2.device].tag == DEAD_VLAN and h.ports[P2.device].net_id is None
    st = port_status_openvswitch(d, h.observe(), CFG)
    assert st[P1.port_id].up and not st[P2.port_id].up


def test_last_port_leaving_frees_tag_vxlan_and_flows() -> None:
    h = host(P1, PF)
    h.converge(desired(P1, PF, remotes=(R2,)))
    flat_flows = {s for s in h.flow_specs("br-phys1") if "strip_vlan" in s}
    assert flat_flows
    h.unplug(P1.device)
    h.unplug(PF.device)
    plan = h.converge(desired())
    assert DelOvsPort("br-int", "vxlan-1001") in plan.ops
    assert DeleteLink("vxlan-1001") in plan.ops
    assert "vxlan-1001" not in h.kernel.links
    assert not {s for s in h.flow_specs("br-phys1") if "strip_vlan" in s}
    assert not {s for s in h.flow_specs("br-int") if "mod_vlan_vid" in s}
    # Infrastructure flows stay.
    assert "priority=0 actions=NORMAL" in h.flow_specs("br-int")
    assert h.plan(desired()).ops == ()


def test_flat_and_vlan_translation_flows() -> None:
    h = host(PF, PV)
    h.converge(desired(PF, PV))
    tf, tv = h.ports[PF.device].tag, h.ports[PV.device].tag
    assert tf != tv
    assert f"priority=4,in_port=phy-br-phys1,dl_vlan={tf} actions=strip_vlan,NORMAL" in \
        h.flow_specs("br-phys1")
    assert f"priority=4,in_port=phy-br-phys1,dl_vlan={tv} actions=mod_vlan_vid:100,NORMAL" in \
        h.flow_specs("br-phys1")
    assert (f"priority=3,in_port=int-br-phys1,vlan_tci=0x0000/0x1fff "
            f"actions=mod_vlan_vid:{tf},NORMAL") in h.flow_specs("br-int")
    assert f"priority=3,in_port=int-br-phys1,dl_vlan=100 actions=mod_vlan_vid:{tv},NORMAL" in \
        h.flow_specs("br-int")
    assert h.ports["int-br-phys1"].peer == "phy-br-phys1"


def test_missing_physical_bridge_is_a_problem() -> None:
    h = host(PF, phys=False)
    plan = h.converge(desired(PF))
    assert "br-phys1" in plan.problems[NF]
    assert h.ports[PF.device].tag == DEAD_VLAN
    assert not port_status_openvswitch(desired(PF), h.observe(), CFG)[PF.port_id].up


def test_recreated_vxlan_device_is_readded_to_ovs() -> None:
    h = host(P1)
    d = desired(P1, remotes=(R2,))
    h.converge(d)
    h.kernel.delete("vxlan-1001")  # somebody removed it
    plan = h.converge(d)
    names = [type(op).__name__ for op in plan.ops]
    assert names.index("DelOvsPort") < names.index("AddVxlan") < names.index("AddOvsPort")
    assert h.kernel.fdb["vxlan-1001"]
    assert h.plan(d).ops == ()


def test_foreign_flows_are_left_alone() -> None:
    h = host(P1)
    h.converge(desired(P1))
    h.flows["br-int"][0x1234] = "cookie=0x1234,priority=99 actions=drop"  # not ours
    plan = h.plan(desired(P1))
    assert plan.ops == ()  # cookies without our prefix are invisible to the diff


def test_allocate_tags_exhaustion() -> None:
    h = FakeOvsHost(CFG)
    h.add_bridge("br-int", datapath_type="netdev", fail_mode="secure")
    for i in range(1, 4095):
        h.plug("br-int", f"t{i}", iface_id=f"x{i}")
        h.ports[f"t{i}"] = h.ports[f"t{i}"].__class__(
            name=f"t{i}", bridge="br-int", tag=i, net_id=f"net{i:05d}", iface_id=f"x{i}")
    nets = [NetworkSpec(f"net{i:05d}", "local") for i in range(1, 4095)] + [
        NetworkSpec("zzz", "local")]
    tags, exhausted = allocate_tags(nets, h.observe(), "br-int")
    assert exhausted == ["zzz"] and tags["net00001"] == 1 and len(tags) == 4094


def test_a_tag_being_freed_is_not_reused_in_the_same_pass() -> None:
    h = host(P1)
    h.converge(desired(P1))
    old_tag = h.ports[P1.device].tag
    h.unplug(P1.device)
    h.plug("br-int", PB.device, iface_id=PB.port_id)
    plan = h.plan(desired(PB))
    h.apply(plan.ops)
    assert h.ports[PB.device].tag != old_tag  # vxlan-1001 still had it during this pass
    assert "vxlan-1001" not in h.ports

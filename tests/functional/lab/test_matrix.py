"""The ping matrix's verdicts, with a scripted network (pure: no root needed)."""

from __future__ import annotations

from netplex.lab.matrix import Cell, VmInfo, render_summary, run_matrix

A1 = VmInfo("vm-a1", "ns1", "host-lb1", "lb", "net-a", "10.0.0.11", "fa:16:3e:00:00:01")
A2 = VmInfo("vm-a2", "ns2", "host-ovs1", "ovs", "net-a", "10.0.0.12", "fa:16:3e:00:00:02")
B1 = VmInfo("vm-b1", "ns3", "host-lb1", "lb", "net-b", "10.0.0.12", "fa:16:3e:00:00:03")
B2 = VmInfo("vm-b2", "ns4", "host-ovs1", "ovs", "net-b", "10.0.0.22", "fa:16:3e:00:00:04")
VMS = [A1, A2, B1, B2]


def isolated_network(src: VmInfo, ip: str) -> tuple[bool, str | None]:
    """Who answers ``ip`` on ``src``'s network (what a correct data plane does)."""
    owner = next((v for v in VMS if v.network == src.network and v.ip == ip), None)
    return (owner is not None, owner.mac if owner else None)


def leaky_network(src: VmInfo, ip: str) -> tuple[bool, str | None]:
    """A broken data plane: every address answers, by whoever owns it anywhere."""
    owner = next(v for v in VMS if v.ip == ip and v.name != src.name)
    return True, owner.mac


def cell(cells: list[Cell], src: VmInfo, dst: VmInfo) -> Cell:
    return next(c for c in cells if c.src is src and c.dst is dst)


def test_isolated_overlapping_networks_pass() -> None:
    cells = run_matrix(VMS, isolated_network)
    assert cell(cells, A1, A2).result == "ok" and cell(cells, A1, A2).category == "LB-OVS"
    assert cell(cells, A1, B1).result == "other" and cell(cells, A1, B1).answered_by == "vm-a2"
    assert cell(cells, A1, B2).result == "none"
    assert cell(cells, A2, B1).result == "self"  # same address: nothing to test
    assert cell(cells, B1, A1).category == "same host"
    _, ok = render_summary(cells)
    assert ok


def test_a_leak_between_networks_fails() -> None:
    cells = run_matrix(VMS, leaky_network)
    assert cell(cells, A1, B2).result == "ok" and not cell(cells, A1, B2).good
    _, ok = render_summary(cells)
    assert not ok


R1 = VmInfo("vm-r1", "ns5", "host-routed1", "routed", "net-r", "10.50.0.11", "fa:16:3e:00:00:05")
R2 = VmInfo("vm-r2", "ns6", "host-routed2", "routed", "net-r", "10.50.0.12", "fa:16:3e:00:00:06")
HOST_MAC = "00:61:fe:ed:ca:fe"


def routed_network(src: VmInfo, ip: str) -> tuple[bool, str | None]:
    """Routed VMs reach each other through their hosts (the host's MAC answers ARP)."""
    if src.kind == "routed":
        return (ip in (R1.ip, R2.ip), HOST_MAC if ip in (R1.ip, R2.ip) else None)
    return isolated_network(src, ip)


def test_routed_vms_are_judged_by_address_and_isolated_from_l2_networks() -> None:
    cells = run_matrix([*VMS, R1, R2], routed_network)
    assert cell(cells, R1, R2).result == "ok" and cell(cells, R1, R2).category == "routed-routed"
    assert cell(cells, R1, A1).result == "none" and cell(cells, A1, R1).result == "none"
    assert cell(cells, A1, R1).category == "LB-routed"
    _, ok = render_summary(cells)
    assert ok

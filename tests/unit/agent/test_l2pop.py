"""The shared VXLAN device / FDB planning."""

from __future__ import annotations

from netplex.agent.l2pop import desired_fdb, plan_stale_vxlan, plan_vxlan
from netplex.agent.model import (
    FLOOD_MAC,
    FdbEntry,
    LinkState,
    LinuxObserved,
    NetworkSpec,
    RemoteEndpoint,
    VxlanInfo,
)
from netplex.agent.ops import AddFdb, AddVxlan, DeleteLink, DelFdb, SetLinkUp, SetMtu

NET = NetworkSpec("n1", "vxlan", segmentation_id=100, mtu=1450)
R2 = RemoteEndpoint("n1", "10.0.0.2", frozenset({("fa:16:3e:00:00:02", "1.1.1.2")}))
R3 = RemoteEndpoint("n1", "10.0.0.3", frozenset({("fa:16:3e:00:00:03", "1.1.1.3")}))


def vx(local: str = "10.0.0.1", mtu: int = 1450, up: bool = True) -> LinkState:
    return LinkState("vxlan-100", 5, "vxlan", up=up, mtu=mtu,
                     vxlan=VxlanInfo(100, local, 4789, False))


def test_desired_fdb_one_flood_entry_per_host_and_one_per_mac() -> None:
    assert desired_fdb([R2, R3]) == {
        FdbEntry(FLOOD_MAC, "10.0.0.2"), FdbEntry("fa:16:3e:00:00:02", "10.0.0.2"),
        FdbEntry(FLOOD_MAC, "10.0.0.3"), FdbEntry("fa:16:3e:00:00:03", "10.0.0.3"),
    }


def test_desired_fdb_duplicate_mac_is_deterministic() -> None:
    moved = RemoteEndpoint("n1", "10.0.0.9", frozenset({("fa:16:3e:00:00:02", "")}))
    fdb = desired_fdb([moved, R2])
    assert {e for e in fdb if e.mac != FLOOD_MAC} == {FdbEntry("fa:16:3e:00:00:02", "10.0.0.2")}


def test_fresh_device_gets_everything() -> None:
    ops, fresh = plan_vxlan(NET, [R2], LinuxObserved(), "10.0.0.1", 4789)
    assert fresh
    assert ops == [
        AddVxlan("vxlan-100", 100, "10.0.0.1", 4789, 1450),
        SetLinkUp("vxlan-100"),
        AddFdb("vxlan-100", FLOOD_MAC, "10.0.0.2"),
        AddFdb("vxlan-100", "fa:16:3e:00:00:02", "10.0.0.2"),
    ]


def test_only_the_difference() -> None:
    obs = LinuxObserved(links={"vxlan-100": vx(mtu=1400)}, fdb={"vxlan-100": frozenset({
        FdbEntry(FLOOD_MAC, "10.0.0.2"), FdbEntry("fa:16:3e:00:00:02", "10.0.0.2"),
        FdbEntry(FLOOD_MAC, "10.0.0.4"), FdbEntry("fa:16:3e:00:00:04", "10.0.0.4")})})
    ops, fresh = plan_vxlan(NET, [R2, R3], obs, "10.0.0.1", 4789)
    assert not fresh
    assert ops == [
        SetMtu("vxlan-100", 1450),
        AddFdb("vxlan-100", FLOOD_MAC, "10.0.0.3"),
        AddFdb("vxlan-100", "fa:16:3e:00:00:03", "10.0.0.3"),
        DelFdb("vxlan-100", FLOOD_MAC, "10.0.0.4"),
        DelFdb("vxlan-100", "fa:16:3e:00:00:04", "10.0.0.4"),
    ]


def test_wrong_local_ip_recreates_and_refills() -> None:
    obs = LinuxObserved(links={"vxlan-100": vx(local="10.0.0.7")},
                        fdb={"vxlan-100": frozenset({FdbEntry(FLOOD_MAC, "10.0.0.2")})})
    ops, fresh = plan_vxlan(NET, [R2], obs, "10.0.0.1", 4789)
    assert fresh
    assert ops[:2] == [DeleteLink("vxlan-100"), AddVxlan("vxlan-100", 100, "10.0.0.1", 4789, 1450)]
    assert AddFdb("vxlan-100", FLOOD_MAC, "10.0.0.2") in ops


def test_stale_devices() -> None:
    obs = LinuxObserved(links={"vxlan-100": vx(), "vxlan-7": vx(),
                               "eth0": LinkState("eth0", 2, "veth")})
    assert plan_stale_vxlan(obs, {"vxlan-100"}) == [DeleteLink("vxlan-7")]

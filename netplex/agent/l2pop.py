"""VXLAN devices and L2 population, shared by the Linux bridge and Open vSwitch backends.

Both backends terminate VXLAN in a kernel device ``vxlan-<vni>`` bound to
``local_ip`` with learning off. No multicast: the device's FDB holds

* ``00:00:00:00:00:00 dst <remote>`` once per other host with ports on the
  network (the flood list for broadcast, unknown unicast and multicast), and
* ``<mac> dst <remote>`` per remote port, so known unicast goes straight to
  the right host.

Pure functions only; see :mod:`netplex.agent.linuxbridge` and
:mod:`netplex.agent.openvswitch` for how the device is attached.
"""

from __future__ import annotations

from collections.abc import Iterable

from netplex.agent.model import (
    FLOOD_MAC,
    FdbEntry,
    LinuxObserved,
    NetworkSpec,
    RemoteEndpoint,
    vxlan_name,
)
from netplex.agent.ops import (
    AddFdb,
    AddVxlan,
    AttachPort,
    DeleteLink,
    DelFdb,
    Op,
    SetLinkUp,
    SetMtu,
)

__all__ = ["desired_fdb", "plan_stale_vxlan", "plan_vxlan"]


def desired_fdb(remotes: Iterable[RemoteEndpoint]) -> frozenset[FdbEntry]:
    """The FDB entries a VXLAN device must hold for these remote endpoints.

    A unicast MAC has one destination in the kernel (we ``replace`` it), so if
    two remotes claim the same MAC (a port in mid-migration) the lowest tunnel
    IP wins deterministically; otherwise the plan would flap forever.
    """
    entries: set[FdbEntry] = set()
    owner: dict[str, str] = {}
    for r in remotes:
        entries.add(FdbEntry(FLOOD_MAC, r.tunnel_ip))
        for mac in r.macs:
            if mac == FLOOD_MAC:
                continue
            if mac not in owner or r.tunnel_ip < owner[mac]:
                owner[mac] = r.tunnel_ip
    entries.update(FdbEntry(mac, ip) for mac, ip in owner.items())
    return frozenset(entries)


def plan_vxlan(
    net: NetworkSpec,
    remotes: Iterable[RemoteEndpoint],
    observed: LinuxObserved,
    local_ip: str,
    udp_port: int,
    master: str | None = None,
) -> tuple[list[Op], bool]:
    """Operations that make ``vxlan-<vni>`` right for ``net``; and whether it is (re)created.

    :param master: Linux bridge to enslave the device to (Linux bridge backend),
        None when something else attaches it (OVS backend).

    A device with the wrong VNI, local IP, port or learning flag cannot be
    changed in place: it is deleted and created again, and then its FDB starts
    empty, so every wanted entry is added.
    """
    assert net.segmentation_id is not None
    dev = vxlan_name(net.segmentation_id)
    link = observed.links.get(dev)
    ops: list[Op] = []
    want = (net.segmentation_id, local_ip, udp_port, False)
    if link is not None and (link.vxlan is None or (
            link.vxlan.vni, link.vxlan.local, link.vxlan.port, link.vxlan.learning) != want):
        ops.append(DeleteLink(dev))
        link = None
    fresh = link is None
    if link is None:
        ops.append(AddVxlan(dev=dev, vni=net.segmentation_id, local_ip=local_ip,
                            port=udp_port, mtu=net.mtu))
    elif link.mtu != net.mtu:
        ops.append(SetMtu(dev, net.mtu))
    if master is not None and (link is None or link.master != master):
        ops.append(AttachPort(dev, master))
    if link is None or not link.up:
        ops.append(SetLinkUp(dev))
    want_fdb = desired_fdb(remotes)
    have_fdb = frozenset() if fresh else observed.fdb.get(dev, frozenset())
    # Add before delete: a moved MAC is replaced in place, and the flood list
    # never becomes empty while a host is swapped for another.
    ops += [AddFdb(dev, e.mac, e.dst) for e in sorted(want_fdb - have_fdb)]
    ops += [DelFdb(dev, e.mac, e.dst) for e in sorted(have_fdb - want_fdb)]
    return ops, fresh


def plan_stale_vxlan(observed: LinuxObserved, keep: Iterable[str]) -> list[Op]:
    """Delete ``vxlan-*`` devices that no wanted network uses any more."""
    keep = set(keep)
    return [DeleteLink(name) for name in sorted(
        name for name, link in observed.links.items()
        if link.kind == "vxlan" and name.startswith("vxlan-") and name not in keep)]

"""A second, independent reader of a namespace's links and VXLAN FDB: pyroute2 (netlink).

:func:`netplex.linux.ip.observe_linux` reads iproute2's JSON (fast); this one
decodes the netlink messages themselves (slow: ~1.2 ms per link), so the
functional tests can check that both readers give the same snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyroute2 import IPRoute

from netplex.linux.ip import FdbEntry, LinkState, LinuxObserved, VxlanInfo

__all__ = ["observe_netlink"]

_IFF_UP = 0x1


def _link_state(msg: Any, names: Mapping[int, str]) -> LinkState:
    kind = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    vx = None
    if kind == "vxlan":
        data = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
        vx = VxlanInfo(
            vni=int(data.get("IFLA_VXLAN_ID")),
            local=data.get("IFLA_VXLAN_LOCAL"),
            port=int(data.get("IFLA_VXLAN_PORT") or 0),
            learning=bool(data.get("IFLA_VXLAN_LEARNING")),
        )
    master = msg.get("IFLA_MASTER")
    return LinkState(
        name=msg.get("IFLA_IFNAME"),
        index=msg["index"],
        kind=kind,
        master=names.get(master) if master else None,
        up=bool(msg["flags"] & _IFF_UP),
        mtu=int(msg.get("IFLA_MTU") or 0),
        address=(msg.get("IFLA_ADDRESS") or "").lower(),
        vxlan=vx,
    )


def observe_netlink(ipr: IPRoute) -> LinuxObserved:
    """Snapshot via pyroute2 of the namespace ``ipr`` is bound to (slow; see the module doc)."""
    msgs = list(ipr.get_links())
    names = {m["index"]: m.get("IFLA_IFNAME") for m in msgs}
    links = {s.name: s for s in (_link_state(m, names) for m in msgs)}
    vxlan_idx = {s.index: s.name for s in links.values() if s.kind == "vxlan"}
    fdb: dict[str, set[FdbEntry]] = {name: set() for name in vxlan_idx.values()}
    if vxlan_idx:
        for n in ipr.fdb("dump"):
            dev = vxlan_idx.get(n["ifindex"])
            dst = n.get("NDA_DST")
            if dev is None or dst is None:
                continue
            fdb[dev].add(FdbEntry(mac=str(n.get("NDA_LLADDR")).lower(), dst=dst))
    return LinuxObserved(links=links, fdb={k: frozenset(v) for k, v in fdb.items()})

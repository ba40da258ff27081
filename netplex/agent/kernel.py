"""Kernel operations of both backends: how they run, and what they do to a snapshot.

Linux bridge hosts are nothing but kernel operations; Open vSwitch hosts use
the same ones for their VXLAN devices and FDB. :func:`apply_kernel` runs a
sequence of them through :class:`~netplex.linux.ip.IpBatch` (a couple of
iproute2 processes per pass instead of a netlink round trip per operation)
and reports failures per operation, so the next pass retries exactly those.

:func:`advance` and :func:`refresh` let a pass start from what the previous
pass left instead of listing every link again (see
:meth:`netplex.agent.reconcile.Backend.observe_since`): the agent is the only
writer of its bridges, VXLAN devices and FDB, so after an error-free apply
the host is the old snapshot plus the operations; what others change - the
compute side plugging and unplugging taps - is re-read by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from netplex.agent.model import FLOOD_MAC, FdbEntry, HostDesired, LinkState, LinuxObserved, VxlanInfo
from netplex.agent.ops import (
    AddFdb,
    AddVxlan,
    AttachPort,
    DeleteBridge,
    DeleteLink,
    DelFdb,
    DetachPort,
    EnsureBridge,
    Op,
    SetLinkDown,
    SetLinkUp,
    SetMtu,
)
from netplex.agent.reconcile import ApplyResult
from netplex.linux.ip import IpBatch

__all__ = ["KERNEL_OPS", "LinkReader", "advance", "apply_kernel", "is_kernel_op", "queue", "refresh"]

KERNEL_OPS = (EnsureBridge, DeleteBridge, DeleteLink, AddVxlan, SetLinkUp, SetLinkDown, SetMtu,
              AttachPort, DetachPort, AddFdb, DelFdb)

#: Reads links by name: name -> state, None when absent; names it could not ask are left out.
LinkReader = Callable[[Collection[str]], Mapping[str, LinkState | None]]


def is_kernel_op(op: Op) -> bool:
    return isinstance(op, KERNEL_OPS)


def queue(batch: IpBatch, op: Op) -> None:
    """Queue ``op`` on ``batch``; TypeError if it is not a kernel operation, ValueError
    if it carries something that is not a device name, MAC or IP address."""
    match op:
        case EnsureBridge(name):
            batch.add_bridge(name)
        case DeleteBridge(name) | DeleteLink(name):
            batch.delete(name)
        case AddVxlan(dev, vni, local_ip, port, mtu):
            batch.add_vxlan(dev, vni, local_ip, port, mtu)
        case SetLinkUp(name):
            batch.set_up(name)
        case SetLinkDown(name):
            batch.set_down(name)
        case SetMtu(name, mtu):
            batch.set_mtu(name, mtu)
        case AttachPort(dev, bridge):
            batch.set_master(dev, bridge)
        case DetachPort(dev):
            batch.set_nomaster(dev)
        case AddFdb(dev, mac, dst):
            batch.fdb_add(dev, mac, dst)
        case DelFdb(dev, mac, dst):
            batch.fdb_del(dev, mac, dst)
        case _:
            raise TypeError(f"not a kernel operation: {op}")


def apply_kernel(netns: str | None, ops: Sequence[Op]) -> ApplyResult:
    """Run ``ops`` in order in ``netns``; an operation that fails is recorded, the rest still run."""
    batch = IpBatch(netns)
    failed: dict[int, str] = {}
    queued: list[int] = []
    for i, op in enumerate(ops):
        try:
            queue(batch, op)
            queued.append(i)
        except (TypeError, ValueError) as exc:
            failed[i] = f"{type(exc).__name__}: {exc}"
    for i, err in zip(queued, batch.run(), strict=True):
        if err is not None:
            failed[i] = err
    return ApplyResult(applied=len(ops) - len(failed),
                       errors=tuple((ops[i], failed[i]) for i in sorted(failed)))


# --- the snapshot after our own operations ---------------------------------------


def advance(observed: LinuxObserved, ops: Iterable[Op]) -> LinuxObserved:
    """Pure: ``observed`` as it is once ``ops`` have been applied without error.

    Operations that are not kernel operations are skipped. Devices created
    here have index 0 and no address (nothing is planned from those).
    """
    host = _Host(observed)
    for op in ops:
        host.apply(op)
    return host.freeze()


def refresh(baseline: LinuxObserved, applied: Iterable[Op], desired: HostDesired,
            devices: Collection[str], read: LinkReader) -> LinuxObserved:
    """The host now, from the last pass's snapshot and the operations it then applied.

    Re-read by name: the devices of ``desired``'s ports that the snapshot
    lacks (just plugged, or the compute side is late) and ``devices`` (named
    by the device monitor: appeared, deleted, changed). Everything else is
    only ever changed by the agent itself; drift is the periodic full
    observe's business.
    """
    host = _Host(baseline)
    for op in applied:
        host.apply(op)
    names = {p.device for p in desired.ports if p.device not in host.links} | set(devices)
    for name, state in (read(names) if names else {}).items():
        if state is None:
            host.remove(name)
        else:
            host.links[name] = state
    return host.freeze()


class _Host:
    """A mutable copy of a snapshot that kernel operations are played on."""

    def __init__(self, observed: LinuxObserved) -> None:
        self.links = dict(observed.links)
        self.fdb = {dev: set(entries) for dev, entries in observed.fdb.items()}

    def freeze(self) -> LinuxObserved:
        return LinuxObserved(links=self.links,
                             fdb={dev: frozenset(e) for dev, e in self.fdb.items()})

    def set(self, name: str, **changes: object) -> None:
        if name in self.links:
            self.links[name] = dataclasses.replace(self.links[name], **changes)  # type: ignore[arg-type]

    def remove(self, name: str) -> None:
        """A device goes; if it was a bridge, the kernel releases its ports."""
        gone = self.links.pop(name, None)
        self.fdb.pop(name, None)
        if gone is not None and gone.kind == "bridge":
            for port in [link.name for link in self.links.values() if link.master == name]:
                self.set(port, master=None)

    def apply(self, op: Op) -> None:
        match op:
            case EnsureBridge(name) if name in self.links:
                self.set(name, up=True)
            case EnsureBridge(name):
                self.links[name] = LinkState(name=name, index=0, kind="bridge", up=True)
            case DeleteBridge(name) | DeleteLink(name):
                self.remove(name)
            case AddVxlan(dev, vni, local_ip, port, mtu) if dev not in self.links:
                self.links[dev] = LinkState(name=dev, index=0, kind="vxlan", mtu=mtu,
                                            vxlan=VxlanInfo(vni, local_ip, port, False))
                self.fdb[dev] = set()
            case SetLinkUp(name):
                self.set(name, up=True)
            case SetLinkDown(name):
                self.set(name, up=False)
            case SetMtu(name, mtu):
                self.set(name, mtu=mtu)
            case AttachPort(dev, bridge):
                self.set(dev, master=bridge)
            case DetachPort(dev):
                self.set(dev, master=None)
            case AddFdb(dev, mac, dst):
                entries = self.fdb.setdefault(dev, set())
                if mac != FLOOD_MAC:  # unicast is replaced: one destination per MAC
                    entries -= {e for e in entries if e.mac == mac}
                entries.add(FdbEntry(mac, dst))
            case DelFdb(dev, mac, dst):
                self.fdb.get(dev, set()).discard(FdbEntry(mac, dst))

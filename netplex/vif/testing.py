"""An in-memory host for testing plans: :class:`FakeExecutor`.

It implements the :class:`~netplex.vif.ops.Executor` protocol over a model of
namespaces, devices, addresses, default routes and OVS bridges, with the
kernel behaviour plans rely on: deleting one veth end deletes the other
(wherever it lives), moving a device to another namespace takes it down and
drops its master and addresses, a default route needs its gateway to be on a
connected prefix, interface names are limited to 15 characters, and an OVS
port outlives its device (so unplug must remove both).

Tests apply plans to it and then ask behavioural questions (``link(...)``,
``ovs_interface(...)``, ``links()``) instead of asserting which calls were made.
Third-party plugin authors can use it the same way. It is test support: no
entry point refers to it.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from netplex.vif.errors import ExecutionError, NamespaceNotFound
from netplex.vif.ops import (
    IFNAMSIZ,
    AddAddress,
    DeleteLink,
    EnsureBridge,
    EnsureTap,
    EnsureVeth,
    LinkState,
    MoveLink,
    Op,
    OvsAddPort,
    OvsDelPort,
    OvsInterfaceState,
    SetDefaultRoute,
    SetLink,
)

__all__ = ["FakeExecutor", "FakeLink"]

_ROOT = ""


@dataclass
class FakeLink:
    """One device of the fake host."""

    ifindex: int
    name: str
    kind: str | None
    up: bool = False
    mtu: int = 1500
    master: str | None = None
    address: str = ""
    addresses: list[str] = field(default_factory=list)
    #: ifindex of the veth peer.
    peer: int | None = None


class FakeExecutor:
    """An in-memory host. ``netns`` is its home namespace (None: the "current" one).

    :param namespaces: other namespaces that exist (VM namespaces).
    :param ovs_bridges: OVS bridges that exist (the agent's ``br-int``, say).
    :param fail: called with each operation before it is applied; an exception
        it returns is raised (to test failure paths).
    """

    def __init__(
        self,
        netns: str | None = None,
        *,
        namespaces: Iterable[str] = (),
        ovs_bridges: Iterable[str] = (),
        fail: Callable[[Op], Exception | None] | None = None,
    ) -> None:
        self.netns = netns
        self._ids = itertools.count(2)
        self._ns: dict[str, dict[str, FakeLink]] = {}
        self._routes: dict[str, dict[int, tuple[str, str]]] = {}
        self.ovs: dict[str, dict[str, dict[str, str]]] = {b: {} for b in ovs_bridges}
        #: OVS port -> VLAN tag (the agent's job; set here by ``initial_tag`` or tests).
        self.ovs_tags: dict[str, int] = {}
        self.fail = fail
        #: Every operation applied, with the namespace it was applied in ("" = root).
        self.applied: list[tuple[str, Op]] = []
        self.add_netns(netns or _ROOT)
        for name in namespaces:
            self.add_netns(name)

    # --- setting up the world -----------------------------------------------------

    def add_netns(self, name: str) -> None:
        """Create a namespace (with ``lo`` up) if it does not exist."""
        if name not in self._ns:
            self._ns[name] = {"lo": FakeLink(1, "lo", None, up=True, mtu=65536)}
            self._routes[name] = {}

    def remove_netns(self, name: str) -> None:
        """Delete a namespace and its devices (veth peers elsewhere go too)."""
        for link in list(self._ns.get(name, {}).values()):
            self._delete(name, link)
        self._ns.pop(name, None)
        self._routes.pop(name, None)

    def add_ovs_bridge(self, name: str) -> None:
        self.ovs.setdefault(name, {})

    def add_link(self, name: str, kind: str | None, *, netns: str | None = None) -> None:
        """Put an arbitrary device somewhere (to test name clashes)."""
        self._new(self._key(netns), name, kind)

    # --- questions --------------------------------------------------------------------

    def links(self, *, netns: str | None = None) -> dict[str, LinkState]:
        """Every device of a namespace except ``lo``."""
        key = self._key(netns)
        return {n: self._state(key, lnk) for n, lnk in self._space(key).items() if n != "lo"}

    def ovs_ports(self, bridge: str) -> dict[str, dict[str, str]]:
        """Ports of OVS bridge ``bridge`` and their external_ids."""
        return {p: dict(ids) for p, ids in self.ovs.get(bridge, {}).items()}

    # --- the protocol -----------------------------------------------------------------

    def apply(self, ops: Sequence[Op], *, netns: str | None = None) -> None:
        key = self._key(netns)
        for op in ops:
            if self.fail is not None:
                exc = self.fail(op)
                if exc is not None:
                    raise exc
            if not isinstance(op, OvsAddPort | OvsDelPort) and key not in self._ns:
                raise NamespaceNotFound(key, op=op)
            self._apply(key, op)
            self.applied.append((key, op))

    def link(self, name: str, *, netns: str | None = None) -> LinkState | None:
        key = self._key(netns)
        found = self._space(key).get(name)
        return self._state(key, found) if found else None

    def ovs_interface(self, name: str, *, db: str | None = None) -> OvsInterfaceState | None:
        for bridge, ports in self.ovs.items():
            if name in ports:
                return OvsInterfaceState(name, bridge, dict(ports[name]), self.ovs_tags.get(name))
        return None

    def default_gateways(self, *, netns: str | None = None) -> tuple[str, ...]:
        routes = self._routes.get(self._key(netns), {})
        return tuple(gw for _, (gw, _dev) in sorted(routes.items()))

    # --- internals ----------------------------------------------------------------

    def _key(self, netns: str | None) -> str:
        return netns if netns is not None else (self.netns or _ROOT)

    def _space(self, key: str) -> dict[str, FakeLink]:
        if key not in self._ns:
            raise NamespaceNotFound(key)
        return self._ns[key]

    def _state(self, key: str, lnk: FakeLink) -> LinkState:
        return LinkState(
            name=lnk.name, kind=lnk.kind, up=lnk.up, mtu=lnk.mtu, master=lnk.master,
            address=lnk.address, addresses=tuple(sorted(lnk.addresses)),
        )

    def _find(self, ifindex: int) -> tuple[str, FakeLink] | None:
        for key, space in self._ns.items():
            for lnk in space.values():
                if lnk.ifindex == ifindex:
                    return key, lnk
        return None

    def _new(self, key: str, name: str, kind: str | None, op: Op | None = None) -> FakeLink:
        if len(name) > IFNAMSIZ:
            raise ExecutionError(f"{op}: device name {name!r} is longer than {IFNAMSIZ}", op=op)
        space = self._space(key)
        if name in space:
            raise ExecutionError(f"{op}: File exists ({name} in {key or '(current)'})", op=op)
        idx = next(self._ids)
        mac = f"02:00:00:00:{idx >> 8 & 0xff:02x}:{idx & 0xff:02x}"
        lnk = FakeLink(idx, name, kind, address=mac)
        space[name] = lnk
        return lnk

    def _require(self, key: str, name: str, op: Op) -> FakeLink:
        lnk = self._space(key).get(name)
        if lnk is None:
            where = key or "(current)"
            raise ExecutionError(f"{op}: device {name} does not exist in {where}", op=op)
        return lnk

    def _ensure_kind(self, key: str, name: str, kind: str, op: Op) -> tuple[FakeLink, bool]:
        lnk = self._space(key).get(name)
        if lnk is None:
            return self._new(key, name, kind, op), True
        if lnk.kind != kind:
            raise ExecutionError(f"{op}: {name} exists but is a {lnk.kind} device", op=op)
        return lnk, False

    def _drop_routes(self, key: str, dev: str) -> None:
        routes = self._routes.get(key, {})
        for fam in [f for f, (_gw, d) in routes.items() if d == dev]:
            del routes[fam]

    def _delete(self, key: str, lnk: FakeLink) -> None:
        space = self._ns.get(key, {})
        if space.get(lnk.name) is not lnk:
            return
        del space[lnk.name]
        self._drop_routes(key, lnk.name)
        if lnk.kind == "bridge":
            for other in space.values():
                if other.master == lnk.name:
                    other.master = None
        if lnk.peer is not None:
            found = self._find(lnk.peer)
            if found is not None:
                self._delete(*found)

    def _apply(self, key: str, op: Op) -> None:
        match op:
            case EnsureBridge(name=name):
                lnk, _ = self._ensure_kind(key, name, "bridge", op)
                lnk.up = True
            case EnsureVeth(name=name, peer=peer, mtu=mtu, peer_address=peer_address):
                if len(peer) > IFNAMSIZ:
                    raise ExecutionError(f"{op}: peer name {peer!r} is too long", op=op)
                if name in self._space(key):
                    self._ensure_kind(key, name, "veth", op)
                    return
                if peer in self._space(key):
                    raise ExecutionError(f"{op}: File exists ({peer})", op=op)
                a = self._new(key, name, "veth", op)
                b = self._new(key, peer, "veth", op)
                a.peer, b.peer = b.ifindex, a.ifindex
                if mtu:
                    a.mtu = b.mtu = mtu
                if peer_address:
                    b.address = peer_address
            case EnsureTap(name=name, mtu=mtu):
                lnk, _ = self._ensure_kind(key, name, "tun", op)
                if mtu:
                    lnk.mtu = mtu
            case SetLink(name=name, up=up, mtu=mtu, master=master, address=address):
                lnk = self._require(key, name, op)
                if master is not None:
                    br = self._require(key, master, op)
                    if br.kind != "bridge":
                        raise ExecutionError(f"{op}: {master} is not a bridge", op=op)
                    lnk.master = master
                if mtu:
                    lnk.mtu = mtu
                if address:
                    lnk.address = address
                if up is not None:
                    lnk.up = up
            case DeleteLink(name=name):
                found = self._space(key).get(name)
                if found is not None:
                    self._delete(key, found)
            case MoveLink(name=name, netns=target, new_name=new_name):
                if target not in self._ns:
                    raise NamespaceNotFound(target, op=op)
                moving = self._space(key).get(name)
                if moving is None:
                    if new_name in self._ns[target]:
                        return
                    raise ExecutionError(f"{op}: {name} does not exist", op=op)
                if new_name in self._ns[target]:
                    raise ExecutionError(f"{op}: {new_name} exists in {target}", op=op)
                if len(new_name) > IFNAMSIZ:
                    raise ExecutionError(f"{op}: {new_name!r} is too long", op=op)
                del self._ns[key][name]
                self._drop_routes(key, name)
                moving.name, moving.up, moving.master, moving.addresses = new_name, False, None, []
                self._ns[target][new_name] = moving
            case AddAddress(name=name, address=address, prefixlen=prefixlen):
                lnk = self._require(key, name, op)
                cidr = f"{address}/{prefixlen}"
                if cidr not in lnk.addresses:
                    lnk.addresses.append(cidr)
            case SetDefaultRoute(gateway=gateway, dev=dev):
                lnk = self._require(key, dev, op)
                gw = ipaddress.ip_address(gateway)
                nets = [ipaddress.ip_interface(a).network for a in lnk.addresses]
                if not any(gw.version == n.version and gw in n for n in nets):
                    raise ExecutionError(f"{op}: Network is unreachable", op=op)
                self._routes[key][gw.version] = (gateway, dev)
            case OvsAddPort(bridge=bridge, port=port, external_ids=ids, initial_tag=tag):
                if bridge not in self.ovs:
                    raise ExecutionError(f"{op}: no bridge named {bridge}", op=op)
                for other, ports in self.ovs.items():
                    if port in ports and other != bridge:
                        raise ExecutionError(f"{op}: {port} is attached to bridge {other}", op=op)
                if port not in self.ovs[bridge] and tag is not None:
                    self.ovs_tags[port] = tag
                self.ovs[bridge].setdefault(port, {}).update(dict(ids))
            case OvsDelPort(port=port):
                for ports in self.ovs.values():
                    ports.pop(port, None)
                self.ovs_tags.pop(port, None)
            case _:
                raise ExecutionError(f"unknown operation {op!r}", op=op)

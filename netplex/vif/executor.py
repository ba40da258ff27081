"""The real executor: plans applied through :mod:`netplex.linux` (netlink for devices, ``ovs-vsctl``).

This module turns the VIF library's operations into the privileged verbs of
:mod:`netplex.linux.netlink` and :func:`netplex.linux.ovs.run_vsctl` (which
need ``CAP_NET_ADMIN`` and access to the OVSDB socket) and their failures
into :class:`~netplex.vif.errors.ExecutionError`; everything else in
:mod:`netplex.vif` is pure. It implements the
:class:`~netplex.vif.ops.Executor` protocol and the idempotency rules stated
in :mod:`netplex.vif.ops`.

Namespaces are never created here: a host or VM namespace that does not
exist raises :class:`~netplex.vif.errors.NamespaceNotFound`, because creating
one silently would hide a typo and plug a VM into nowhere.
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from netplex.linux.netlink import NetlinkFailure, NetlinkSession

# netplex.linux (and pyroute2 with it) is imported on first use, not here: code that
# only plans or talks to the server imports the VIF library without it
# (tests/unit/vif/test_package.py holds the library to that).

__all__ = ["IFNAMSIZ", "LinuxExecutor"]

LOG = logging.getLogger(__name__)


def _ovs_quote(value: str) -> str:
    """An OVSDB string atom: double-quoted, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _failed(what: object, ns: str | None, exc: NetlinkFailure, op: Op | None) -> ExecutionError:
    hint = " (needs root or CAP_NET_ADMIN)" if exc.permission else ""
    return ExecutionError(f"{what} (netns {ns or '(current)'}) failed: {exc}{hint}", op=op)


class LinuxExecutor:
    """Applies plans on this machine.

    :param netns: the host's namespace (our lab hosts are namespaces); None is
        the namespace this process runs in.
    :param ovs_db: OVSDB socket (``unix:/path``) for ``ovs-vsctl --db``. When
        None, an operation's own ``db`` (from ``vif_details``) is used, else
        ovs-vsctl's default socket.
    :param vsctl: the ovs-vsctl binary.
    :param ovs_timeout: seconds ovs-vsctl may wait (for the database and for
        ovs-vswitchd to apply the change).
    """

    def __init__(
        self,
        netns: str | None = None,
        *,
        ovs_db: str | None = None,
        vsctl: str = "ovs-vsctl",
        ovs_timeout: int = 10,
    ) -> None:
        self.netns = netns
        self.ovs_db = ovs_db
        self.vsctl_bin = vsctl
        self.ovs_timeout = ovs_timeout

    def __repr__(self) -> str:
        return f"LinuxExecutor(netns={self.netns!r}, ovs_db={self.ovs_db!r})"

    # --- the protocol ---------------------------------------------------------

    def apply(self, ops: Sequence[Op], *, netns: str | None = None) -> None:
        """Apply ``ops`` in order in ``netns`` (default: the host namespace)."""
        from netplex.linux.netlink import NetlinkFailure

        ns = netns if netns is not None else self.netns
        needs_netlink = any(not isinstance(op, OvsAddPort | OvsDelPort) for op in ops)
        if not needs_netlink:
            for op in ops:
                self._apply_ovs(op)
            return
        with self._netlink(ns, ops[0] if ops else None) as nl:
            for op in ops:
                LOG.debug("netns %s: %s", ns or "(current)", op)
                if isinstance(op, OvsAddPort | OvsDelPort):
                    self._apply_ovs(op)
                else:
                    try:
                        self._apply_link(nl, op, ns)
                    except NetlinkFailure as exc:
                        raise _failed(op, ns, exc, op) from exc

    def link(self, name: str, *, netns: str | None = None) -> LinkState | None:
        from netplex.linux.netlink import NetlinkFailure

        ns = netns if netns is not None else self.netns
        with self._netlink(ns, None) as nl:
            try:
                info = nl.link(name)
            except NetlinkFailure as exc:
                raise _failed(f"reading {name}", ns, exc, None) from exc
        if info is None:
            return None
        return LinkState(name=info.name, kind=info.kind, up=info.up, mtu=info.mtu, master=info.master,
                         address=info.address, addresses=info.addresses)

    def ovs_interface(self, name: str, *, db: str | None = None) -> OvsInterfaceState | None:
        out = self._vsctl(
            db, "--format=json", "--columns=name,external_ids", "find", "Interface",
            f"name={_ovs_quote(name)}",
        )
        rows = json.loads(out).get("data") or []
        if not rows:
            return None
        ids = {str(k): str(v) for k, v in rows[0][1][1]}
        bridge = self._vsctl(db, "iface-to-br", name).strip()
        out = self._vsctl(db, "--format=json", "--columns=tag", "find", "Port",
                          f"name={_ovs_quote(name)}")
        port_rows = json.loads(out).get("data") or []
        raw_tag = port_rows[0][0] if port_rows else None
        tag = raw_tag if isinstance(raw_tag, int) else None  # ["set", []] when unset
        return OvsInterfaceState(name=name, bridge=bridge, external_ids=ids, tag=tag)

    def default_gateways(self, *, netns: str | None = None) -> tuple[str, ...]:
        from netplex.linux.netlink import NetlinkFailure

        ns = netns if netns is not None else self.netns
        with self._netlink(ns, None) as nl:
            try:
                return nl.default_gateways()
            except NetlinkFailure as exc:
                raise _failed("reading the default routes", ns, exc, None) from exc

    # --- netlink ----------------------------------------------------------------

    @contextmanager
    def _netlink(self, netns: str | None, op: Op | None) -> Iterator[NetlinkSession]:
        from netplex.linux.netlink import NamespaceMissing, NetlinkUnavailable, session

        try:
            with session(netns) as nl:
                yield nl
        except NamespaceMissing as exc:
            raise NamespaceNotFound(exc.netns, op=op) from exc
        except NetlinkUnavailable as exc:
            raise ExecutionError(
                f"cannot open netlink in netns {netns or '(current)'}: {exc} "
                "(plugging needs root or CAP_NET_ADMIN)",
                op=op,
            ) from exc

    @staticmethod
    def _require(nl: NetlinkSession, name: str, op: Op, ns: str | None) -> int:
        idx = nl.index(name)
        if idx is None:
            raise ExecutionError(
                f"{op}: device {name} does not exist in netns {ns or '(current)'}", op=op
            )
        return idx

    @staticmethod
    def _ensure_kind(
        nl: NetlinkSession, name: str, kind: str, create: dict[str, Any], op: Op
    ) -> tuple[int, bool]:
        """Index of device ``name`` of ``kind``, creating it; (index, created)."""
        if len(name) > IFNAMSIZ:
            raise ExecutionError(f"{op}: device name {name!r} is longer than {IFNAMSIZ}", op=op)
        idx = nl.index(name)
        created = False
        if idx is None:
            created = nl.add(name, **create)
            idx = nl.index(name)
            if idx is None:
                raise ExecutionError(f"{op}: {name} vanished right after creation", op=op)
        actual = nl.kind(idx)
        if actual != kind:
            raise ExecutionError(
                f"{op}: device {name} exists but is a {actual or 'plain'} device, not {kind}; "
                "remove it or pick another port",
                op=op,
            )
        return idx, created

    def _apply_link(self, nl: NetlinkSession, op: Op, ns: str | None) -> None:
        match op:
            case EnsureBridge(name=name):
                idx, _ = self._ensure_kind(nl, name, "bridge", {"kind": "bridge"}, op)
                nl.set(idx, state="up")
            case EnsureVeth(name=name, peer=peer, mtu=mtu, peer_address=peer_address):
                if len(peer) > IFNAMSIZ:
                    raise ExecutionError(f"{op}: peer name {peer!r} is too long", op=op)
                idx, created = self._ensure_kind(
                    nl, name, "veth", {"kind": "veth", "peer": {"ifname": peer}}, op
                )
                if created:
                    peer_idx = self._require(nl, peer, op, ns)
                    attrs: dict[str, Any] = {}
                    if mtu:
                        attrs["mtu"] = mtu
                        nl.set(idx, mtu=mtu)
                    if peer_address:
                        attrs["address"] = peer_address
                    if attrs:
                        nl.set(peer_idx, **attrs)
            case EnsureTap(name=name, mtu=mtu):
                idx, _ = self._ensure_kind(nl, name, "tun", {"kind": "tuntap", "mode": "tap"}, op)
                if mtu:
                    nl.set(idx, mtu=mtu)
            case SetLink(name=name, up=up, mtu=mtu, master=master, address=address):
                idx = self._require(nl, name, op, ns)
                attrs = {}
                if master is not None:
                    attrs["master"] = self._require(nl, master, op, ns)
                if mtu:
                    attrs["mtu"] = mtu
                if address:
                    attrs["address"] = address
                if attrs:
                    nl.set(idx, **attrs)
                if up is not None:
                    nl.set(idx, state="up" if up else "down")
            case DeleteLink(name=name):
                victim = nl.index(name)
                if victim is not None:
                    nl.delete(victim)
            case MoveLink(name=name, netns=target, new_name=new_name):
                self._move(nl, op, name, target, new_name)
            case AddAddress(name=name, address=address, prefixlen=prefixlen):
                nl.add_address(self._require(nl, name, op, ns), address, prefixlen)
            case SetDefaultRoute(gateway=gateway, dev=dev):
                nl.replace_default_route(gateway, self._require(nl, dev, op, ns))
            case _:
                raise ExecutionError(f"unknown operation {op!r}", op=op)

    def _move(self, nl: NetlinkSession, op: Op, name: str, target: str, new_name: str) -> None:
        from netplex.linux.netlink import NetlinkFailure, netns_exists

        if not netns_exists(target):
            raise NamespaceNotFound(target, op=op)
        moving = nl.index(name)
        if moving is None:
            if self.link(new_name, netns=target) is not None:
                return  # moved by an earlier run
            raise ExecutionError(
                f"{op}: neither {name} here nor {new_name} in netns {target} exists",
                op=op,
            )
        try:
            nl.move(moving, target, new_name)
        except NetlinkFailure as exc:
            if exc.code == errno.EEXIST:
                raise ExecutionError(
                    f"{op}: netns {target} already has a device named {new_name}; "
                    "detach the port using it or choose another interface name",
                    op=op,
                ) from exc
            raise

    # --- Open vSwitch -------------------------------------------------------------

    def _vsctl(self, db: str | None, *args: str, op: Op | None = None) -> str:
        from netplex.linux.ovs import VsctlError, run_vsctl

        socket = self.ovs_db or db
        LOG.debug("running %s %s", self.vsctl_bin, " ".join(args))
        try:
            return run_vsctl(*args, db=socket, binary=self.vsctl_bin, timeout=self.ovs_timeout)
        except VsctlError as exc:
            where = f" (op: {op})" if op is not None and exc.returncode is not None else ""
            raise ExecutionError(f"{exc}{where}", op=op) from exc

    def _apply_ovs(self, op: Op) -> None:
        match op:
            case OvsAddPort(bridge=bridge, port=port, external_ids=ids, initial_tag=tag, db=db,
                            initial_protected=protected):
                LOG.debug("%s", op)
                sets = [f"external_ids:{k}={_ovs_quote(v)}" for k, v in ids]
                # With --may-exist, add-port's column arguments only apply to a new port.
                args = ["--may-exist", "add-port", bridge, port]
                if tag is not None:
                    args.append(f"tag={tag}")
                if protected:
                    args.append("protected=true")
                if sets:
                    args += ["--", "set", "Interface", port, *sets]
                try:
                    self._vsctl(db, *args, op=op)
                except ExecutionError as exc:
                    if "no bridge named" not in str(exc):
                        raise
                    raise ExecutionError(
                        f"{exc}; the OVS agent creates bridge {bridge} on this host: "
                        "is it running, and does vif_details['bridge_name'] match it?",
                        op=op,
                    ) from exc
            case OvsDelPort(port=port, db=db):
                LOG.debug("%s", op)
                self._vsctl(db, "--if-exists", "del-port", port, op=op)
            case _:
                raise ExecutionError(f"not an OVS operation: {op!r}", op=op)

"""The real executor: netlink (pyroute2) for devices, ``ovs-vsctl`` for Open vSwitch.

This module is the VIF library's only privileged code (it needs
``CAP_NET_ADMIN`` and access to the OVSDB socket); everything else in
:mod:`netplex.vif` is pure. It implements the
:class:`~netplex.vif.ops.Executor` protocol and the idempotency rules stated
in :mod:`netplex.vif.ops`.

Namespaces are never created here: a host or VM namespace that does not
exist raises :class:`~netplex.vif.errors.NamespaceNotFound`, because creating
one silently would hide a typo and plug a VM into nowhere.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netns import NETNS_RUN_DIR

from netplex.vif.errors import ExecutionError, NamespaceNotFound
from netplex.vif.ops import (
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

__all__ = ["LinuxExecutor"]

LOG = logging.getLogger(__name__)

IFNAMSIZ = 15  # usable characters of a Linux interface name


def _netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_RUN_DIR, name))


def _ovs_quote(value: str) -> str:
    """An OVSDB string atom: double-quoted, with backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        ns = netns if netns is not None else self.netns
        needs_netlink = any(not isinstance(op, OvsAddPort | OvsDelPort) for op in ops)
        if not needs_netlink:
            for op in ops:
                self._apply_ovs(op)
            return
        with self._iproute(ns, ops[0] if ops else None) as ipr:
            for op in ops:
                LOG.debug("netns %s: %s", ns or "(current)", op)
                if isinstance(op, OvsAddPort | OvsDelPort):
                    self._apply_ovs(op)
                else:
                    try:
                        self._apply_link(ipr, op, ns)
                    except NetlinkError as exc:
                        hint = " (needs root or CAP_NET_ADMIN)" if exc.code == errno.EPERM else ""
                        raise ExecutionError(
                            f"{op} (netns {ns or '(current)'}) failed: "
                            f"{os.strerror(exc.code)} (errno {exc.code}){hint}",
                            op=op,
                        ) from exc

    def link(self, name: str, *, netns: str | None = None) -> LinkState | None:
        ns = netns if netns is not None else self.netns
        with self._iproute(ns, None) as ipr:
            idx = self._index(ipr, name)
            if idx is None:
                return None
            msg = ipr.link("get", index=idx)[0]
            master_idx = msg.get("IFLA_MASTER")
            master = None
            if master_idx:
                master = ipr.link("get", index=master_idx)[0].get("IFLA_IFNAME")
            addrs = []
            for a in ipr.addr("dump", index=idx):
                addr = a.get("IFA_ADDRESS")
                if addr and not ipaddress.ip_address(addr).is_link_local:
                    addrs.append(f"{addr}/{a['prefixlen']}")
            return LinkState(
                name=name,
                kind=msg.get(("linkinfo", "kind")),
                up=bool(msg["flags"] & 1),
                mtu=msg.get("IFLA_MTU"),
                master=master,
                address=msg.get("IFLA_ADDRESS"),
                addresses=tuple(sorted(addrs)),
            )

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
        ns = netns if netns is not None else self.netns
        out: list[str] = []
        with self._iproute(ns, None) as ipr:
            for family in (2, 10):
                for r in ipr.route("dump", family=family):
                    if r["dst_len"] == 0 and r.get("RTA_GATEWAY") and r["table"] == 254:
                        out.append(r.get("RTA_GATEWAY"))
        return tuple(out)

    # --- netlink ----------------------------------------------------------------

    @contextmanager
    def _iproute(self, netns: str | None, op: Op | None) -> Iterator[IPRoute]:
        if netns is not None and not _netns_exists(netns):
            raise NamespaceNotFound(netns, op=op)
        try:
            ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
        except FileNotFoundError as exc:  # removed between the check and the open
            raise NamespaceNotFound(str(netns), op=op) from exc
        except OSError as exc:
            raise ExecutionError(
                f"cannot open netlink in netns {netns or '(current)'}: {exc} "
                "(plugging needs root or CAP_NET_ADMIN)",
                op=op,
            ) from exc
        try:
            yield ipr
        finally:
            ipr.close()

    @staticmethod
    def _index(ipr: IPRoute, name: str) -> int | None:
        found = ipr.link_lookup(ifname=name)
        return int(found[0]) if found else None

    def _kind(self, ipr: IPRoute, idx: int) -> str | None:
        kind = ipr.link("get", index=idx)[0].get(("linkinfo", "kind"))
        return str(kind) if kind else None

    def _require(self, ipr: IPRoute, name: str, op: Op, ns: str | None) -> int:
        idx = self._index(ipr, name)
        if idx is None:
            raise ExecutionError(
                f"{op}: device {name} does not exist in netns {ns or '(current)'}", op=op
            )
        return idx

    def _ensure_kind(
        self, ipr: IPRoute, name: str, kind: str, create: dict[str, Any], op: Op
    ) -> tuple[int, bool]:
        """Index of device ``name`` of ``kind``, creating it; (index, created)."""
        if len(name) > IFNAMSIZ:
            raise ExecutionError(f"{op}: device name {name!r} is longer than {IFNAMSIZ}", op=op)
        idx = self._index(ipr, name)
        created = False
        if idx is None:
            try:
                ipr.link("add", ifname=name, **create)
                created = True
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            idx = self._index(ipr, name)
            if idx is None:
                raise ExecutionError(f"{op}: {name} vanished right after creation", op=op)
        actual = self._kind(ipr, idx)
        if actual != kind:
            raise ExecutionError(
                f"{op}: device {name} exists but is a {actual or 'plain'} device, not {kind}; "
                "remove it or pick another port",
                op=op,
            )
        return idx, created

    def _apply_link(self, ipr: IPRoute, op: Op, ns: str | None) -> None:
        match op:
            case EnsureBridge(name=name):
                idx, _ = self._ensure_kind(ipr, name, "bridge", {"kind": "bridge"}, op)
                ipr.link("set", index=idx, state="up")
            case EnsureVeth(name=name, peer=peer, mtu=mtu, peer_address=peer_address):
                if len(peer) > IFNAMSIZ:
                    raise ExecutionError(f"{op}: peer name {peer!r} is too long", op=op)
                idx, created = self._ensure_kind(
                    ipr, name, "veth", {"kind": "veth", "peer": {"ifname": peer}}, op
                )
                if created:
                    peer_idx = self._require(ipr, peer, op, ns)
                    attrs: dict[str, Any] = {}
                    if mtu:
                        attrs["mtu"] = mtu
                        ipr.link("set", index=idx, mtu=mtu)
                    if peer_address:
                        attrs["address"] = peer_address
                    if attrs:
                        ipr.link("set", index=peer_idx, **attrs)
            case EnsureTap(name=name, mtu=mtu):
                idx, _ = self._ensure_kind(ipr, name, "tun", {"kind": "tuntap", "mode": "tap"}, op)
                if mtu:
                    ipr.link("set", index=idx, mtu=mtu)
            case SetLink(name=name, up=up, mtu=mtu, master=master, address=address):
                idx = self._require(ipr, name, op, ns)
                attrs = {}
                if master is not None:
                    attrs["master"] = self._require(ipr, master, op, ns)
                if mtu:
                    attrs["mtu"] = mtu
                if address:
                    attrs["address"] = address
                if attrs:
                    ipr.link("set", index=idx, **attrs)
                if up is not None:
                    ipr.link("set", index=idx, state="up" if up else "down")
            case DeleteLink(name=name):
                victim = self._index(ipr, name)
                if victim is None:
                    return
                try:
                    ipr.link("del", index=victim)
                except NetlinkError as exc:
                    if exc.code != errno.ENODEV:  # gone meanwhile (e.g. its veth peer went)
                        raise
            case MoveLink(name=name, netns=target, new_name=new_name):
                if not _netns_exists(target):
                    raise NamespaceNotFound(target, op=op)
                moving = self._index(ipr, name)
                if moving is None:
                    if self.link(new_name, netns=target) is not None:
                        return  # moved by an earlier run
                    raise ExecutionError(
                        f"{op}: neither {name} here nor {new_name} in netns {target} exists",
                        op=op,
                    )
                try:
                    ipr.link("set", index=moving, net_ns_fd=target, ifname=new_name)
                except NetlinkError as exc:
                    if exc.code == errno.EEXIST:
                        raise ExecutionError(
                            f"{op}: netns {target} already has a device named {new_name}; "
                            "detach the port using it or choose another interface name",
                            op=op,
                        ) from exc
                    raise
            case AddAddress(name=name, address=address, prefixlen=prefixlen):
                idx = self._require(ipr, name, op, ns)
                try:
                    ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)
                except NetlinkError as exc:
                    if exc.code != errno.EEXIST:
                        raise
            case SetDefaultRoute(gateway=gateway, dev=dev):
                idx = self._require(ipr, dev, op, ns)
                dst = "0.0.0.0/0" if ipaddress.ip_address(gateway).version == 4 else "::/0"
                ipr.route("replace", dst=dst, gateway=gateway, oif=idx)
            case _:
                raise ExecutionError(f"unknown operation {op!r}", op=op)

    # --- Open vSwitch -------------------------------------------------------------

    def _vsctl(self, db: str | None, *args: str, op: Op | None = None) -> str:
        argv = [self.vsctl_bin]
        socket = self.ovs_db or db
        if socket:
            argv.append(f"--db={socket}")
        argv += [f"--timeout={self.ovs_timeout}", *args]
        LOG.debug("running %s", " ".join(argv))
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=self.ovs_timeout + 5, check=False
            )
        except FileNotFoundError as exc:
            raise ExecutionError(f"{self.vsctl_bin} is not installed", op=op) from exc
        except subprocess.TimeoutExpired as exc:
            raise ExecutionError(
                f"{' '.join(argv)} timed out; is ovsdb-server (and ovs-vswitchd) running "
                f"at {socket or 'the default socket'}?",
                op=op,
            ) from exc
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout).strip()
            where = f" (op: {op})" if op is not None else ""
            raise ExecutionError(f"{' '.join(argv)} failed: {msg}{where}", op=op)
        return proc.stdout

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

"""Netlink (pyroute2) device verbs, one namespace per session: the VIF library's plugging primitives.

The compute side plugs one VM at a time, a handful of operations each, so
pyroute2's per-request cost does not matter here (the agent, which changes
thousands of devices per pass, uses :mod:`netplex.linux.ip`'s iproute2
batches instead). Each verb tolerates what a retried plug meets ("already
there", "already gone"); every other kernel refusal is a
:class:`NetlinkFailure` carrying the errno, for the caller to word.

Namespaces are never created here: one that does not exist is
:class:`NamespaceMissing`.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netns import NETNS_RUN_DIR

__all__ = ["LinkInfo", "NamespaceMissing", "NetlinkFailure", "NetlinkSession",
           "NetlinkUnavailable", "netns_exists", "session"]

_IFF_UP = 0x1


class NamespaceMissing(LookupError):
    """The named network namespace does not exist."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        super().__init__(netns)


class NetlinkUnavailable(OSError):
    """A netlink socket could not be opened in the namespace (permissions, resources)."""


class NetlinkFailure(Exception):
    """The kernel refused a request; ``code`` is the errno."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"{os.strerror(code)} (errno {code})")

    @property
    def permission(self) -> bool:
        return self.code == errno.EPERM


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One device as the VIF library checks it."""

    name: str
    kind: str | None
    up: bool
    mtu: int | None
    master: str | None
    address: str | None
    #: Its addresses as ``addr/prefixlen``, link-local ones left out, sorted.
    addresses: tuple[str, ...]


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_RUN_DIR, name))


@contextmanager
def _failures() -> Iterator[None]:
    try:
        yield
    except NetlinkError as exc:
        raise NetlinkFailure(exc.code) from exc


class NetlinkSession:
    """Device verbs in the namespace its netlink socket is bound to; from :func:`session`."""

    def __init__(self, ipr: IPRoute) -> None:
        self._ipr = ipr

    def index(self, name: str) -> int | None:
        with _failures():
            found = self._ipr.link_lookup(ifname=name)
        return int(found[0]) if found else None

    def kind(self, index: int) -> str | None:
        with _failures():
            kind = self._ipr.link("get", index=index)[0].get(("linkinfo", "kind"))
        return str(kind) if kind else None

    def add(self, name: str, **create: Any) -> bool:
        """Create device ``name`` (pyroute2 ``link add`` attributes); False if it already existed."""
        try:
            self._ipr.link("add", ifname=name, **create)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise NetlinkFailure(exc.code) from exc
            return False
        return True

    def set(self, index: int, **attrs: Any) -> None:
        """``link set`` with pyroute2 attributes (``mtu``, ``address``, ``master`` index, ``state``)."""
        with _failures():
            self._ipr.link("set", index=index, **attrs)

    def delete(self, index: int) -> None:
        """Delete the device; one gone meanwhile (e.g. its veth peer went) is fine."""
        try:
            self._ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise NetlinkFailure(exc.code) from exc

    def move(self, index: int, netns: str, new_name: str) -> None:
        """Move the device into ``netns`` under ``new_name`` (EEXIST: that name is taken there)."""
        with _failures():
            self._ipr.link("set", index=index, net_ns_fd=netns, ifname=new_name)

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        """Add an address; one the device already has is fine."""
        try:
            self._ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise NetlinkFailure(exc.code) from exc

    def replace_default_route(self, gateway: str, index: int) -> None:
        dst = "0.0.0.0/0" if ipaddress.ip_address(gateway).version == 4 else "::/0"
        with _failures():
            self._ipr.route("replace", dst=dst, gateway=gateway, oif=index)

    def link(self, name: str) -> LinkInfo | None:
        """The device called ``name``, or None."""
        idx = self.index(name)
        if idx is None:
            return None
        with _failures():
            msg = self._ipr.link("get", index=idx)[0]
            master_idx = msg.get("IFLA_MASTER")
            master = None
            if master_idx:
                master = self._ipr.link("get", index=master_idx)[0].get("IFLA_IFNAME")
            addrs = []
            for a in self._ipr.addr("dump", index=idx):
                addr = a.get("IFA_ADDRESS")
                if addr and not ipaddress.ip_address(addr).is_link_local:
                    addrs.append(f"{addr}/{a['prefixlen']}")
        return LinkInfo(
            name=name,
            kind=msg.get(("linkinfo", "kind")),
            up=bool(msg["flags"] & _IFF_UP),
            mtu=msg.get("IFLA_MTU"),
            master=master,
            address=msg.get("IFLA_ADDRESS"),
            addresses=tuple(sorted(addrs)),
        )

    def default_gateways(self) -> tuple[str, ...]:
        """Gateways of the main table's default routes, IPv4 then IPv6."""
        out: list[str] = []
        with _failures():
            for family in (2, 10):
                for r in self._ipr.route("dump", family=family):
                    if r["dst_len"] == 0 and r.get("RTA_GATEWAY") and r["table"] == 254:
                        out.append(r.get("RTA_GATEWAY"))
        return tuple(out)


@contextmanager
def session(netns: str | None) -> Iterator[NetlinkSession]:
    """A :class:`NetlinkSession` in ``netns`` (None: this process's namespace), closed after use."""
    if netns is not None and not netns_exists(netns):
        raise NamespaceMissing(netns)
    try:
        ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
    except FileNotFoundError as exc:  # removed between the check and the open
        raise NamespaceMissing(netns or "") from exc
    except OSError as exc:
        raise NetlinkUnavailable(str(exc)) from exc
    try:
        yield NetlinkSession(ipr)
    finally:
        ipr.close()

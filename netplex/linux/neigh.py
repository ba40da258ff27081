"""Static neighbour entries and IPv6 proxy (NDP) entries: observe and batch lines.

A routed host pins each local VM's address to its MAC on the VM's tap
(``nud permanent``: no ARP/NDP round trip before the first packet, and a VM
cannot make the host learn another MAC for its address), and answers
neighbour solicitations on the tap for the addresses the VM may ask for
(``ip -6 neigh add proxy``; IPv4 needs no entries, ``proxy_arp`` answers
for whatever the host routes elsewhere). Changes are lines for
:func:`netplex.linux.routing.run_ip_batch`. Nothing here imports the rest
of Netplex.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from netplex.linux.routing import iproute2_json

__all__ = ["Neighbour", "ProxyEntry", "neigh_line", "proxy_line", "read_neighbours", "read_proxies"]

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,15}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


@dataclass(frozen=True, slots=True, order=True)
class Neighbour:
    """``ip`` is at ``mac`` on ``dev`` (a permanent entry)."""

    dev: str
    ip: str
    mac: str


@dataclass(frozen=True, slots=True, order=True)
class ProxyEntry:
    """The host answers neighbour solicitations for ``ip`` on ``dev``."""

    dev: str
    ip: str


def read_neighbours(netns: str | None, prefix: str) -> frozenset[Neighbour]:
    """Permanent IPv4 and IPv6 entries on devices whose name starts with ``prefix``."""
    return frozenset(
        Neighbour(str(n["dev"]), str(ipaddress.ip_address(n["dst"])), str(n["lladdr"]).lower())
        for n in iproute2_json(netns, ["neigh", "show", "nud", "permanent"])
        if str(n.get("dev", "")).startswith(prefix) and n.get("lladdr") and n.get("dst"))


def read_proxies(netns: str | None, prefix: str) -> frozenset[ProxyEntry]:
    """IPv6 proxy entries on devices whose name starts with ``prefix``."""
    return frozenset(
        ProxyEntry(str(n["dev"]), str(ipaddress.ip_address(n["dst"])))
        for n in iproute2_json(netns, ["-6", "neigh", "show", "proxy"])
        if str(n.get("dev", "")).startswith(prefix) and n.get("dst"))


def _dev(name: str) -> str:
    if _NAME.fullmatch(name) is None:
        raise ValueError(f"not a usable device name: {name!r}")
    return name


def neigh_line(verb: str, entry: Neighbour) -> str:
    """``neigh replace ... nud permanent`` or ``neigh del``."""
    ip = ipaddress.ip_address(entry.ip)
    if verb == "replace":
        if _MAC.fullmatch(entry.mac) is None:
            raise ValueError(f"not a lower-case MAC address: {entry.mac!r}")
        return f"neigh replace {ip} lladdr {entry.mac} dev {_dev(entry.dev)} nud permanent"
    if verb == "del":
        return f"neigh del {ip} dev {_dev(entry.dev)}"
    raise ValueError(verb)


def proxy_line(verb: str, entry: ProxyEntry) -> str:
    """``neigh add|del proxy IP dev DEV``."""
    if verb not in ("add", "del"):
        raise ValueError(verb)
    return f"neigh {verb} proxy {ipaddress.ip_address(entry.ip)} dev {_dev(entry.dev)}"

"""IP address management: subnet validation, allocation pools, address picking.

Pure functions over :mod:`netaddr` values, plus :func:`allocate_ip` which
talks to the database. Addresses are stored in canonical text form
(``str(IPAddress(...))``) so that equality in SQL is equality of addresses.

Allocation picks random free addresses from the pools: random candidates
make concurrent allocators (threads, or several servers on PostgreSQL)
rarely collide, and the ``ipallocations`` primary key catches the rare
collision, which the caller's transaction then retries.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any, cast

import netaddr
from sqlalchemy import Connection, Table, bindparam, select

from netplex.db.models import IPAllocation
from netplex.db.prepared import Prepared
from netplex.errors import (
    GatewayConflictWithAllocationPools,
    InvalidAllocationPool,
    InvalidInput,
    OutOfBoundsAllocationPool,
    OverlappingAllocationPools,
)

IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
#: Owners allowed to take a subnet's gateway address.
ROUTER_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
    "network:router_gateway",
)

Pool = tuple[int, int]  # first, last as integers

_IPS = cast(Table, IPAllocation.__table__)
#: Random candidates tried per allocation before reading the whole subnet.
_CANDIDATES = 8
_TAKEN_AMONG = Prepared(
    select(_IPS.c.ip_address).where(
        _IPS.c.subnet_id == bindparam("subnet_id"),
        _IPS.c.ip_address.in_([bindparam(f"ip{i}") for i in range(_CANDIDATES)]),
    )
)
_ALL_TAKEN = Prepared(select(_IPS.c.ip_address).where(_IPS.c.subnet_id == bindparam("subnet_id")))


def parse_cidr(value: Any, ip_version: int | None = None) -> netaddr.IPNetwork:
    """A canonical network (``10.0.0.0/24``); host bits set are refused like Neutron does."""
    if not isinstance(value, str):
        raise InvalidInput(error_message=f"'{value}' is not a valid IP subnet")
    try:
        net = netaddr.IPNetwork(value.strip())
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise InvalidInput(error_message=f"'{value}' is not a valid IP subnet") from None
    if "/" not in value:
        raise InvalidInput(error_message=f"'{value}' is not a valid IP subnet")
    if net.ip != net.network:
        raise InvalidInput(error_message=f"'{value}' isn't a recognized IP subnet cidr, '{net.cidr}' is recommended")
    if ip_version is not None and net.version != ip_version:
        raise InvalidInput(error_message=f"Cidr {value} does not match the ip_version {ip_version}")
    return net.cidr


def parse_ip(value: Any, what: str = "ip_address") -> netaddr.IPAddress:
    if not isinstance(value, str):
        raise InvalidInput(error_message=f"'{value}' is not a valid IP address")
    try:
        # INET_PTON refuses the odd legacy forms ("10.1") that inet_aton accepts.
        return netaddr.IPAddress(value.strip(), flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise InvalidInput(error_message=f"'{value}' is not a valid IP address") from None


def canonical_ip(value: Any) -> str:
    return str(parse_ip(value))


def default_gateway(cidr: netaddr.IPNetwork) -> str | None:
    """First usable address, as Neutron picks it; none for point-to-point sizes."""
    if cidr.version == 4 and cidr.prefixlen >= 31:
        return None
    if cidr.version == 6 and cidr.prefixlen >= 127:
        return None
    return str(netaddr.IPAddress(cidr.first + 1, cidr.version))


def usable_range(cidr: netaddr.IPNetwork) -> Pool | None:
    """Addresses a pool may use: v4 drops network+broadcast, v6 drops the anycast (first)."""
    first, last = cidr.first, cidr.last
    if cidr.version == 4:
        if cidr.prefixlen <= 30:
            first, last = first + 1, last - 1
    elif cidr.prefixlen <= 126:
        first = first + 1
    return (first, last) if first <= last else None


def check_gateway(cidr: netaddr.IPNetwork, gateway: netaddr.IPAddress) -> None:
    """Neutron accepts a gateway outside the CIDR; inside it must not be network/broadcast."""
    if gateway.version != cidr.version:
        raise InvalidInput(error_message=f"Gateway IP version inconsistent with subnet {cidr}")
    if gateway in cidr and cidr.version == 4 and cidr.prefixlen <= 30:
        if int(gateway) in (cidr.first, cidr.last):
            raise InvalidInput(error_message=f"Gateway is not valid on subnet {cidr}")


def default_pools(cidr: netaddr.IPNetwork, gateway: str | None) -> list[Pool]:
    rng = usable_range(cidr)
    if rng is None:
        return []
    first, last = rng
    if gateway is None:
        return [(first, last)]
    gw = int(netaddr.IPAddress(gateway))
    pools: list[Pool] = []
    if first <= gw - 1:
        pools.append((first, min(last, gw - 1)))
    if gw + 1 <= last:
        pools.append((max(first, gw + 1), last))
    if not (first <= gw <= last):
        return [(first, last)]
    return pools


def parse_pools(raw: Sequence[Any], cidr: netaddr.IPNetwork, gateway: str | None) -> list[Pool]:
    """Validate user-given pools: well-formed, in the CIDR, disjoint, not covering the gateway."""
    pools: list[Pool] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"start", "end"} or len(item) != 2:
            raise InvalidInput(error_message=f"Invalid data format for IP pool: '{item}'")
        start, end = parse_ip(item["start"]), parse_ip(item["end"])
        text = f"{item['start']}-{item['end']}"
        if start.version != cidr.version or end.version != cidr.version or start > end:
            raise InvalidAllocationPool(pool=text)
        rng = usable_range(cidr)
        if rng is None or int(start) < rng[0] or int(end) > rng[1]:
            raise OutOfBoundsAllocationPool(pool=text, subnet_cidr=str(cidr))
        pools.append((int(start), int(end)))
    ordered = sorted(pools)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b[0] <= a[1]:
            raise OverlappingAllocationPools(
                pool_1=format_pool(a, cidr.version),
                pool_2=format_pool(b, cidr.version),
                subnet_cidr=str(cidr),
            )
    if gateway is not None:
        gw = int(netaddr.IPAddress(gateway))
        for p in ordered:
            if p[0] <= gw <= p[1]:
                raise GatewayConflictWithAllocationPools(ip_address=gateway, pool=format_pool(p, cidr.version))
    return ordered


def format_pool(pool: Pool, version: int) -> str:
    return f"{netaddr.IPAddress(pool[0], version)}-{netaddr.IPAddress(pool[1], version)}"


def pools_to_api(pools: Iterable[Pool], version: int) -> list[dict[str, str]]:
    return [{"start": str(netaddr.IPAddress(a, version)), "end": str(netaddr.IPAddress(b, version))} for a, b in pools]


def pools_from_api(raw: Iterable[dict[str, str]]) -> list[Pool]:
    return [(int(netaddr.IPAddress(p["start"])), int(netaddr.IPAddress(p["end"]))) for p in raw]


def check_nameservers(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise InvalidInput(error_message=f"'{raw}' is not a list")
    out: list[str] = []
    for ns in raw:
        ip = canonical_ip(ns)
        if ip in out:
            raise InvalidInput(error_message=f"Duplicate nameserver '{ns}'")
        out.append(ip)
    return out


def check_host_routes(raw: Any, version: int) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise InvalidInput(error_message=f"'{raw}' is not a list")
    out: list[dict[str, str]] = []
    for r in raw:
        if not isinstance(r, dict) or set(r) != {"destination", "nexthop"}:
            raise InvalidInput(error_message=f"Invalid data format for hostroute: '{r}'")
        try:
            dest = netaddr.IPNetwork(str(r["destination"]))
        except (netaddr.AddrFormatError, ValueError):
            raise InvalidInput(error_message=f"'{r['destination']}' is not a valid IP subnet") from None
        hop = parse_ip(r["nexthop"])
        if dest.version != version or hop.version != version:
            raise InvalidInput(error_message=f"Host route {r} does not match the ip_version")
        route = {"destination": str(dest.cidr), "nexthop": str(hop)}
        if route in out:
            raise InvalidInput(error_message=f"Duplicate hostroute '{r}'")
        out.append(route)
    return out


def eui64_address(cidr: str, mac: str) -> str:
    """SLAAC address of ``mac`` in a /64 (modified EUI-64)."""
    net = netaddr.IPNetwork(cidr)
    return str(netaddr.EUI(mac).ipv6(net.network))


def in_pools(ip: int, pools: Sequence[Pool]) -> bool:
    return any(a <= ip <= b for a, b in pools)


def pool_size(pools: Sequence[Pool]) -> int:
    return sum(b - a + 1 for a, b in pools)


def allocate_ip(
    conn: Connection,
    subnet_id: str,
    version: int,
    pools: Sequence[Pool],
    *,
    rng: random.Random | None = None,
) -> str | None:
    """A free address from ``pools`` of ``subnet_id``, or None when they are full.

    The caller inserts the allocation; a concurrent writer that took the
    same address makes that insert fail and the transaction retry.
    """
    size = pool_size(pools)
    if size == 0:
        return None
    r = rng or random
    # Cheap path: a handful of random candidates, one query to see which are taken.
    candidates = []
    for _ in range(min(_CANDIDATES, size)):
        k = r.randrange(size)
        for a, b in pools:
            n = b - a + 1
            if k < n:
                candidates.append(str(netaddr.IPAddress(a + k, version)))
                break
            k -= n
    params = {f"ip{i}": candidates[i % len(candidates)] for i in range(_CANDIDATES)}
    params["subnet_id"] = subnet_id
    taken = {row[0] for row in _TAKEN_AMONG.rows(conn, params)}
    for c in candidates:
        if c not in taken:
            return c
    # Dense subnet: read what is taken and pick among what is left.
    used = {int(netaddr.IPAddress(row[0])) for row in _ALL_TAKEN.rows(conn, {"subnet_id": subnet_id})}
    if len(used) >= size and all(in_pools(u, pools) for u in used):
        return None
    free: list[int] = []
    for a, b in pools:
        ip = a
        while ip <= b and len(free) < 64:
            if ip not in used:
                free.append(ip)
            ip += 1
        if len(free) >= 64:
            break
    if not free:
        return None
    return str(netaddr.IPAddress(r.choice(free), version))

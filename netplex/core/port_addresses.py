"""A port's addresses: its MAC, its fixed IPs (through IPAM) and its allowed address pairs.

Validation and allocation only: the rows are written by the port service
(``ip_allocations``) and :mod:`netplex.core.port_rows` (``ports``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, cast

import netaddr
from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.orm import Session

from netplex.core import ipam
from netplex.core.attr_map import mac_address, shown
from netplex.db.models import IPAllocation, Port, Subnet
from netplex.db.prepared import Prepared
from netplex.errors import (
    InvalidInput,
    InvalidIpForNetwork,
    InvalidIpForSubnet,
    IpAddressAlreadyAllocated,
    IpAddressGenerationFailure,
    MacAddressInUse,
)

_SUBNETS = cast(Table, Subnet.__table__)
_PORTS = cast(Table, Port.__table__)
_IPS = cast(Table, IPAllocation.__table__)
_MAC_TAKEN = Prepared(
    select(_PORTS.c.id).where(_PORTS.c.network_id == bindparam("network_id"), _PORTS.c.mac_address == bindparam("mac"))
)
#: What IPAM needs of a subnet (see SubnetInfo).
_SUBNET_INFO = (
    _SUBNETS.c.id,
    _SUBNETS.c.ip_version,
    _SUBNETS.c.cidr,
    _SUBNETS.c.gateway_ip,
    _SUBNETS.c.allocation_pools,
    _SUBNETS.c.ipv6_address_mode,
)
_SUBNETS_OF_NETWORK = Prepared(
    select(*_SUBNET_INFO)
    .where(_SUBNETS.c.network_id == bindparam("network_id"))
    .order_by(_SUBNETS.c.created_at, _SUBNETS.c.id)
)
_SUBNET_OF_NETWORK = Prepared(
    select(*_SUBNET_INFO).where(_SUBNETS.c.id == bindparam("id"), _SUBNETS.c.network_id == bindparam("network_id"))
)
_IP_HOLDER = Prepared(
    select(_IPS.c.port_id).where(_IPS.c.subnet_id == bindparam("subnet_id"), _IPS.c.ip_address == bindparam("ip"))
)
_rng = random.SystemRandom()


class SubnetInfo(NamedTuple):
    """What IPAM needs of a subnet."""

    id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    allocation_pools: list[dict[str, str]]
    ipv6_address_mode: str | None


def normalize_mac(value: Any) -> str:
    # Only the notations Neutron accepts: a bare number ("12") is not a MAC,
    # although netaddr.EUI would read it as 00:00:00:00:00:0c.
    try:
        mac_address(value)
        mac = netaddr.EUI(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise InvalidInput(error_message=f"'{shown(value)}' is not a valid MAC address") from None
    if mac.words[0] & 1:
        raise InvalidInput(error_message=f"'{shown(value)}' is not a valid MAC address (multicast)")
    return str(mac).replace("-", ":").lower()


def random_mac(base_mac: str) -> str:
    """Keep the base's OUI (and a non-zero 4th octet), randomise the rest."""
    octets = base_mac.split(":")
    out = octets[:3]
    for i in range(3, 6):
        if i == 3 and octets[3] != "00":
            out.append(octets[3])
        else:
            out.append(f"{_rng.randrange(256):02x}")
    return ":".join(out)


class PortAddresses:
    """MACs, fixed IPs and address pairs of ports, under the server's settings.

    ``base_mac`` and ``max_fixed_ips_per_port`` are Neutron's ``[DEFAULT]``
    options of those names, read once when the server is built.
    """

    def __init__(self, *, base_mac: str, max_fixed_ips_per_port: int) -> None:
        self.base_mac = base_mac
        self.max_fixed_ips_per_port = max_fixed_ips_per_port

    def network_subnets(self, s: Session, network_id: str) -> list[SubnetInfo]:
        return [SubnetInfo(*row) for row in _SUBNETS_OF_NETWORK.rows(s.connection(), {"network_id": network_id})]

    def auto_ips(
        self, conn: Connection, net_id: str, subnets: Sequence[SubnetInfo], mac: str, owner: str
    ) -> list[tuple[str, str]]:
        """Neutron's default: one v4, one stateful v6, and every SLAAC subnet.

        Unlike Neutron, a family whose subnets are all full (a tiny IPv6 /128, say) is
        skipped when the port gets an address otherwise: one exhausted subnet never
        blocks every new port of the network. Only a port that would get no address at
        all is refused."""
        out: list[tuple[str, str]] = []
        exhausted = False
        for version in (4, 6):
            candidates = [sub for sub in subnets if sub.ip_version == version and not self.auto_address(sub)]
            for sub in candidates:
                ip = ipam.allocate_ip(conn, sub.id, version, ipam.pools_from_api(sub.allocation_pools))
                if ip is not None:
                    out.append((sub.id, ip))
                    break
            else:
                exhausted = exhausted or bool(candidates)
        if owner not in ipam.ROUTER_OWNERS:
            for sub in subnets:
                if self.auto_address(sub):
                    out.append((sub.id, ipam.eui64_address(sub.cidr, mac)))
        if exhausted and not out:
            raise IpAddressGenerationFailure(net_id=net_id)
        return out

    @staticmethod
    def auto_address(sub: SubnetInfo) -> bool:
        return sub.ip_version == 6 and sub.ipv6_address_mode in ipam.AUTO_ADDRESS_MODES

    def requested_ips(
        self,
        conn: Connection,
        net_id: str,
        subnets: Sequence[SubnetInfo],
        requested: list[dict[str, Any]],
        mac: str,
        owner: str,
        port_id: str | None,
        keep: Iterable[tuple[str, str]] = (),
    ) -> list[tuple[str, str]]:
        by_id = {sub.id: sub for sub in subnets}
        kept = set(keep)
        out: list[tuple[str, str]] = []
        limit = self.max_fixed_ips_per_port
        if len(requested) > limit:
            raise InvalidInput(error_message=f"Exceeded maximum amount of fixed ips per port ({limit})")
        for item in requested:
            if not isinstance(item, dict) or set(item) - {"subnet_id", "ip_address"} or not item:
                raise InvalidInput(error_message=f"Invalid fixed_ips entry '{item}'")
            sid = item.get("subnet_id")
            ip_raw = item.get("ip_address")
            if sid is not None:
                sub = by_id.get(sid)
                if sub is None:
                    raise InvalidInput(
                        error_message=f"Failed to create port on network {net_id}, because "
                        f"fixed_ips included invalid subnet {sid}"
                    )
                if ip_raw is None:
                    if self.auto_address(sub):
                        out.append((sub.id, ipam.eui64_address(sub.cidr, mac)))
                        continue
                    pools = ipam.pools_from_api(sub.allocation_pools)
                    ip = ipam.allocate_ip(conn, sub.id, sub.ip_version, pools)
                    if ip is None:
                        raise IpAddressGenerationFailure(net_id=net_id)
                    out.append((sub.id, ip))
                    continue
                addr = ipam.parse_ip(ip_raw)
                if addr not in netaddr.IPNetwork(sub.cidr):
                    raise InvalidIpForSubnet(ip_address=ip_raw)
            else:
                addr = ipam.parse_ip(ip_raw)
                match = [x for x in subnets if addr in netaddr.IPNetwork(x.cidr)]
                if not match:
                    raise InvalidIpForNetwork(ip_address=ip_raw)
                sub = match[0]
            ip = str(addr)
            if (sub.id, ip) in kept:
                out.append((sub.id, ip))
                continue
            self.check_specific_ip(conn, sub, addr, owner, port_id)
            out.append((sub.id, ip))
        seen: set[tuple[str, str]] = set()
        for pair in out:
            if pair in seen:
                raise InvalidInput(error_message=f"Duplicate IP address '{pair[1]}'")
            seen.add(pair)
        return out

    def check_specific_ip(
        self, conn: Connection, sub: SubnetInfo, addr: netaddr.IPAddress, owner: str, port_id: str | None
    ) -> None:
        cidr = netaddr.IPNetwork(sub.cidr)
        if cidr.version == 4 and cidr.prefixlen <= 30 and int(addr) in (cidr.first, cidr.last):
            raise InvalidIpForSubnet(ip_address=str(addr))
        if sub.gateway_ip == str(addr) and owner not in ipam.ROUTER_OWNERS:
            raise IpAddressAlreadyAllocated(ip=str(addr), subnet_id=sub.id)
        holder = _IP_HOLDER.scalar(conn, {"subnet_id": sub.id, "ip": str(addr)})
        if holder is not None and holder != port_id:
            raise IpAddressAlreadyAllocated(ip=str(addr), subnet_id=sub.id)

    def pick_mac(self, conn: Connection, net_id: str, requested: str | None) -> str:
        """A requested MAC is checked; a random one is not: with 2^24 choices per
        network a clash is rare, and the unique key turns it into a retry."""
        if requested is None:
            return random_mac(self.base_mac)
        mac = normalize_mac(requested)
        if _MAC_TAKEN.first(conn, {"network_id": net_id, "mac": mac}) is not None:
            raise MacAddressInUse(net_id=net_id, mac=mac)
        return mac

    @staticmethod
    def subnets_for_create(conn: Any, network_id: str, requested: Any) -> list[SubnetInfo]:
        """The network's subnets, or only those named when every fixed_ips entry names one."""
        if isinstance(requested, list) and requested and all(
            isinstance(f, dict) and isinstance(f.get("subnet_id"), str) for f in requested
        ):
            named = dict.fromkeys(f["subnet_id"] for f in requested)
            found = (_SUBNET_OF_NETWORK.first(conn, {"id": sid, "network_id": network_id}) for sid in named)
            return [SubnetInfo(*row) for row in found if row is not None]
        return [SubnetInfo(*row) for row in _SUBNETS_OF_NETWORK.rows(conn, {"network_id": network_id})]

    @staticmethod
    def address_pairs(raw: Any, mac: str) -> list[dict[str, str]]:
        if not isinstance(raw, list):
            raise InvalidInput(error_message=f"'{shown(raw)}' is not a list")
        out: list[dict[str, str]] = []
        for pair in raw:
            if not isinstance(pair, dict) or "ip_address" not in pair or set(pair) - {"ip_address", "mac_address"}:
                raise InvalidInput(error_message=f"Invalid allowed address pair '{shown(pair)}'")
            ip_text = str(pair["ip_address"])
            try:
                ip = str(netaddr.IPNetwork(ip_text)) if "/" in ip_text else str(ipam.parse_ip(ip_text))
            except netaddr.AddrFormatError:
                raise InvalidInput(error_message=f"'{shown(ip_text)}' is not a valid IP address") from None
            entry = {"ip_address": ip, "mac_address": normalize_mac(pair.get("mac_address") or mac)}
            if entry in out:
                raise InvalidInput(error_message=f"Duplicate address pair '{shown(pair)}'")
            out.append(entry)
        return out

    def replace_fixed_ips(self, s: Session, row: Any, requested: list[dict[str, Any]]) -> None:
        existing = [
            (sid, ip)
            for sid, ip in s.execute(
                select(IPAllocation.subnet_id, IPAllocation.ip_address).where(IPAllocation.port_id == row.id)
            )
        ]
        subnets = self.network_subnets(s, row.network_id)
        # An entry naming only a subnet the port already has an address on keeps that address.
        resolved: list[dict[str, Any]] = []
        have_by_subnet: dict[str, list[str]] = defaultdict(list)
        for sid, ip in existing:
            have_by_subnet[sid].append(ip)
        for item in requested:
            if isinstance(item, dict) and set(item) == {"subnet_id"} and have_by_subnet.get(item["subnet_id"]):
                resolved.append(
                    {"subnet_id": item["subnet_id"], "ip_address": have_by_subnet[item["subnet_id"]].pop(0)}
                )
            else:
                resolved.append(item)
        wanted = self.requested_ips(
            s.connection(), row.network_id, subnets, resolved, row.mac_address, row.device_owner, row.id, keep=existing
        )
        keep = set(wanted)
        for sid, ip in existing:
            if (sid, ip) not in keep:
                s.execute(delete(IPAllocation).where(IPAllocation.subnet_id == sid, IPAllocation.ip_address == ip))
        old = set(existing)
        for sid, ip in wanted:
            if (sid, ip) not in old:
                s.add(IPAllocation(subnet_id=sid, ip_address=ip, port_id=row.id, network_id=row.network_id))
        s.flush()

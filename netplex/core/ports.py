"""Ports: MACs, fixed IPs (IPAM), binding requests, allowed address pairs.

Port create is the hottest write path, so it issues few statements: one
read of the network's subnets, one probe per IP family, one MAC probe,
then the inserts. Binding (choosing a mechanism) never runs inside this
transaction: the service commits the request and then asks the binder.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import anyio.to_thread
import netaddr
from sqlalchemy import ColumnElement, Connection, Table, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from netplex.core import ipam
from netplex.core.common import (
    check_revision,
    iso,
    raw_timestamp,
    resolve_project,
    tags_among,
    tags_of,
)
from netplex.core.context import Context
from netplex.core.listing import ListQuery, filter_clauses, finish_in_python, paginate
from netplex.core.segments_model import Segment
from netplex.db.base import new_id, utcnow
from netplex.db.engine import Txn
from netplex.db.models import IPAllocation, Network, Port, PortBinding, Subnet, Tag
from netplex.db.prepared import Prepared
from netplex.errors import (
    BadRequest,
    InvalidInput,
    InvalidIpForNetwork,
    InvalidIpForSubnet,
    IpAddressAlreadyAllocated,
    IpAddressGenerationFailure,
    MacAddressInUse,
    MechanismDriverError,
    NetworkNotFound,
    PolicyNotAuthorized,
    PortNotFound,
)

if TYPE_CHECKING:
    from netplex.core.plugin import Core

LOG = logging.getLogger(__name__)

COLUMNS = {
    "id": Port.id,
    "name": Port.name,
    "description": Port.description,
    "project_id": Port.project_id,
    "tenant_id": Port.project_id,
    "network_id": Port.network_id,
    "mac_address": Port.mac_address,
    "admin_state_up": Port.admin_state_up,
    "status": Port.status,
    "device_id": Port.device_id,
    "device_owner": Port.device_owner,
    "revision_number": Port.revision_number,
    "created_at": Port.created_at,
    "updated_at": Port.updated_at,
}

_SUBNETS = cast(Table, Subnet.__table__)
_PORTS = cast(Table, Port.__table__)
_MAC_TAKEN = Prepared(
    select(_PORTS.c.id).where(_PORTS.c.network_id == bindparam("network_id"), _PORTS.c.mac_address == bindparam("mac"))
)
_NETWORKS = cast(Table, Network.__table__)
_NETWORK_FOR_PORT = Prepared(
    select(_NETWORKS.c.id, _NETWORKS.c.project_id, _NETWORKS.c.shared, _NETWORKS.c.router_external).where(
        _NETWORKS.c.id == bindparam("id")
    )
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
_BINDINGS = cast(Table, PortBinding.__table__)
_ACTIVE_BINDINGS = select(*_BINDINGS.c).where(
    _BINDINGS.c.port_id.in_(bindparam("ids", expanding=True)), _BINDINGS.c.status == "ACTIVE"
)
_IPS = cast(Table, IPAllocation.__table__)
_PORT_IPS = select(_IPS.c.port_id, _IPS.c.subnet_id, _IPS.c.ip_address).where(
    _IPS.c.port_id.in_(bindparam("ids", expanding=True))
)
_PORT_KEYS = [c.key for c in _PORTS.c]
#: What lists read: timestamps stay text (formatted by ``iso`` without parsing).
_LIST_COLUMNS = [raw_timestamp(c) if c.key in ("created_at", "updated_at") else c for c in _PORTS.c]
_PORT_ROW = Prepared(select(*_PORTS.c).where(_PORTS.c.id == bindparam("id")))
_IPS_OF_PORT = Prepared(select(_IPS.c.subnet_id, _IPS.c.ip_address).where(_IPS.c.port_id == bindparam("id")))
_ACTIVE_BINDING_OF_PORT = Prepared(
    select(*_BINDINGS.c).where(_BINDINGS.c.port_id == bindparam("id"), _BINDINGS.c.status == "ACTIVE")
)
_STATUS_ON_HOST = (
    select(_PORTS.c.id, _PORTS.c.status)
    .join(_BINDINGS, _BINDINGS.c.port_id == _PORTS.c.id)
    .where(
        _PORTS.c.id.in_(bindparam("ids", expanding=True)),
        _BINDINGS.c.host == bindparam("host"),
        _BINDINGS.c.status == "ACTIVE",
    )
)
_PORTS_BY_IDS = select(*_PORTS.c).where(_PORTS.c.id.in_(bindparam("ids", expanding=True)))
_TAGS = cast(Table, Tag.__table__)
_DELETE_PORT_IPS = Prepared(delete(_IPS).where(_IPS.c.port_id == bindparam("id")))
_DELETE_PORT_BINDINGS = Prepared(delete(_BINDINGS).where(_BINDINGS.c.port_id == bindparam("id")))
_DELETE_PORT_TAGS = Prepared(
    delete(_TAGS).where(_TAGS.c.resource_type == "ports", _TAGS.c.resource_id == bindparam("id"))
)
_DELETE_PORT = Prepared(delete(_PORTS).where(_PORTS.c.id == bindparam("id")))
_NETWORK_OWNER = Prepared(select(_NETWORKS.c.project_id).where(_NETWORKS.c.id == bindparam("id")))
_IP_HOLDER = Prepared(
    select(_IPS.c.port_id).where(_IPS.c.subnet_id == bindparam("subnet_id"), _IPS.c.ip_address == bindparam("ip"))
)
_INSERT_PORT = Prepared(insert(_PORTS), keys=_PORT_KEYS)
_INSERT_IP = Prepared(insert(_IPS), keys=["subnet_id", "ip_address", "port_id", "network_id"])
_INSERT_BINDING = Prepared(insert(_BINDINGS), keys=[c.key for c in _BINDINGS.c])


_PORT_UPDATES: dict[frozenset[str], Prepared] = {}


def _port_update(columns: Iterable[str]) -> Prepared:
    """UPDATE of ``columns`` plus a new revision (one statement per column set)."""
    keys = frozenset(columns)
    stmt = _PORT_UPDATES.get(keys)
    if stmt is None:
        values: dict[str, Any] = {k: bindparam(k, type_=_PORTS.c[k].type) for k in sorted(keys)}
        values["revision_number"] = _PORTS.c.revision_number + 1
        values["updated_at"] = bindparam("now", type_=_PORTS.c.updated_at.type)
        stmt = _PORT_UPDATES[keys] = Prepared(update(_PORTS).where(_PORTS.c.id == bindparam("id")).values(**values))
    return stmt


class SubnetInfo(NamedTuple):
    """What IPAM needs of a subnet."""

    id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    allocation_pools: list[dict[str, str]]
    ipv6_address_mode: str | None


BINDING_KEYS = ("binding:host_id", "binding:vnic_type", "binding:profile")
#: Binding attributes only admins (and agents) may set; vnic_type is the owner's.
ADMIN_BINDING_KEYS = ("binding:host_id", "binding:profile")
_rng = random.SystemRandom()


def normalize_mac(value: Any) -> str:
    try:
        mac = netaddr.EUI(str(value))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise InvalidInput(error_message=f"'{value}' is not a valid MAC address") from None
    if mac.words[0] & 1:
        raise InvalidInput(error_message=f"'{value}' is not a valid MAC address (multicast)")
    text = str(mac).replace("-", ":").lower()
    if text == "00:00:00:00:00:00":
        raise InvalidInput(error_message=f"'{value}' is not a valid MAC address")
    return text


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


def binding_view(b: Any) -> dict[str, Any]:
    if b is None:
        return {
            "binding:host_id": "",
            "binding:vnic_type": "normal",
            "binding:profile": {},
            "binding:vif_type": "unbound",
            "binding:vif_details": {},
            "binding:diagnostics": [],
        }
    return {
        "binding:host_id": b.host,
        "binding:vnic_type": b.vnic_type,
        "binding:profile": dict(b.profile or {}),
        "binding:vif_type": b.vif_type,
        "binding:vif_details": dict(b.vif_details or {}),
        "binding:diagnostics": list(b.diagnostics or []),
    }


def to_dict(
    row: Any,
    ips: Sequence[tuple[str, str]],
    binding: Any,
    tags: list[str],
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "network_id": row.network_id,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "mac_address": row.mac_address,
        "admin_state_up": row.admin_state_up,
        "status": row.status,
        "device_id": row.device_id,
        "device_owner": row.device_owner,
        "fixed_ips": [{"subnet_id": sid, "ip_address": ip} for sid, ip in ips],
        "allowed_address_pairs": list(row.allowed_address_pairs or []),
        "revision_number": row.revision_number,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "tags": tags,
    }
    d.update(binding_view(binding))
    return d


class PortService:
    def __init__(self, core: Core) -> None:
        self.core = core

    # -- dicts -------------------------------------------------------------

    def render_where(self, conn: Connection, *where: Any) -> list[dict[str, Any]]:
        """API dicts of the ports matching ``where`` (SQL clauses), ordered by id."""
        rows = conn.execute(select(*_LIST_COLUMNS).where(*where).order_by(_PORTS.c.id)).all()
        return self._render_rows(conn, rows)

    def _dicts(self, s: Session, rows: Sequence[Any]) -> list[dict[str, Any]]:
        return self._render_rows(s.connection(), rows)

    def _render_rows(self, conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """API dicts for port rows (ORM objects or rows with the ports columns)."""
        if len(rows) == 1:
            return [self._one_dict(conn, rows[0])]
        ids = [r.id for r in rows]
        ips: dict[str, list[tuple[str, str]]] = defaultdict(list)
        bindings: dict[str, Any] = {}
        for i in range(0, len(ids), 5000):
            chunk = ids[i : i + 5000]
            for pid, sid, ip in conn.execute(_PORT_IPS, {"ids": chunk}).all():
                ips[pid].append((sid, ip))
            for b in conn.execute(_ACTIVE_BINDINGS, {"ids": chunk}).all():
                bindings[b.port_id] = b
        tags = tags_among(conn, "ports", ids)
        return [to_dict(r, ips.get(r.id, []), bindings.get(r.id), tags.get(r.id, [])) for r in rows]

    @staticmethod
    def _one_dict(conn: Connection, row: Any) -> dict[str, Any]:
        """One port's dict from four indexed lookups (the single-port hot path)."""
        ips = [tuple(r) for r in _IPS_OF_PORT.rows(conn, {"id": row.id})]
        binding = _ACTIVE_BINDING_OF_PORT.first(conn, {"id": row.id})
        tags = tags_of(conn, "ports", row.id)
        return to_dict(row, ips, binding, tags)

    def dict_in_session(self, s: Session, port_id: str) -> dict[str, Any]:
        """The port as the API shows it, as this transaction sees it (flush first)."""
        return self.render(s.connection(), port_id)

    def render(self, conn: Connection, port_id: str) -> dict[str, Any]:
        """The port as the API shows it, read on ``conn``."""
        row = _PORT_ROW.first(conn, {"id": port_id})
        if row is None:
            raise PortNotFound(port_id=port_id)
        return self._one_dict(conn, row)

    # -- visibility ----------------------------------------------------------

    def _visible(self, s: Session, ctx: Context, row: Port) -> bool:
        if ctx.is_admin or ctx.is_agent or row.project_id == ctx.project_id:
            return True
        owner = s.execute(select(Network.project_id).where(Network.id == row.network_id)).scalar()
        return owner is not None and owner == ctx.project_id

    def _row(self, conn: Connection, ctx: Context, port_id: str) -> Any:
        """The port's row (a named tuple) if ``ctx`` may see it."""
        row = _PORT_ROW.first(conn, {"id": port_id})
        if row is None or not (ctx.is_admin or ctx.is_agent or row.project_id == ctx.project_id):
            if row is None or _NETWORK_OWNER.scalar(conn, {"id": row.network_id}) != ctx.project_id:
                raise PortNotFound(port_id=port_id)
        return row

    def get_row(self, s: Session, ctx: Context, port_id: str) -> Port:
        row = s.get(Port, port_id)
        if row is None or not self._visible(s, ctx, row):
            raise PortNotFound(port_id=port_id)
        return row

    # -- IPAM ------------------------------------------------------------------

    def _network_subnets(self, s: Session, network_id: str) -> list[SubnetInfo]:
        return [SubnetInfo(*row) for row in _SUBNETS_OF_NETWORK.rows(s.connection(), {"network_id": network_id})]

    def _auto_ips(
        self, conn: Connection, net_id: str, subnets: Sequence[SubnetInfo], mac: str, owner: str
    ) -> list[tuple[str, str]]:
        """Neutron's default: one v4, one stateful v6, and every SLAAC subnet."""
        out: list[tuple[str, str]] = []
        for version in (4, 6):
            candidates = [sub for sub in subnets if sub.ip_version == version and not self._auto_address(sub)]
            if not candidates:
                continue
            for sub in candidates:
                ip = ipam.allocate_ip(conn, sub.id, version, ipam.pools_from_api(sub.allocation_pools))
                if ip is not None:
                    out.append((sub.id, ip))
                    break
            else:
                raise IpAddressGenerationFailure(net_id=net_id)
        if owner not in ipam.ROUTER_OWNERS:
            for sub in subnets:
                if self._auto_address(sub):
                    out.append((sub.id, ipam.eui64_address(sub.cidr, mac)))
        return out

    @staticmethod
    def _auto_address(sub: SubnetInfo) -> bool:
        return sub.ip_version == 6 and sub.ipv6_address_mode in ipam.AUTO_ADDRESS_MODES

    def _requested_ips(
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
        limit = self.core.cfg.get("DEFAULT", "max_fixed_ips_per_port")
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
                    if self._auto_address(sub):
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
            self._check_specific_ip(conn, sub, addr, owner, port_id)
            out.append((sub.id, ip))
        seen: set[tuple[str, str]] = set()
        for pair in out:
            if pair in seen:
                raise InvalidInput(error_message=f"Duplicate IP address '{pair[1]}'")
            seen.add(pair)
        return out

    def _check_specific_ip(
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

    def _pick_mac(self, conn: Connection, net_id: str, requested: str | None) -> str:
        """A requested MAC is checked; a random one is not: with 2^24 choices per
        network a clash is rare, and the unique key turns it into a retry."""
        if requested is None:
            return random_mac(self.core.cfg.get("DEFAULT", "base_mac"))
        mac = normalize_mac(requested)
        if _MAC_TAKEN.first(conn, {"network_id": net_id, "mac": mac}) is not None:
            raise MacAddressInUse(net_id=net_id, mac=mac)
        return mac

    # -- create ----------------------------------------------------------------

    def create(self, ctx: Context, attrs: dict[str, Any]) -> dict[str, Any]:
        return self.create_bulk(ctx, [attrs])[0]

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._after_create(self.core.db.transaction(self._create_fn(ctx, items)))

    async def create_bulk_async(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`create_bulk` for an event loop. The transaction goes straight to
        the database's writer; only when mechanism drivers want postcommit calls
        or ports are to be bound (which may block) does the rest go to a worker
        thread."""
        created = await self.core.db.transaction_async(self._create_fn(ctx, items))
        if self.core.hooks_want("port", "create") or any(p["binding:host_id"] for p, _ in created):
            return await anyio.to_thread.run_sync(self._after_create, created)
        return [port for port, _ in created]

    def _create_fn(self, ctx: Context, items: list[dict[str, Any]],
                   ) -> Callable[[Txn], list[tuple[dict[str, Any], list[Segment]]]]:
        for attrs in items:
            self._check_create_policy(ctx, attrs)

        def fn(txn: Txn) -> list[tuple[dict[str, Any], list[Segment]]]:
            return [self._create_in_txn(txn, ctx, a) for a in items]

        return fn

    def _after_create(self, created: list[tuple[dict[str, Any], list[Segment]]]) -> list[dict[str, Any]]:
        """Postcommit calls and binding of freshly created ports (may block)."""
        out: list[dict[str, Any]] = []
        want_post = self.core.hooks_want("port", "create")
        for i, (port, segs) in enumerate(created):
            try:
                if want_post:
                    self.core.hooks.postcommit("create", "port", port, None, segs)
            except Exception as exc:
                LOG.exception("create_port_postcommit failed; removing port %s", port["id"])
                for other, _ in created[i:]:
                    self._delete_quietly(other["id"])
                raise MechanismDriverError(method="create_port_postcommit", reason=str(exc)) from exc
            if port["binding:host_id"]:
                port = self.core.binder.bind(port["id"]) or port
            out.append(port)
        return out

    def _check_create_policy(self, ctx: Context, attrs: dict[str, Any]) -> None:
        if ctx.is_admin:
            return
        for key in ADMIN_BINDING_KEYS:
            if key in attrs and not ctx.is_agent:
                raise PolicyNotAuthorized(action=f"create_port:{key}")

    def _network_owner_or_admin(self, ctx: Context, net: Any) -> bool:
        return ctx.is_admin or net.project_id == ctx.project_id

    def _create_in_txn(self, txn: Txn, ctx: Context, attrs: dict[str, Any]) -> tuple[dict[str, Any], list[Segment]]:
        conn = txn.conn
        net = _NETWORK_FOR_PORT.first(conn, {"id": attrs["network_id"]})
        if net is None or not (ctx.is_admin or net.project_id == ctx.project_id or net.shared or net.router_external):
            raise NetworkNotFound(net_id=attrs["network_id"])
        requested = attrs.get("fixed_ips")
        subnets = self._subnets_for_create(conn, net.id, requested)
        project_id = resolve_project(ctx, attrs, "port")
        owner = attrs.get("device_owner", "")
        if not self._network_owner_or_admin(ctx, net):
            if "mac_address" in attrs:
                raise PolicyNotAuthorized(action="create_port:mac_address")
            if any(isinstance(f, dict) and "ip_address" in f for f in attrs.get("fixed_ips") or []):
                raise PolicyNotAuthorized(action="create_port:fixed_ips:ip_address")
        mac = self._pick_mac(conn, net.id, attrs.get("mac_address"))
        if requested is None:
            ips = self._auto_ips(conn, net.id, subnets, mac, owner)
        else:
            ips = self._requested_ips(conn, net.id, subnets, requested, mac, owner, None)
        now = utcnow()
        values = {
            "id": new_id(),
            "network_id": net.id,
            "project_id": project_id,
            "name": attrs.get("name", ""),
            "description": attrs.get("description", ""),
            "mac_address": mac,
            "admin_state_up": attrs.get("admin_state_up", True),
            "status": "DOWN",
            "device_id": attrs.get("device_id", ""),
            "device_owner": owner,
            "allowed_address_pairs": self._address_pairs(attrs.get("allowed_address_pairs", []), mac),
            "revision_number": 0,
            "created_at": now,
            "updated_at": now,
        }
        _INSERT_PORT.execute(conn, values)
        _INSERT_IP.executemany(
            conn,
            [{"subnet_id": sid, "ip_address": ip, "port_id": values["id"], "network_id": net.id} for sid, ip in ips],
        )
        host = attrs.get("binding:host_id") or ""
        binding = {
            "port_id": values["id"],
            "host": host,
            "vnic_type": attrs.get("binding:vnic_type", "normal"),
            "profile": attrs.get("binding:profile") or {},
            "vif_type": "unbound",
            "vif_details": {},
            "status": "ACTIVE",
            "diagnostics": [],
            "attempt": 0,
        }
        _INSERT_BINDING.execute(conn, binding)
        port = to_dict(SimpleNamespace(**values), ips, None, [])
        port.update(
            {
                "binding:host_id": host,
                "binding:vnic_type": binding["vnic_type"],
                "binding:profile": binding["profile"],
            }
        )
        segments = self._hook_segments(txn, net.id, "create")
        if segments is not None:
            self.core.hooks.precommit(txn.session, "create", "port", port, None, segments)
        txn.record("port", values["id"], "create", port)
        return port, segments or []

    @staticmethod
    def _subnets_for_create(conn: Any, network_id: str, requested: Any) -> list[SubnetInfo]:
        """The network's subnets, or only those named when every fixed_ips entry names one."""
        if isinstance(requested, list) and requested and all(
            isinstance(f, dict) and isinstance(f.get("subnet_id"), str) for f in requested
        ):
            named = dict.fromkeys(f["subnet_id"] for f in requested)
            found = (_SUBNET_OF_NETWORK.first(conn, {"id": sid, "network_id": network_id}) for sid in named)
            return [SubnetInfo(*row) for row in found if row is not None]
        return [SubnetInfo(*row) for row in _SUBNETS_OF_NETWORK.rows(conn, {"network_id": network_id})]

    def _hook_segments(self, txn: Txn, network_id: str, event: str) -> list[Segment] | None:
        """The segments for driver contexts, or None when no driver wants this event."""
        if not self.core.hooks_want("port", event):
            return None
        return self.core.types.get_segments(txn.session, network_id)

    @staticmethod
    def _address_pairs(raw: Any, mac: str) -> list[dict[str, str]]:
        if not isinstance(raw, list):
            raise InvalidInput(error_message=f"'{raw}' is not a list")
        out: list[dict[str, str]] = []
        for pair in raw:
            if not isinstance(pair, dict) or "ip_address" not in pair or set(pair) - {"ip_address", "mac_address"}:
                raise InvalidInput(error_message=f"Invalid allowed address pair '{pair}'")
            ip_text = str(pair["ip_address"])
            try:
                ip = str(netaddr.IPNetwork(ip_text)) if "/" in ip_text else str(ipam.parse_ip(ip_text))
            except netaddr.AddrFormatError:
                raise InvalidInput(error_message=f"'{ip_text}' is not a valid IP address") from None
            entry = {"ip_address": ip, "mac_address": normalize_mac(pair.get("mac_address") or mac)}
            if entry in out:
                raise InvalidInput(error_message=f"Duplicate address pair '{pair}'")
            out.append(entry)
        return out

    # -- read ------------------------------------------------------------------

    def get(self, ctx: Context, port_id: str) -> dict[str, Any]:
        with self.core.db.read_conn() as conn:
            return self._one_dict(conn, self._row(conn, ctx, port_id))

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        sql_filters, rest = query.split_filters(COLUMNS)
        fixed_ip_filters = rest.pop("fixed_ips", None)
        binding_host = rest.pop("binding:host_id", None)
        with self.core.db.read() as s:
            # Plain rows: for 10,000 ports ORM objects would cost more than the query.
            stmt = select(*_LIST_COLUMNS).where(*filter_clauses(COLUMNS, sql_filters))
            if not (ctx.is_admin or ctx.is_agent):
                own_nets = select(Network.id).where(Network.project_id == (ctx.project_id or ""))
                stmt = stmt.where(or_(Port.project_id == (ctx.project_id or ""), Port.network_id.in_(own_nets)))
            if binding_host is not None:
                stmt = stmt.where(
                    Port.id.in_(
                        select(PortBinding.port_id).where(
                            PortBinding.host.in_(binding_host), PortBinding.status == "ACTIVE"
                        )
                    )
                )
            if fixed_ip_filters:
                stmt = stmt.where(*self._fixed_ip_clauses(fixed_ip_filters))
            stmt = paginate(s, stmt, COLUMNS, Port.id, query, resource="port", apply_limit=not rest)
            items = self._dicts(s, s.connection().execute(stmt).all())
        return finish_in_python(items, rest, query)

    @staticmethod
    def _fixed_ip_clauses(values: list[Any]) -> list[Any]:
        """``fixed_ips=ip_address=10.0.0.3`` / ``subnet_id=...`` / ``ip_address_substr=...``."""
        clauses = []
        by_key: dict[str, list[str]] = defaultdict(list)
        for v in values:
            key, sep, val = str(v).partition("=")
            if not sep or key not in ("ip_address", "subnet_id", "ip_address_substr"):
                raise BadRequest(resource="port", msg=f"Invalid fixed_ips filter '{v}'")
            by_key[key].append(val)
        for key, vals in by_key.items():
            cond: ColumnElement[bool]
            if key == "ip_address":
                cond = IPAllocation.ip_address.in_([str(ipam.parse_ip(x)) for x in vals])
            elif key == "subnet_id":
                cond = IPAllocation.subnet_id.in_(vals)
            else:
                cond = or_(*[IPAllocation.ip_address.contains(x) for x in vals])
            clauses.append(Port.id.in_(select(IPAllocation.port_id).where(cond)))
        return clauses

    # -- update ----------------------------------------------------------------

    def update(
        self, ctx: Context, port_id: str, attrs: dict[str, Any], *, if_revision: int | None = None
    ) -> dict[str, Any]:
        if not ctx.is_admin and not ctx.is_agent:
            for key in ADMIN_BINDING_KEYS:
                if key in attrs:
                    raise PolicyNotAuthorized(action=f"update_port:{key}")

        def fn(txn: Txn) -> tuple[dict[str, Any], dict[str, Any] | None, list[Segment], bool]:
            conn = txn.conn
            row = self._row(conn, ctx, port_id)
            if not (ctx.owns(row.project_id) or ctx.is_agent):
                if _NETWORK_OWNER.scalar(conn, {"id": row.network_id}) != ctx.project_id:
                    raise PolicyNotAuthorized(action="update_port")
            check_revision(if_revision, row.revision_number)
            want_hooks = self.core.hooks_want("port", "update")
            # The "before" view is only for drivers (and the MAC check): skip it otherwise.
            original = self._one_dict(conn, row) if want_hooks or "mac_address" in attrs else None
            changes: dict[str, Any] = {}
            if "mac_address" in attrs or "fixed_ips" in attrs:
                net = _NETWORK_FOR_PORT.first(conn, {"id": row.network_id})
                owner_or_admin = self._network_owner_or_admin(ctx, net)
            if "mac_address" in attrs:
                if not owner_or_admin:
                    raise PolicyNotAuthorized(action="update_port:mac_address")
                mac = normalize_mac(attrs["mac_address"])
                if mac != row.mac_address:
                    assert original is not None
                    if original["binding:vif_type"] not in ("unbound", "binding_failed"):
                        raise InvalidInput(error_message="Cannot change the MAC address of a bound port")
                    self._pick_mac(conn, row.network_id, mac)
                    changes["mac_address"] = mac
            for key in ("name", "description", "admin_state_up", "device_id", "device_owner"):
                if key in attrs:
                    changes[key] = attrs[key]
            row = row._replace(**changes)
            if "fixed_ips" in attrs:
                if not owner_or_admin and any(
                    isinstance(f, dict) and "ip_address" in f for f in attrs["fixed_ips"] or []
                ):
                    raise PolicyNotAuthorized(action="update_port:fixed_ips:ip_address")
                self._replace_fixed_ips(txn.session, row, attrs["fixed_ips"] or [])
            if "allowed_address_pairs" in attrs:
                changes["allowed_address_pairs"] = self._address_pairs(
                    attrs["allowed_address_pairs"] or [], row.mac_address
                )
            if "status" in attrs:
                if not (ctx.is_agent or ctx.is_admin):
                    raise PolicyNotAuthorized(action="update_port:status")
                changes["status"] = attrs["status"]
            _port_update(changes).execute(conn, {**changes, "id": port_id, "now": utcnow()})
            # After the row update: a host change sets the port DOWN, whatever it asked.
            rebind = self.core.binder.update_request(
                txn.session, port_id, {k: attrs[k] for k in BINDING_KEYS if k in attrs}
            )
            txn.flush()
            current = self.render(conn, port_id)
            segments: list[Segment] = []
            if want_hooks:
                segments = self.core.types.get_segments(txn.session, row.network_id)
                self.core.hooks.precommit(txn.session, "update", "port", current, original, segments)
            txn.record("port", port_id, "update", current)
            return current, original, segments, rebind

        current, original, segments, rebind = self.core.db.transaction(fn)
        if self.core.hooks_want("port", "update"):
            try:
                self.core.hooks.postcommit("update", "port", current, original, segments)
            except Exception:
                LOG.exception("update_port_postcommit failed for %s", port_id)
        if rebind and current["binding:host_id"]:
            current = self.core.binder.bind(port_id) or current
        return current

    def _replace_fixed_ips(self, s: Session, row: Any, requested: list[dict[str, Any]]) -> None:
        existing = [
            (sid, ip)
            for sid, ip in s.execute(
                select(IPAllocation.subnet_id, IPAllocation.ip_address).where(IPAllocation.port_id == row.id)
            )
        ]
        subnets = self._network_subnets(s, row.network_id)
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
        wanted = self._requested_ips(
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

    # -- status from agents -------------------------------------------------------

    def set_statuses(self, txn: Txn, host: str, statuses: Mapping[str, str]) -> list[str]:
        """Set ``status`` of the ports bound (ACTIVE binding) on ``host``; others are
        ignored. Changed ports get a new revision and a feed entry; returns their ids."""
        conn = txn.conn
        changed: dict[str, str] = {}
        ids = list(statuses)
        for i in range(0, len(ids), 5000):
            rows = conn.execute(_STATUS_ON_HOST, {"ids": ids[i : i + 5000], "host": host})
            changed.update({pid: statuses[pid] for pid, old in rows if old != statuses[pid]})
        if not changed:
            return []
        now = utcnow()
        _port_update(["status"]).executemany(
            conn, [{"id": pid, "status": st, "now": now} for pid, st in changed.items()]
        )
        for i in range(0, len(changed), 5000):
            found = conn.execute(_PORTS_BY_IDS, {"ids": list(changed)[i : i + 5000]}).all()
            for port in self._render_rows(conn, found):
                txn.record("port", port["id"], "update", port)
        return list(changed)

    # -- delete ----------------------------------------------------------------

    def delete(self, ctx: Context, port_id: str, *, if_revision: int | None = None) -> None:
        def fn(txn: Txn) -> tuple[dict[str, Any], list[Segment]]:
            conn = txn.conn
            row = self._row(conn, ctx, port_id)
            if not ctx.owns(row.project_id):
                if _NETWORK_OWNER.scalar(conn, {"id": row.network_id}) != ctx.project_id:
                    raise PolicyNotAuthorized(action="delete_port")
            check_revision(if_revision, row.revision_number)
            segments = self._hook_segments(txn, row.network_id, "delete") or []
            return self.delete_in_txn(txn, port_id, segments), segments

        original, segments = self.core.db.transaction(fn)
        self.postcommit_delete_logged(original, segments)

    def delete_in_txn(self, txn: Txn, port_id: str, segments: list[Segment] | None = None) -> dict[str, Any]:
        """Delete the port in ``txn``; ``segments`` of its network for drivers (read if None)."""
        conn = txn.conn
        original = self.render(conn, port_id)
        if self.core.hooks_want("port", "delete"):
            if segments is None:
                segments = self.core.types.get_segments(txn.session, original["network_id"])
            self.core.hooks.precommit(txn.session, "delete", "port", original, None, segments)
        self.core.binder.release_port(txn.session, port_id)
        for stmt in (_DELETE_PORT_IPS, _DELETE_PORT_BINDINGS, _DELETE_PORT_TAGS, _DELETE_PORT):
            stmt.execute(conn, {"id": port_id})
        txn.record("port", port_id, "delete", original)
        return original

    def postcommit_delete_logged(self, port: dict[str, Any], segments: Sequence[Segment]) -> None:
        if not self.core.hooks_want("port", "delete"):
            return
        try:
            self.core.hooks.postcommit("delete", "port", port, None, segments)
        except Exception:
            LOG.exception("delete_port_postcommit failed for %s", port["id"])

    def _delete_quietly(self, port_id: str) -> None:
        try:
            self.delete(Context.admin(), port_id)
        except PortNotFound:
            pass

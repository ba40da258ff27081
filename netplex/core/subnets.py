"""Subnets: CIDR, gateway and pool validation; SLAAC addresses for existing ports."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import netaddr
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from netplex.core import ipam
from netplex.core.common import (
    bump,
    check_revision,
    iso,
    resolve_project,
    tags_for,
)
from netplex.core.context import Context
from netplex.core.hooks import ResourceHooks
from netplex.core.listing import ListQuery, filter_clauses, finish_in_python, paginate
from netplex.core.network_access import is_auto_delete_owner, network_ids_visible, visible_network
from netplex.core.port_rows import PortTable
from netplex.core.type_manager import TypeManager
from netplex.db.engine import Database, Txn
from netplex.db.models import IPAllocation, Network, Port, Subnet, Tag
from netplex.errors import (
    BadRequest,
    InvalidInput,
    MechanismDriverError,
    SubnetInUse,
    SubnetNotFound,
)

LOG = logging.getLogger(__name__)

COLUMNS = {
    "id": Subnet.id,
    "name": Subnet.name,
    "description": Subnet.description,
    "project_id": Subnet.project_id,
    "tenant_id": Subnet.project_id,
    "network_id": Subnet.network_id,
    "ip_version": Subnet.ip_version,
    "cidr": Subnet.cidr,
    "gateway_ip": Subnet.gateway_ip,
    "enable_dhcp": Subnet.enable_dhcp,
    "ipv6_ra_mode": Subnet.ipv6_ra_mode,
    "ipv6_address_mode": Subnet.ipv6_address_mode,
    "segment_id": Subnet.segment_id,
    "subnetpool_id": Subnet.subnetpool_id,
    "revision_number": Subnet.revision_number,
    "created_at": Subnet.created_at,
    "updated_at": Subnet.updated_at,
}


def is_auto_address(row: Subnet) -> bool:
    return row.ip_version == 6 and row.ipv6_address_mode in ipam.AUTO_ADDRESS_MODES


def to_dict(row: Subnet, tags: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "network_id": row.network_id,
        "ip_version": row.ip_version,
        "cidr": row.cidr,
        "gateway_ip": row.gateway_ip,
        "allocation_pools": list(row.allocation_pools),
        "enable_dhcp": row.enable_dhcp,
        "dns_nameservers": list(row.dns_nameservers),
        "host_routes": list(row.host_routes),
        "ipv6_ra_mode": row.ipv6_ra_mode,
        "ipv6_address_mode": row.ipv6_address_mode,
        "subnetpool_id": row.subnetpool_id,
        "segment_id": row.segment_id,
        "service_types": [],
        "revision_number": row.revision_number,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "tags": tags,
    }


class SubnetService:
    """Subnets; adding or removing one changes the addresses of existing ports."""

    def __init__(self, db: Database, types: TypeManager, hooks: ResourceHooks, ports: PortTable) -> None:
        self.db = db
        self.types = types
        self.hooks = hooks
        self.ports = ports

    def _dicts(self, session: Session, rows: Sequence[Subnet]) -> list[dict[str, Any]]:
        tags = tags_for(session, "subnets", [r.id for r in rows])
        return [to_dict(r, tags.get(r.id, [])) for r in rows]

    def dict_in_session(self, session: Session, subnet_id: str) -> dict[str, Any]:
        """The subnet as the API shows it, as this transaction sees it."""
        row = session.get(Subnet, subnet_id)
        if row is None:
            raise SubnetNotFound(subnet_id=subnet_id)
        return self._dicts(session, [row])[0]

    def touched(self, txn: Txn, subnet_id: str) -> None:
        """The subnet changed through something it shows (tags): new revision, on the feed."""
        row = txn.session.get(Subnet, subnet_id)
        if row is None:
            return
        bump(row)
        txn.session.flush()
        txn.record("subnet", subnet_id, "update", self.dict_in_session(txn.session, subnet_id))

    def _visible(self, session: Session, ctx: Context, row: Subnet) -> bool:
        if ctx.is_admin or row.project_id == ctx.project_id:
            return True
        net = session.get(Network, row.network_id)
        return net is not None and (net.shared or net.project_id == ctx.project_id)

    def get_row(self, session: Session, ctx: Context, subnet_id: str) -> Subnet:
        row = session.get(Subnet, subnet_id)
        if row is None or not self._visible(session, ctx, row):
            raise SubnetNotFound(subnet_id=subnet_id)
        return row

    # -- validation ------------------------------------------------------

    def _validate_modes(self, attrs: dict[str, Any], version: int) -> None:
        ra, addr = attrs.get("ipv6_ra_mode"), attrs.get("ipv6_address_mode")
        for key, val in (("ipv6_ra_mode", ra), ("ipv6_address_mode", addr)):
            if val is not None and val not in ipam.IPV6_MODES:
                raise InvalidInput(error_message=f"'{val}' is not in {list(ipam.IPV6_MODES)} for {key}")
        if version == 4 and (ra or addr):
            raise InvalidInput(
                error_message="ipv6_ra_mode or ipv6_address_mode cannot be set when "
                "enable_dhcp is set to False or ip_version is 4"
            )
        if ra and addr and ra != addr:
            raise InvalidInput(
                error_message=f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                f"'{addr}' is not valid. If both attributes are set, they must be the same value"
            )

    def _check_overlap(self, s: Session, network_id: str, cidr: netaddr.IPNetwork, skip: str | None = None) -> None:
        for sid, other in s.execute(select(Subnet.id, Subnet.cidr).where(Subnet.network_id == network_id)):
            if sid == skip:
                continue
            o = netaddr.IPNetwork(other)
            if o.version == cidr.version and (cidr in o or o in cidr or cidr.first <= o.first <= cidr.last):
                raise InvalidInput(
                    error_message=f"Requested subnet with cidr: {cidr} for network: "
                    f"{network_id} overlaps with another subnet"
                )

    # -- create ----------------------------------------------------------

    def create(self, ctx: Context, attrs: dict[str, Any]) -> dict[str, Any]:
        return self.create_bulk(ctx, [attrs])[0]

    def create_bulk(self, ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def fn(txn: Txn) -> list[tuple[dict[str, Any], list[Any]]]:
            return [self._create_in_txn(txn, ctx, a) for a in items]

        created = self.db.transaction(fn)
        for i, (sub, segs) in enumerate(created):
            try:
                self.hooks.postcommit("create", "subnet", sub, None, segs)
            except Exception as exc:
                LOG.exception("create_subnet_postcommit failed; removing subnet %s", sub["id"])
                for other, _ in created[i:]:
                    try:
                        self.delete(Context.admin(), other["id"])
                    except SubnetNotFound:
                        pass
                raise MechanismDriverError(method="create_subnet_postcommit", reason=str(exc)) from exc
        return [sub for sub, _ in created]

    def _create_in_txn(self, txn: Txn, ctx: Context, attrs: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        s = txn.session
        net = visible_network(s, ctx, attrs["network_id"])
        project_id = resolve_project(ctx, attrs, "subnet")
        version = attrs["ip_version"]
        if "cidr" not in attrs or attrs["cidr"] is None:
            raise BadRequest(
                resource="subnets",
                msg="a subnetpool must be specified in the absence of a cidr",
            )
        cidr = ipam.parse_cidr(attrs["cidr"], version)
        if version == 6 and attrs.get("ipv6_address_mode") in ipam.AUTO_ADDRESS_MODES:
            if cidr.prefixlen != 64:
                raise InvalidInput(
                    error_message=f"Invalid CIDR {cidr} for IPv6 address mode. "
                    "OpenStack uses the EUI-64 address format, which requires the prefix to be /64"
                )
        self._validate_modes(attrs, version)
        if "gateway_ip" in attrs:
            gw = attrs["gateway_ip"]
            if gw is not None:
                gw_ip = ipam.parse_ip(gw)
                ipam.check_gateway(cidr, gw_ip)
                gw = str(gw_ip)
        else:
            gw = ipam.default_gateway(cidr)
        self._check_overlap(s, net.id, cidr)
        if attrs.get("allocation_pools") is not None:
            pools = ipam.parse_pools(attrs["allocation_pools"], cidr, gw)
        else:
            pools = ipam.default_pools(cidr, gw)
        segment_id = attrs.get("segment_id")
        if segment_id is not None:
            segs = {seg.id for seg in self.types.get_segments(s, net.id)}
            if segment_id not in segs:
                raise InvalidInput(error_message=f"Segment {segment_id} is not on network {net.id}")
        row = Subnet(
            network_id=net.id,
            project_id=project_id,
            name=attrs.get("name", ""),
            description=attrs.get("description", ""),
            ip_version=version,
            cidr=str(cidr),
            gateway_ip=gw,
            enable_dhcp=attrs.get("enable_dhcp", True),
            ipv6_ra_mode=attrs.get("ipv6_ra_mode"),
            ipv6_address_mode=attrs.get("ipv6_address_mode"),
            allocation_pools=ipam.pools_to_api(pools, version),
            dns_nameservers=ipam.check_nameservers(attrs.get("dns_nameservers", [])),
            host_routes=ipam.check_host_routes(attrs.get("host_routes", []), version),
            segment_id=segment_id,
        )
        s.add(row)
        s.flush()
        if is_auto_address(row):
            self._add_slaac_to_existing_ports(txn, row)
        bump(net)
        sub = to_dict(row, [])
        segments = self.types.get_segments(s, net.id)
        self.hooks.precommit(s, "create", "subnet", sub, None, segments)
        txn.record("subnet", row.id, "create", sub)
        return sub, segments

    def _add_slaac_to_existing_ports(self, txn: Txn, row: Subnet) -> None:
        s = txn.session
        for port in s.execute(select(Port).where(Port.network_id == row.network_id)).scalars():
            if port.device_owner in ipam.ROUTER_OWNERS:
                continue
            s.add(
                IPAllocation(
                    subnet_id=row.id,
                    ip_address=ipam.eui64_address(row.cidr, port.mac_address),
                    port_id=port.id,
                    network_id=row.network_id,
                )
            )
            self.ports.port_changed(txn, port.id)

    # -- read ------------------------------------------------------------

    def get(self, ctx: Context, subnet_id: str) -> dict[str, Any]:
        with self.db.read() as s:
            return self._dicts(s, [self.get_row(s, ctx, subnet_id)])[0]

    def find(self, ctx: Context, query: ListQuery) -> list[dict[str, Any]]:
        sql_filters, rest = query.split_filters(COLUMNS)
        with self.db.read() as s:
            stmt = select(Subnet).where(*filter_clauses(COLUMNS, sql_filters))
            if not ctx.is_admin:
                shared_nets = select(Network.id).where(Network.shared.is_(True))
                stmt = stmt.where((Subnet.project_id == (ctx.project_id or "")) | Subnet.network_id.in_(shared_nets))
            stmt = paginate(s, stmt, COLUMNS, Subnet.id, query, resource="subnet", apply_limit=not rest)
            items = self._dicts(s, list(s.execute(stmt).scalars()))
        return finish_in_python(items, rest, query)

    # -- update ----------------------------------------------------------

    def update(
        self, ctx: Context, subnet_id: str, attrs: dict[str, Any], *, if_revision: int | None = None
    ) -> dict[str, Any]:
        def fn(txn: Txn) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
            s = txn.session
            row = self.get_row(s, ctx, subnet_id)
            check_revision(if_revision, row.revision_number)
            original = self._dicts(s, [row])[0]
            cidr = netaddr.IPNetwork(row.cidr)
            gw = row.gateway_ip
            if "gateway_ip" in attrs:
                gw = attrs["gateway_ip"]
                if gw is not None:
                    gw_ip = ipam.parse_ip(gw)
                    ipam.check_gateway(cidr, gw_ip)
                    gw = str(gw_ip)
                    taken = s.execute(
                        select(Port.device_owner)
                        .join(IPAllocation, IPAllocation.port_id == Port.id)
                        .where(IPAllocation.subnet_id == row.id, IPAllocation.ip_address == gw)
                    ).scalar()
                    if taken is not None and taken not in ipam.ROUTER_OWNERS:
                        raise InvalidInput(error_message=f"Gateway ip {gw} conflicts with a port's fixed IP")
            if "allocation_pools" in attrs and attrs["allocation_pools"] is not None:
                pools = ipam.parse_pools(attrs["allocation_pools"], cidr, gw)
                row.allocation_pools = ipam.pools_to_api(pools, row.ip_version)
            elif gw is not None:
                pools = ipam.pools_from_api(row.allocation_pools)
                ipam.parse_pools(ipam.pools_to_api(pools, row.ip_version), cidr, gw)
            row.gateway_ip = gw
            if "dns_nameservers" in attrs:
                row.dns_nameservers = ipam.check_nameservers(attrs["dns_nameservers"])
            if "host_routes" in attrs:
                row.host_routes = ipam.check_host_routes(attrs["host_routes"], row.ip_version)
            for key in ("name", "description", "enable_dhcp", "segment_id"):
                if key in attrs:
                    setattr(row, key, attrs[key])
            bump(row)
            s.flush()
            current = self._dicts(s, [row])[0]
            segments = self.types.get_segments(s, row.network_id)
            self.hooks.precommit(s, "update", "subnet", current, original, segments)
            txn.record("subnet", row.id, "update", current)
            return current, original, segments

        current, original, segments = self.db.transaction(fn)
        try:
            self.hooks.postcommit("update", "subnet", current, original, segments)
        except Exception:
            LOG.exception("update_subnet_postcommit failed for %s", subnet_id)
        return current

    # -- delete ----------------------------------------------------------

    def delete(self, ctx: Context, subnet_id: str, *, if_revision: int | None = None) -> None:
        def fn(txn: Txn) -> tuple[dict[str, Any], list[Any]]:
            s = txn.session
            row = self.get_row(s, ctx, subnet_id)
            check_revision(if_revision, row.revision_number)
            return self.delete_in_txn(txn, subnet_id, force=False)

        original, segments = self.db.transaction(fn)
        try:
            self.hooks.postcommit("delete", "subnet", original, None, segments)
        except Exception:
            LOG.exception("delete_subnet_postcommit failed for %s", subnet_id)

    def delete_in_txn(self, txn: Txn, subnet_id: str, *, force: bool) -> tuple[dict[str, Any], list[Any]]:
        """Delete a subnet inside ``txn``; ``force`` skips the in-use check (network delete)."""
        s = txn.session
        row = s.get(Subnet, subnet_id)
        if row is None:
            raise SubnetNotFound(subnet_id=subnet_id)
        users = s.execute(
            select(Port.id, Port.device_owner)
            .join(IPAllocation, IPAllocation.port_id == Port.id)
            .where(IPAllocation.subnet_id == subnet_id)
        ).all()
        blocking = [pid for pid, owner in users if not is_auto_delete_owner(owner)]
        if blocking and not force and not is_auto_address(row):
            raise SubnetInUse(
                subnet_id=subnet_id,
                reason="One or more ports have an IP allocation from this subnet.",
            )
        original = self._dicts(s, [row])[0]
        segments = self.types.get_segments(s, row.network_id)
        self.hooks.precommit(s, "delete", "subnet", original, None, segments)
        s.execute(delete(IPAllocation).where(IPAllocation.subnet_id == subnet_id))
        for pid, _ in users:
            if force:
                self.ports.bump(txn.conn, pid)
            else:
                self.ports.port_changed(txn, pid)
        s.execute(delete(Tag).where(Tag.resource_type == "subnets", Tag.resource_id == subnet_id))
        s.execute(delete(Subnet).where(Subnet.id == subnet_id))
        net = s.get(Network, row.network_id)
        if net is not None and not force:
            bump(net)
        txn.record("subnet", subnet_id, "delete", original)
        return original, segments


__all__ = ["SubnetService", "network_ids_visible"]
